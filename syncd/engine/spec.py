"""What the engine needs to know about one table sync (built from a job by syncd.jobs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class TableSync:
    """One source table copied into one local table."""

    job: str
    table: str  # source table name, without schema
    schema: str | None  # source schema (PostgreSQL schema / MySQL database), or None
    target: str  # local table name
    mode: str = "incremental"  # "incremental" | "full"
    cursor: str | None = None
    primary_key: tuple[str, ...] | None = None  # None: the source table's primary key
    columns: tuple[str, ...] | None = None  # None: all columns
    batch_size: int = 10000
    batch_bytes: int = 32 * 1024 * 1024  # a batch also ends at this size (bytes of values)
    lookback: timedelta = timedelta(minutes=1)
    deletes: str = "ignore"  # "ignore" | "reconcile"
    max_delete_ratio: float = 0.5
    on_schema_change: str = "evolve"  # "evolve" | "fail"
    source_timezone: str = "UTC"
    on_unrepresentable: str = "fail"  # "fail" | "null": a value the local type cannot hold
    lookback_auto: bool = False  # lookback = "auto" (``lookback`` is then the fallback)
    keyless_full: bool = False  # no primary key: load in full at every run, without resume

    @property
    def qualified_table(self) -> str:
        """The source table as written in the jobs file."""
        return f"{self.schema}.{self.table}" if self.schema else self.table


@dataclass
class Progress:
    """Live counters of a run, handed to the progress callback after every batch."""

    phase: str = "starting"  # "full" | "incremental" | "reconcile"
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    rows_total: int | None = None  # estimate, for progress bars
    cursor: Any = None  # cursor value reached so far (incremental)
    cursor_before: Any = None  # cursor value the run started from
    warnings: dict[str, int] = field(default_factory=dict)
    lookback: dict[str, Any] | None = None  # lookback = "auto": the bound the run used
    reader: str | None = None  # the driver of a full load's MySQL read: "pymysql" | "asyncmy"
    # The last batch is committed and nothing else will be read or written: the run's
    # outcome follows at once (no need to record the progress, nothing left to cancel).
    done: bool = False

    def warn(self, message: str, count: int = 1) -> None:
        """Count ``count`` more occurrences of a warning message."""
        if count:
            self.warnings[message] = self.warnings.get(message, 0) + count


@dataclass
class SyncResult:
    """What one run of the engine did."""

    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    cursor_before: Any = None
    cursor_after: Any = None
    full_load: bool = False
    resumed: bool = False
    warnings: dict[str, int] = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]
