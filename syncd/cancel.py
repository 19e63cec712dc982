"""Cancelling a run: the web's Cancel button, the API, ``syncd cancel``, Ctrl-C of ``syncd run``.

A queued run is cancelled at once: it never starts (a worker that takes its message
finds it ``cancelled``; one that waits for the job's lock stops waiting). A running
run gets a request in its row; the run reads it after every committed batch and
between two attempts, stops there with its checkpoint committed, and is recorded
``cancelled`` with who cancelled it. A run whose process is gone is marked
``abandoned`` instead (there is nobody left to stop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update

from syncd import SyncdState
from syncd.models import FINISHED, SyncRun, utcnow
from syncd.retry import describe_error, is_transient_error
from syncd.stale_runs import mark_abandoned

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel request did to the run."""

    run: SyncRun | None  # None: no such run
    done: str  # "cancelled" (it was queued), "requested" (running), "finished", "unknown"

    def sentence(self) -> str:
        """One line for the operator."""
        run = self.run
        if run is None:
            return "no such run"
        if self.done == "cancelled":
            return f"run #{run.id} of {run.job} cancelled before it started"
        if self.done == "requested":
            return (f"run #{run.id} of {run.job}: cancel requested by {run.cancelled_by}; it "
                    "stops at the next batch boundary with its checkpoint committed")
        return f"run #{run.id} of {run.job} already finished ({run.status}): nothing to cancel"


def request_cancel(state: SyncdState, run_id: int, by: str) -> CancelOutcome:
    """Cancel run ``run_id`` on behalf of ``by`` (a user, ``token:NAME``, ``cli``)."""
    with state.sessions() as session:
        run = session.get(SyncRun, run_id)
    if run is None:
        return CancelOutcome(None, "unknown")
    if run.status == "running":
        mark_abandoned(state, run.job)  # its process died: nothing left to stop
    now = utcnow()
    with state.sessions.begin() as session:
        queued = session.connection().execute(
            update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "queued").values(
                status="cancelled", finished_at=now, cancel_requested_at=now, cancelled_by=by,
                waiting_for=None, waiting_slot=None,
                error=f"cancelled by {by} before it started")
        ).rowcount
        running = 0 if queued else session.connection().execute(
            update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "running",
                                  SyncRun.cancel_requested_at.is_(None))
            .values(cancel_requested_at=now, cancelled_by=by)
        ).rowcount
    with state.sessions() as session:
        run = session.get(SyncRun, run_id)
    assert run is not None
    if queued:
        return CancelOutcome(run, "cancelled")
    if running or run.status == "running":
        return CancelOutcome(run, "requested")
    return CancelOutcome(run, "finished" if run.status in FINISHED else run.status)


class CancelCheck:
    """Who cancelled the run, or None: Ctrl-C in this process, or a request in its row.

    Called after every committed batch and between attempts. A local database that
    does not answer is no cancel request (the next batch commit finds out and retries).
    """

    def __init__(self, state: SyncdState, run_id: int,
                 interrupted: Callable[[], str | None] | None = None) -> None:
        self.state = state
        self.run_id = run_id
        self.interrupted = interrupted

    def pressed(self) -> str | None:
        """Who cancelled the run from this process (Ctrl-C), or None; asks no database."""
        return (self.interrupted() or None) if self.interrupted is not None else None

    def __call__(self) -> str | None:
        by = self.pressed()
        if by:
            return by
        try:
            with self.state.sessions() as session:
                row = session.execute(
                    select(SyncRun.cancel_requested_at, SyncRun.cancelled_by)
                    .where(SyncRun.id == self.run_id)).first()
        except Exception as exc:
            if not is_transient_error(exc):
                raise
            log.warning("run #%s: could not read whether it was cancelled: %s", self.run_id,
                        describe_error(exc))
            return None
        if row is None or row[0] is None:
            return None
        return row[1] or "an operator"
