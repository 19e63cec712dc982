"""What every step of one sync shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from syncd.engine.schema import SourceTable
from syncd.engine.spec import Progress, ProgressCallback, TableSync


@dataclass
class SyncContext:
    """One job's sync: its settings, both databases, the source table, live counters."""

    spec: TableSync
    source: Engine
    local: Engine
    src: SourceTable
    progress: Progress
    on_progress: ProgressCallback | None = None
    # Called first in every local write transaction: proves the run still owns its job
    # (raises to stop the run before anything is written).
    guard: Callable[[Connection], None] | None = None

    def report(self) -> None:
        """Hand the counters to the progress callback (which may stop the run)."""
        if self.on_progress is not None:
            self.on_progress(self.progress)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A local transaction that writes: the guard runs in it before anything else."""
        with self.local.begin() as conn:
            if self.guard is not None:
                self.guard(conn)
            yield conn
