"""A progress bar for `syncd run` on a terminal (rich)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def terminal_progress(enabled: bool) -> Iterator[Any]:
    """Yield a progress hook for run_job, or None when not on a terminal."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("rows"), TimeElapsedColumn(), transient=True,
    )
    task = bar.add_task("starting", total=None)

    def hook(run: Any, progress: Any) -> None:
        bar.update(task, description=f"{run.job} {progress.phase}",
                   completed=progress.rows_read, total=progress.rows_total)

    with bar:
        yield hook
