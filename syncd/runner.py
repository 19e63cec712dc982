"""Run one job: take the job's lock, call the engine, record the run, release.

Every run leaves one ``syncd_runs`` row, whatever happens: ``skipped`` when
another run holds the lock, ``failed`` with the error and traceback, or
``succeeded`` with its counts and cursors. The runner decides where each
transaction on the history begins and ends.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syncd import SyncdState
from syncd.engine import Progress, SyncResult, connect_source, sync_table
from syncd.engine.checkpoint import dumps
from syncd.engine.errors import ConfigError, RunTimedOut, SyncError
from syncd.jobs import JobSpec
from syncd.locks import JobLock
from syncd.models import JobState, SyncRun, utcnow
from syncd.notify.alerts import notify_run

log = logging.getLogger(__name__)

ProgressHook = Callable[[SyncRun, Progress], None]


@dataclass(frozen=True)
class RunRequest:
    """What to run and why."""

    job: str
    trigger: str  # "schedule" | "manual" | "api" | "cli"
    full_refresh: bool = False
    run_id: int | None = None  # a run row already created as "queued"
    started_by: str | None = None
    scheduled: bool = False  # a beat tick: does nothing while the job is paused


def create_queued_run(
    state: SyncdState, job: str, trigger: str, full_refresh: bool = False,
    started_by: str | None = None,
) -> int:
    """Record a ``queued`` run and commit it (before its message goes to the broker)."""
    with state.sessions.begin() as session:
        run = SyncRun(job=job, trigger=trigger, status="queued", full_refresh=full_refresh,
                      started_by=started_by, queued_at=utcnow())
        session.add(run)
        session.flush()
        return run.id


def is_paused(state: SyncdState, job: str) -> bool:
    """True if the job is paused."""
    with state.sessions() as session:
        row = session.get(JobState, job)
        return bool(row and row.paused)


def set_paused(state: SyncdState, job: str, paused: bool, by: str | None = None) -> None:
    """Pause or resume a job's scheduled runs."""
    with state.sessions.begin() as session:
        row = session.get(JobState, job)
        if row is None:
            row = JobState(job=job)
            session.add(row)
        row.paused = paused
        row.changed_by = by
        row.changed_at = utcnow()


def mark_abandoned(state: SyncdState, job: str | None = None) -> list[int]:
    """Mark ``running`` runs whose process is gone (its lock is free) as ``abandoned``."""
    with state.sessions() as session:
        query = select(SyncRun.job).where(SyncRun.status == "running").distinct()
        if job is not None:
            query = query.where(SyncRun.job == job)
        jobs = list(session.scalars(query))
    marked: list[int] = []
    for name in jobs:
        lock = JobLock(state.engine, name)
        if lock.acquire():
            try:
                marked += _abandon_running(state, name)
            finally:
                lock.release()
    return marked


def _abandon_running(state: SyncdState, job: str) -> list[int]:
    """With the job's lock held: every run still ``running`` lost its process."""
    with state.sessions.begin() as session:
        runs = list(session.scalars(
            select(SyncRun).where(SyncRun.job == job, SyncRun.status == "running")
        ))
        for run in runs:
            run.status = "abandoned"
            run.finished_at = run.heartbeat_at or utcnow()
            run.error = (run.error or "") + (
                "the process running this sync died (killed, crashed or lost its worker); "
                "the next run resumes from the last checkpoint"
            )
        return [run.id for run in runs]


def run_job(state: SyncdState, request: RunRequest, on_progress: ProgressHook | None = None,
            ) -> SyncRun | None:
    """Run one job now in this process and return its finished run row.

    Raises ConfigError for an unknown job or a broken jobs file when no run row
    exists yet (nothing is written then). Returns None for a scheduled tick of a
    paused job.
    """
    try:
        spec = state.jobs().job(request.job)
    except ConfigError as exc:
        if request.run_id is None:
            raise
        return _finish_unstarted(state, request, "failed", str(exc))
    if request.scheduled and is_paused(state, spec.name):
        if request.run_id is not None:
            return _finish_unstarted(state, request, "cancelled", "job is paused")
        return None
    lock = JobLock(state.engine, spec.name)
    if not lock.acquire():
        return _finish_unstarted(state, request, "skipped", _held_reason(state, spec.name))
    try:
        _abandon_running(state, spec.name)
        run_id = _start(state, request)
        run = _execute(state, spec, run_id, request, on_progress)
    finally:
        lock.release()
    notify_run(state, run)  # recorded and unlocked first; never raises
    return run


def _held_reason(state: SyncdState, job: str) -> str:
    with state.sessions() as session:
        running = session.scalar(
            select(SyncRun.id).where(SyncRun.job == job, SyncRun.status == "running")
            .order_by(SyncRun.id.desc()).limit(1)
        )
    which = f" (run #{running})" if running else ""
    return f"skipped: another run of this job is in progress{which}"


def _run_row(session: Session, request: RunRequest, now: datetime) -> SyncRun:
    """The queued run row of ``request``, or a new row added to ``session``."""
    run = session.get(SyncRun, request.run_id) if request.run_id is not None else None
    if run is None:
        run = SyncRun(job=request.job, trigger=request.trigger,
                      full_refresh=request.full_refresh, started_by=request.started_by,
                      queued_at=now)
        session.add(run)
    return run


def _finish_unstarted(state: SyncdState, request: RunRequest, status: str, message: str,
                      ) -> SyncRun:
    """Record a run that never started: skipped, cancelled, or failed on bad config."""
    now = utcnow()
    with state.sessions.begin() as session:
        run = _run_row(session, request, now)
        run.status = status
        run.finished_at = now
        run.error = message
        session.flush()
        return run


def _start(state: SyncdState, request: RunRequest) -> int:
    now = utcnow()
    with state.sessions.begin() as session:
        run = _run_row(session, request, now)
        run.status = "running"
        run.started_at = now
        run.heartbeat_at = now
        run.hostname = socket.gethostname()
        run.pid = os.getpid()
        session.flush()
        return run.id


class _Recorder:
    """Writes live progress to the run row, at most once a second."""

    def __init__(self, state: SyncdState, run_id: int, hook: ProgressHook | None,
                 deadline: float | None, timeout_text: str) -> None:
        self.state = state
        self.run_id = run_id
        self.hook = hook
        self.deadline = deadline
        self.timeout_text = timeout_text
        self.last_write = 0.0

    def __call__(self, progress: Progress) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RunTimedOut(f"timed out after {self.timeout_text}; checkpoint kept")
        now = time.monotonic()
        if now - self.last_write >= 1.0:
            self.last_write = now
            self.write(progress)
        if self.hook is not None:
            with self.state.sessions() as session:
                run = session.get(SyncRun, self.run_id)
                if run is not None:
                    self.hook(run, progress)

    def write(self, progress: Progress) -> None:
        with self.state.sessions.begin() as session:
            session.execute(
                update(SyncRun).where(SyncRun.id == self.run_id).values(
                    rows_read=progress.rows_read, rows_inserted=progress.rows_inserted,
                    rows_updated=progress.rows_updated, rows_deleted=progress.rows_deleted,
                    rows_total=progress.rows_total, phase=progress.phase,
                    heartbeat_at=utcnow(),
                )
            )


def _execute(state: SyncdState, spec: JobSpec, run_id: int, request: RunRequest,
             hook: ProgressHook | None) -> SyncRun:
    cfg = state.config
    attempts = max(1, int(cfg.SYNCD_RETRY_ATTEMPTS))
    deadline = time.monotonic() + spec.timeout.total_seconds() if spec.timeout else None
    recorder = _Recorder(state, run_id, hook, deadline, _words(spec.timeout))
    progress = Progress()
    result = SyncResult()
    error: BaseException | None = None
    full_refresh = request.full_refresh
    for attempt in range(1, attempts + 1):
        _set_attempt(state, run_id, attempt)
        source = connect_source(spec.source.url)
        try:
            result = sync_table(spec.table_sync(), source, state.engine, full_refresh=full_refresh,
                                progress=progress, on_progress=recorder,
                                mysql_reader=str(cfg.SYNCD_MYSQL_READER))
            error = None
            break
        except SyncError as exc:
            error = exc
            if not exc.transient or attempt == attempts:
                break
            delay = cfg.SYNCD_RETRY_BACKOFF * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            log.warning("job %s: attempt %d of %d failed (%s); retrying in %.1fs",
                        spec.name, attempt, attempts, exc, delay)
            time.sleep(delay)
            full_refresh = False  # the checkpoint was reset by the first attempt
        except Exception as exc:  # noqa: BLE001  (recorded in the history, not lost)
            error = exc
            break
        finally:
            source.dispose()
    return _finish(state, run_id, progress, result, error, attempts)


def _words(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _set_attempt(state: SyncdState, run_id: int, attempt: int) -> None:
    with state.sessions.begin() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(attempts=attempt))


def _finish(state: SyncdState, run_id: int, progress: Progress, result: SyncResult,
            error: BaseException | None, attempts: int) -> SyncRun:
    with state.sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        run.finished_at = utcnow()
        run.heartbeat_at = run.finished_at
        run.rows_read = progress.rows_read
        run.rows_inserted = progress.rows_inserted
        run.rows_updated = progress.rows_updated
        run.rows_deleted = progress.rows_deleted
        run.rows_total = progress.rows_total
        run.phase = progress.phase
        run.cursor_before = _json(result.cursor_before if error is None else progress.cursor_before)
        run.cursor_after = _json(result.cursor_after if error is None else progress.cursor)
        warnings = dict(progress.warnings)
        run.reader = progress.reader  # type: ignore[attr-defined]
        run.warnings_json = json.dumps(warnings) if warnings else None
        if error is None:
            run.status = "succeeded"
        else:
            run.status = "failed"
            prefix = ""
            if getattr(error, "transient", False) and attempts > 1:
                prefix = f"gave up after {attempts} attempts: "
            run.error = prefix + _message(error)
            run.traceback = "".join(
                traceback.format_exception(type(error), error, error.__traceback__)
            )
        session.flush()
        return run


def _message(error: BaseException) -> str:
    if isinstance(error, SyncError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _json(value: object) -> str | None:
    return dumps(value)


def describe(run: SyncRun) -> str:
    """One summary line of a finished run."""
    data = run.to_dict()
    line = (
        f"run #{run.id} {run.job}: {run.status}"
        f" read={data['rows_read']} inserted={data['rows_inserted']}"
        f" updated={data['rows_updated']} deleted={data['rows_deleted']}"
    )
    if data["duration_s"] is not None:
        line += f" in {data['duration_s']:.2f}s"
    if data["cursor_after"] is not None:
        line += f" cursor={data['cursor_after']}"
    if getattr(run, "reader", None):
        line += f" reader={run.reader}"  # type: ignore[attr-defined]
    for warning in data["warnings"]:
        line += f" [warning: {warning['message']} x{warning['count']}]"
    if run.error:
        line += f" -- {run.error}"
    return line
