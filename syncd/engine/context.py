"""What every step of one sync shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from syncd.engine.checkpoint import decode_value
from syncd.engine.load import Target
from syncd.engine.schema import SourceTable
from syncd.engine.spec import Progress, ProgressCallback, TableSync
from syncd.engine.typemap import ColumnPlan


@dataclass
class SyncContext:
    """One job's sync: its settings, both databases, the source table, live counters."""

    spec: TableSync
    source: Engine
    local: Engine
    src: SourceTable
    progress: Progress
    plans: list[ColumnPlan]  # the type map's rule of each copied column, in column order
    on_progress: ProgressCallback | None = None
    # Called first in every local write transaction: proves the run still owns its job
    # (raises to stop the run before anything is written).
    guard: Callable[[Connection], None] | None = None
    reader: str = "pymysql"  # a MySQL source's reader for full loads: "pymysql" | "asyncmy"
    upto: tuple[Any, ...] | None = None  # a split load's key range ends here (included)

    def report(self) -> None:
        """Hand the counters to the progress callback (which may stop the run)."""
        if self.on_progress is not None:
            self.on_progress(self.progress)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A local transaction that writes: the guard runs in it before anything else."""
        with self.local.connect() as conn, self.writing_on(conn):
            yield conn

    @contextmanager
    def writing_on(self, conn: Connection, durable: bool = True) -> Iterator[Connection]:
        """``writing`` on a connection the caller holds across many transactions (a full
        load's batches: no pool checkout and liveness ping per transaction).

        ``durable`` False (PostgreSQL): the commit does not wait for the disk. What it
        wrote is durable once the run's outcome is committed: PostgreSQL writes its log
        in order, and that later commit waits for all of it. A crash of the database
        before then loses the transaction whole (rows with their checkpoint): the run's
        next attempt, or the job's next run, reads those rows again."""
        with conn.begin():
            if self.guard is not None:
                self.guard(conn)
            if not durable and conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            yield conn

    def target(self, table: str | None = None) -> Target:
        """What a writer needs to know of the local table (default: the job's target)."""
        return Target(
            job=self.spec.job, table=table or self.spec.target, columns=self.src.columns,
            primary_key=self.src.primary_key,
            text_compared=frozenset(p.name for p in self.plans if p.compare_as_text))

    def decode(self, value: Any, column: str) -> Any:
        """A checkpoint value (JSON-decoded) as the keyset query takes it."""
        if self.source.dialect.name == "sqlite":
            return value  # compared as stored
        return decode_value(value, self.src.table.c[column].type)

    def key_plans(self) -> list[ColumnPlan]:
        """The plans of the primary-key columns, in key order."""
        by_name = {p.name: p for p in self.plans}
        return [by_name[name] for name in self.src.primary_key]
