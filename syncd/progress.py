"""`syncd run` on a terminal: a progress bar (rich), and what Ctrl-C does."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def terminal_progress(enabled: bool) -> Iterator[Any]:
    """Yield a progress hook for run_job, or None when not on a terminal."""
    if not enabled:
        yield None
        return
    from rich.progress import (  # on a terminal only: imported when needed
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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


class CtrlC:
    """Ctrl-C during ``syncd run``: the first asks the run to stop at the next batch
    boundary (its checkpoint committed, the run recorded ``cancelled``); the second
    stops it at once (the batch in progress is rolled back)."""

    by = "Ctrl-C"

    def __init__(self) -> None:
        self.pressed = 0

    def __call__(self) -> str | None:
        """Who cancelled the run (``Ctrl-C``), or None: the runner asks after every batch."""
        return self.by if self.pressed else None

    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        self.pressed += 1
        if self.pressed > 1:
            raise KeyboardInterrupt
        click.echo("syncd run: Ctrl-C: stopping at the next batch boundary "
                   "(press Ctrl-C again to stop at once)", err=True)

    @contextmanager
    def installed(self) -> Iterator[CtrlC]:
        """Handle Ctrl-C as above while the block runs."""
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
