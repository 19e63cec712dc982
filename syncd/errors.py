"""Re-export of the error hierarchy (defined with the engine, which imports nothing of syncd)."""

from syncd.engine.errors import (
    ConfigError,
    DeleteLimitExceeded,
    JobLocked,
    LostJobLock,
    RunTimedOut,
    SchemaConflict,
    SourceUnavailable,
    SyncError,
)

__all__ = [
    "ConfigError",
    "DeleteLimitExceeded",
    "JobLocked",
    "LostJobLock",
    "RunTimedOut",
    "SchemaConflict",
    "SourceUnavailable",
    "SyncError",
]
