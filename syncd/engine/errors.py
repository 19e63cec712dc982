"""The error hierarchy of syncd: what went wrong, and whether retrying helps."""

from __future__ import annotations


class SyncError(Exception):
    """Base class of every error syncd raises on purpose."""

    transient = False


class ConfigError(SyncError):
    """The jobs file or a job's table/columns are wrong: fix the configuration."""


class SourceUnavailable(SyncError):
    """A database could not be reached or the connection was lost; worth retrying."""

    transient = True


class SchemaConflict(SyncError):
    """The source table changed in a way the job's settings do not allow."""


class DeleteLimitExceeded(SyncError):
    """Reconcile would delete more than max_delete_ratio of the local table."""


class JobLocked(SyncError):
    """Another run of the same job holds the lock."""


class RunTimedOut(SyncError):
    """The run went past the job's timeout."""


class LostJobLock(SyncError):
    """The run no longer owns its job (its lock died with a local database restart and
    another run or housekeeping took the job over): it stops without writing."""
