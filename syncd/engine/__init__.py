"""The sync engine: SQLAlchemy and the standard library only (no Flask, Celery or models)."""

from syncd.engine.connect import connect_source
from syncd.engine.schema import check_table
from syncd.engine.spec import Progress, ProgressCallback, SyncResult, TableSync
from syncd.engine.sync import sync_table

__all__ = [
    "Progress",
    "ProgressCallback",
    "SyncResult",
    "TableSync",
    "check_table",
    "connect_source",
    "sync_table",
]
