"""What every step of one sync shares."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

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

    def report(self) -> None:
        """Hand the counters to the progress callback (which may stop the run)."""
        if self.on_progress is not None:
            self.on_progress(self.progress)
