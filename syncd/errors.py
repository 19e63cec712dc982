"""The error hierarchy (defined with the engine, which imports nothing of syncd), re-exported,
and how a service that cannot start says so."""

import sys
from typing import NoReturn

from syncd.engine.errors import (
    ConfigError,
    DeleteLimitExceeded,
    JobLocked,
    LostJobLock,
    RunTimedOut,
    SchemaConflict,
    SourceUnavailable,
    SyncError,
    one_line,
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
    "refuse_to_start",
]


def refuse_to_start(service: str, exc: BaseException, code: int = 2) -> NoReturn:
    """Stop a service that cannot start, with one line on stderr saying why (no traceback)."""
    print(f"syncd {service}: cannot start: {one_line(str(exc))}", file=sys.stderr, flush=True)
    raise SystemExit(code)
