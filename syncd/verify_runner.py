"""Run one verify: take the job's lock, compare (and repair), record the run, release.

A verify is a run in the history like a sync (trigger ``verify``), with
``rows_compared``, ``rows_different``, ``rows_repaired`` and what it found (up to
100 example keys) in ``syncd_runs.verify``. It takes the job's lock, so it never
races a sync of the same job. A scheduled verify or ``syncd verify`` that finds the
lock held is recorded ``skipped``; one someone queued (web, API) waits for the job, as
a manual sync does (syncd/waiting.py). It succeeds when
the tables are identical or every difference was repaired, and fails otherwise.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syncd import SyncdState
from syncd.cancel import CancelCheck
from syncd.engine import Progress, connect_source
from syncd.engine.errors import ConfigError, RunCancelled, RunTimedOut, SyncError
from syncd.engine.verify import VerifyOptions, VerifyReport, verify_table
from syncd.jobs import JobSpec
from syncd.locks import JobFence, JobLock, take_lease
from syncd.models import SyncRun, utcnow
from syncd.notify.alerts import notify_run
from syncd.stale_runs import abandon_running
from syncd.waiting import wait_for_job

TRIGGER = "verify"


@dataclass(frozen=True)
class VerifyRequest:
    """What to verify, whether to repair, who asked."""

    job: str
    repair: bool = False
    run_id: int | None = None  # a run already recorded "queued" (web, API, beat)
    started_by: str | None = None


def queue_verify(state: SyncdState, job: str, repair: bool, started_by: str | None) -> int:
    """Record a queued verify run and commit it (before its message goes to the broker)."""
    with state.sessions.begin() as session:
        run = SyncRun(job=job, trigger=TRIGGER, status="queued", full_refresh=False,
                      started_by=started_by, queued_at=utcnow(),
                      verify_json=json.dumps({"repair": repair}))
        session.add(run)
        session.flush()
        return run.id


def queued_request(state: SyncdState, run_id: int) -> VerifyRequest | None:
    """The request of a queued verify run (None when it is no longer queued)."""
    with state.sessions() as session:
        run = session.get(SyncRun, run_id)
    if run is None or run.status != "queued":
        return None
    repair = bool(json.loads(run.verify_json or "{}").get("repair"))
    return VerifyRequest(job=run.job, repair=repair, run_id=run.id, started_by=run.started_by)


def run_verify(state: SyncdState, request: VerifyRequest,
               on_progress: Callable[[Progress], None] | None = None) -> SyncRun:
    """Verify one job now in this process and return its finished run row.

    Raises ConfigError for an unknown job or a broken jobs file when no run row
    exists yet (nothing is written then).
    """
    try:
        spec = state.jobs().job(request.job)
    except ConfigError as exc:
        if request.run_id is None:
            raise
        return _finish_unstarted(state, request, "failed", str(exc))
    lock = JobLock(state.engine, spec.name)
    if not lock.acquire():
        if request.run_id is None:  # a scheduled verify or the command: skipped
            return _finish_unstarted(state, request, "skipped", _held_reason(state, spec.name))
        ended = wait_for_job(state, spec, request.run_id, lock)  # someone asked: it waits
        if ended is not None:  # cancelled while it waited, or waited too long
            notify_run(state, ended)
            return ended
    try:
        run_id = _start(state, request)
        run = _execute(state, spec, run_id, request, on_progress, JobFence(lock, run_id))
    finally:
        lock.release()
    notify_run(state, run)
    return run


def _row(session: Session, request: VerifyRequest) -> SyncRun:
    run = session.get(SyncRun, request.run_id) if request.run_id else None
    if run is None:
        run = SyncRun(job=request.job, trigger=TRIGGER, full_refresh=False,
                      started_by=request.started_by, queued_at=utcnow())
        session.add(run)
    run.verify_json = json.dumps({"repair": request.repair})
    return run


def _finish_unstarted(state: SyncdState, request: VerifyRequest, status: str,
                      message: str) -> SyncRun:
    with state.sessions.begin() as session:
        run = _row(session, request)
        run.status, run.finished_at, run.error = status, utcnow(), message
        session.flush()
        return run


def _held_reason(state: SyncdState, job: str) -> str:
    with state.sessions() as session:
        running = session.scalar(
            select(SyncRun.id).where(SyncRun.job == job, SyncRun.status == "running")
            .order_by(SyncRun.id.desc()).limit(1))
    which = f" (run #{running})" if running else ""
    return f"skipped: another run of this job is in progress{which}"


def _start(state: SyncdState, request: VerifyRequest) -> int:
    """With the job's lock held: abandon its dead runs, record this one, take the lease."""
    with state.sessions.begin() as session:
        abandon_running(session, request.job)
        run = _row(session, request)
        now = utcnow()
        run.status, run.started_at, run.heartbeat_at = "running", now, now
        run.hostname, run.pid, run.phase = socket.gethostname(), os.getpid(), "verify"
        run.attempts = 1
        session.flush()
        take_lease(session.connection(), request.job, run.id,
                   f"{socket.gethostname()}:{os.getpid()}")
        return run.id


class _Heartbeat:
    """Writes rows compared so far to the run row (at most once a second); the timeout."""

    def __init__(self, state: SyncdState, run_id: int, spec: JobSpec,
                 hook: Callable[[Progress], None] | None) -> None:
        self.state, self.run_id, self.hook = state, run_id, hook
        self.cancelled = CancelCheck(state, run_id)
        self.deadline = time.monotonic() + spec.timeout.total_seconds() if spec.timeout else None
        self.timeout = spec.timeout
        self.last = 0.0

    def __call__(self, progress: Progress) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RunTimedOut(f"timed out after {self.timeout}; verify stopped")
        by = self.cancelled()
        if by is not None:  # a cancel request (web, API, syncd cancel): stop here
            raise RunCancelled(by, f"cancelled by {by}; verify stopped")
        if time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            with self.state.sessions.begin() as session:
                session.execute(update(SyncRun).where(SyncRun.id == self.run_id).values(
                    rows_read=progress.rows_read, rows_compared=progress.rows_read,
                    heartbeat_at=utcnow()))
        if self.hook is not None:
            self.hook(progress)


def _execute(state: SyncdState, spec: JobSpec, run_id: int, request: VerifyRequest,
             hook: Callable[[Progress], None] | None, fence: JobFence) -> SyncRun:
    progress = Progress()
    report: VerifyReport | None = None
    error: BaseException | None = None
    source = connect_source(spec.source.url)
    try:  # every repair batch proves the job's lease first, as a sync's batches do
        options = VerifyOptions(repair=request.repair, guard=fence,
                                on_progress=_Heartbeat(state, run_id, spec, hook))
        report = verify_table(spec.table_sync(), source, state.engine, options, progress)
    except Exception as exc:  # noqa: BLE001  (recorded in the history, not lost)
        error = exc
    finally:
        source.dispose()
    return _finish(state, run_id, request, progress, report, error)


def _finish(state: SyncdState, run_id: int, request: VerifyRequest, progress: Progress,
            report: VerifyReport | None, error: BaseException | None) -> SyncRun:
    with state.sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        run.finished_at = run.heartbeat_at = utcnow()
        run.rows_inserted = progress.rows_inserted
        run.rows_updated = progress.rows_updated
        run.rows_deleted = progress.rows_deleted
        run.phase = progress.phase
        run.warnings_json = json.dumps(progress.warnings) if progress.warnings else None
        if report is not None:
            run.rows_read = run.rows_compared = report.rows_compared
            run.rows_different = report.rows_different
            run.rows_repaired = report.rows_repaired if request.repair else None
            run.verify_json = json.dumps({"repair": request.repair, **report.to_dict()})
        if isinstance(error, RunCancelled):
            run.status, run.cancelled_by, run.error = "cancelled", error.by, str(error)
        elif error is not None:
            run.status = "failed"
            run.error = str(error) if isinstance(error, SyncError) else \
                f"{type(error).__name__}: {error}"
            run.traceback = "".join(traceback.format_exception(error))
        elif report is not None and report.remaining:
            run.status = "failed"
            run.error = differences_text(report, request)
        else:
            run.status = "succeeded"
        session.flush()
        return run


def differences_text(report: VerifyReport, request: VerifyRequest) -> str:
    """What a verify that left differences says about them."""
    text = (f"{report.rows_different} row(s) differ: {report.missing} missing locally, "
            f"{report.extra} extra locally, {report.changed} with different values")
    if request.repair:
        return f"{text}; {report.remaining} still differ after the repair"
    return f"{text} (syncd verify {request.job} --repair copies them again)"


def describe_verify(run: SyncRun) -> str:
    """One summary line of a finished verify run."""
    data = run.to_dict()
    found = data["verify"] or {}
    line = f"run #{run.id} {run.job}: verify {run.status}"
    if data["rows_compared"] is not None:
        line += f" compared={data['rows_compared']} different={data['rows_different']}"
        if data["rows_repaired"] is not None:
            line += f" repaired={data['rows_repaired']}"
        line += (f" segments={found.get('segments', 0)}"
                 f" row-by-row={found.get('segments_row_by_row', 0)}")
    if data["duration_s"] is not None:
        line += f" in {data['duration_s']:.2f}s"
    if run.error:
        line += f" -- {run.error}"
    return line
