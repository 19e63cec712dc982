"""Run one job: take the job's lock, call the engine, record the run, release.

Every run leaves one ``syncd_runs`` row, whatever happens: ``skipped`` when
another run holds the lock (a run someone asked for waits instead: see
``syncd.waiting``), ``cancelled`` when someone cancelled it (it stops after a
committed batch: see ``syncd.cancel``), ``failed`` with the error and traceback, or
``succeeded`` with its counts and cursors. The runner decides where each
transaction on the history begins and ends.

Transient errors of either database are retried on the same run row (see
``syncd.retry``); so are the runner's own writes to the local database. The run
that takes the job's lock also takes its lease, and the engine proves the lease
first in every local write transaction (``syncd.locks.JobFence``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from syncd import SyncdState
from syncd.cancel import CancelCheck
from syncd.engine import Progress, SyncResult, connect_source, sync_table
from syncd.engine.checkpoint import dumps
from syncd.engine.checks import reach
from syncd.engine.connect import translated_errors
from syncd.engine.errors import (
    ConfigError,
    RunCancelled,
    RunTimedOut,
    SourceRefused,
    SourceUnavailable,
    one_line,
)
from syncd.engine.schema import SourceTable
from syncd.engine.spec import TableSync
from syncd.group_tables import resolve_at_source
from syncd.groups import TableSkipped
from syncd.jobs import JobSpec
from syncd.locks import JobFence, JobLock, take_lease
from syncd.models import JobState, SyncRun, utcnow
from syncd.notify.alerts import notify_run
from syncd.retry import Backoff, LocalUnavailable, describe_error, is_transient_error, local_write
from syncd.slots import SourceSlot, take_slot
from syncd.split_lease import RunLock
from syncd.split_runner import SplitStarted, maybe_split
from syncd.stale_runs import abandon_running
from syncd.waiting import wait_for_job, waiting_run

log = logging.getLogger(__name__)

ProgressHook = Callable[[SyncRun, Progress], None]
Interrupted = Callable[[], str | None]  # who cancelled the run from this process, or None


REFLECTED_SECONDS = 5.0  # how long a check's reflection of the source table serves a run


@dataclass(frozen=True)
class Reflected:
    """The source table as the check before a run (``syncd run``) reflected it."""

    table: TableSync  # the job's settings it was reflected for
    src: SourceTable
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class RunRequest:
    """What to run and why."""

    job: str
    trigger: str  # "schedule" | "manual" | "api" | "cli"
    full_refresh: bool = False
    run_id: int | None = None  # a run row already created as "queued"
    started_by: str | None = None
    scheduled: bool = False  # a beat tick: does nothing while the job is paused
    # A big full load is split into key ranges (syncd.split_runner): loaded by Celery
    # tasks (-1, a worker's run), by this many local processes (> 1), or not split (0, 1).
    split_workers: int = 0


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


def run_job(state: SyncdState, request: RunRequest, on_progress: ProgressHook | None = None,
            interrupted: Interrupted | None = None) -> SyncRun | None:
    """Run one job now in this process and return its finished run row.

    Raises ConfigError for an unknown job or a broken jobs file when no run row
    exists yet (nothing is written then), and LocalUnavailable when the local
    database cannot be reached, after every retry, before the run could start.
    Returns None for a scheduled tick of a paused job. ``interrupted`` says who
    cancelled the run from this process (Ctrl-C), checked after every batch.
    """
    backoff = Backoff.of(state.config)
    try:
        spec = state.jobs().job(request.job)
    except ConfigError as exc:
        if request.run_id is None:
            raise
        message = str(exc)
        return local_write(lambda: _finish_unstarted(state, request, "failed", message),
                           backoff, "record the run")
    if request.scheduled and local_write(lambda: is_paused(state, spec.name), backoff,
                                         "read whether the job is paused"):
        if request.run_id is not None:
            return local_write(
                lambda: _finish_unstarted(state, request, "cancelled", "job is paused"),
                backoff, "record the run")
        return None
    lock = RunLock(state.engine, spec.name, float(state.config.SYNCD_QUEUED_TIMEOUT))
    if not local_write(lock.acquire, backoff, "take the job lock"):
        if request.run_id is None or request.scheduled:
            return local_write(
                lambda: _finish_unstarted(state, request, "skipped",
                                          _held_reason(state, spec.name)),
                backoff, "record the run")
        ended = wait_for_job(state, spec, request.run_id, lock)  # someone asked: it waits
        if ended is not None:  # cancelled while it waited, or failed: waited too long
            notify_run(state, ended)
            return ended
    slot: SourceSlot | None = None
    try:
        if request.scheduled:
            waiting = local_write(lambda: waiting_run(state, spec.name), backoff,
                                  "read the runs waiting for the job")
            if waiting is not None:  # someone asked for a run: it goes first
                reason = (f"skipped: run #{waiting.id} ({waiting.trigger}, asked by "
                          f"{waiting.started_by}) is waiting for this job and goes first")
                return local_write(
                    lambda: _finish_unstarted(state, request, "skipped", reason),
                    backoff, "record the run")
        # may wait, queued; the slot's lock shares the job lock's connection
        slot, request, unstarted = take_slot(state, spec, request, beside=lock)
        if unstarted is not None:  # cancelled while it waited for a slot
            return unstarted
        run = local_write(lambda: _start(state, request, backoff.attempts), backoff,
                          "start the run")
        if run.status != "running":  # cancelled while it waited for the lock
            return run
        run = _execute(state, spec, run, request, on_progress, lock, interrupted)
    finally:
        if slot is not None:
            slot.release()
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


def _start(state: SyncdState, request: RunRequest, max_attempts: int) -> SyncRun:
    """With the job's lock held: abandon the job's dead runs, record this one (its first
    attempt starting), take the lease.

    A queued run starts only if it is still queued (not cancelled meanwhile); its row is
    returned unchanged otherwise.
    """
    now = utcnow()
    holder = f"{socket.gethostname()}:{os.getpid()}"
    started = {"status": "running", "started_at": now, "heartbeat_at": now,
               "hostname": socket.gethostname(), "pid": os.getpid(), "waiting_for": None,
               "waiting_slot": None, "attempts": 1, "max_attempts": max_attempts,
               "next_attempt_at": None}
    with state.sessions.begin() as session:
        abandon_running(session, request.job)
        run = session.get(SyncRun, request.run_id) if request.run_id is not None else None
        if run is None:
            run = SyncRun(job=request.job, trigger=request.trigger,
                          full_refresh=request.full_refresh, started_by=request.started_by,
                          queued_at=now, **started)
            session.add(run)
        else:
            done = session.connection().execute(
                update(SyncRun).where(SyncRun.id == run.id, SyncRun.status == "queued")
                .values(**started))
            session.refresh(run)
            if not done.rowcount:
                return run
        session.flush()
        take_lease(session.connection(), request.job, run.id, holder)
        return run


class _Recorder:
    """After every committed batch: stops the run when it is past its timeout or was
    cancelled, and writes live progress to the run row at most once a second (skipped
    while the local database is unreachable: the next batch commit finds out and retries).
    After the last batch (``Progress.done``) only the timeout is checked: the outcome is
    recorded next."""

    def __init__(self, state: SyncdState, run: SyncRun, hook: ProgressHook | None,
                 deadline: float | None, timeout_text: str, cancelled: CancelCheck) -> None:
        self.state = state
        self.run = run
        self.hook = hook
        self.deadline = deadline
        self.timeout_text = timeout_text
        self.cancelled = cancelled
        self.last_write = 0.0

    def __call__(self, progress: Progress) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RunTimedOut(f"timed out after {self.timeout_text}; checkpoint kept")
        if progress.done:  # its outcome is recorded next, with these counts
            if self.hook is not None:
                self.hook(self.run, progress)
            return
        by = self.cancelled()
        if by is not None:
            raise RunCancelled(by)
        now = time.monotonic()
        if now - self.last_write >= 1.0:
            self.last_write = now
            try:
                self.write(progress)
            except Exception as exc:
                if not is_transient_error(exc):
                    raise
                log.warning("run #%s: progress not recorded: %s", self.run.id,
                            describe_error(exc))
        if self.hook is not None:
            self.hook(self.run, progress)

    def write(self, progress: Progress) -> None:
        with self.state.sessions.begin() as session:
            session.connection().execute(
                update(SyncRun).where(SyncRun.id == self.run.id).values(
                    rows_read=progress.rows_read, rows_inserted=progress.rows_inserted,
                    rows_updated=progress.rows_updated, rows_deleted=progress.rows_deleted,
                    rows_total=progress.rows_total, phase=progress.phase,
                    heartbeat_at=utcnow(),
                )
            )


@dataclass
class _Attempts:
    """The attempts of one run: each failed attempt's error is kept in the run's row."""

    state: SyncdState
    run_id: int
    backoff: Backoff
    errors: list[dict[str, object]]

    def starting(self, attempt: int) -> None:
        """Record that attempt number ``attempt`` starts (the row's ``attempts``)."""
        with translated_errors("local database"):
            _update_run(self.state, self.run_id, attempts=attempt,
                        max_attempts=self.backoff.attempts, next_attempt_at=None)

    def failed(self, attempt: int, error: BaseException, delay: float | None) -> None:
        """Keep the error of a failed attempt, and when the next one starts (if any)."""
        now = utcnow()
        self.errors.append({"attempt": attempt, "at": _iso(now), "error": describe_error(error)})
        values: dict[str, object] = {"attempt_errors_json": json.dumps(self.errors)}
        if delay is not None:
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        try:
            _update_run(self.state, self.run_id, **values)
        except Exception as exc:  # the local database itself may be what failed
            if not is_transient_error(exc):
                raise
            log.warning("run #%s: attempt %d not recorded: %s", self.run_id, attempt,
                        describe_error(exc))


def _execute(state: SyncdState, spec: JobSpec, run: SyncRun, request: RunRequest,
             hook: ProgressHook | None, lock: JobLock,
             interrupted: Interrupted | None = None) -> SyncRun:
    backoff = Backoff.of(state.config)
    deadline = time.monotonic() + spec.timeout.total_seconds() if spec.timeout else None
    cancelled = CancelCheck(state, run.id, interrupted)
    recorder = _Recorder(state, run, hook, deadline, _words(spec.timeout), cancelled)
    attempts = _Attempts(state, run.id, backoff, [])
    fence = JobFence(lock, run.id)
    progress = Progress()
    result = SyncResult()
    error: BaseException | None = None
    full_refresh = request.full_refresh
    attempt = 0
    for attempt in range(1, backoff.attempts + 1):
        try:
            # The first attempt was recorded starting by _start, a moment ago: a cancel
            # request since then is read after its first batch.
            by = cancelled() if attempt > 1 else cancelled.pressed()
            if by is not None:
                raise RunCancelled(by)
            if attempt > 1:
                attempts.starting(attempt)
            with translated_errors("local database"):
                lock.ensure()  # after a restart of the local database: take the lock again
            result = _sync(spec, state, full_refresh, progress, recorder, fence,
                           request.split_workers)
            error = None
            break
        except SplitStarted as split:  # the ranges go on in other processes: one run still
            from syncd.split_tasks import hand_off

            return hand_off(state, spec, split, request.split_workers, lock) or run
        except KeyboardInterrupt:
            if interrupted is None:
                raise
            error = RunCancelled(interrupted() or "Ctrl-C", "cancelled by Ctrl-C, twice: "
                                 "stopped at once, the batch in progress rolled back")
            break
        except Exception as exc:  # noqa: BLE001  (recorded in the history, not lost)
            error = exc
            last = not is_transient_error(exc) or attempt == backoff.attempts
            if isinstance(exc, (RunCancelled, TableSkipped)):
                break
            delay = None if last else backoff.delay(attempt)
            attempts.failed(attempt, exc, delay)
            if delay is None:
                break
            log.warning("job %s: attempt %d of %d failed (%s); retrying in %.1fs",
                        spec.name, attempt, backoff.attempts, describe_error(exc), delay)
            by = _sleep_unless_cancelled(delay, cancelled)
            if by is not None:
                error = RunCancelled(by)
                break
            if progress.phase != "starting":  # the engine got past resetting the checkpoint
                full_refresh = False
    return _finish(state, run, progress, result, error, attempt, backoff, attempts.errors)


def _sync(spec: JobSpec, state: SyncdState, full_refresh: bool, progress: Progress,
          recorder: _Recorder, fence: JobFence, split_workers: int = 0) -> SyncResult:
    """One attempt: reach the source (naming it in any error), then sync the table."""
    kept = state.sources.get(spec.source.url)
    source = kept or connect_source(spec.source.url)
    try:
        where = f'source "{spec.source.name}" ({spec.source.masked_url})'
        try:
            reach(source)
        except (SourceUnavailable, SourceRefused, ConfigError) as exc:
            raise type(exc)(f"{where}: {exc}") from exc
        if spec.group is not None:  # a table of a group: its cursor among the candidates
            spec = resolve_at_source(spec, source)
        maybe_split(spec, state, source, full_refresh, progress, fence, fence.run_id,
                    split_workers)
        table = spec.table_sync()
        return sync_table(table, source, state.engine, full_refresh=full_refresh,
                          progress=progress, on_progress=recorder, guard=fence,
                          mysql_reader=str(state.config.SYNCD_MYSQL_READER),
                          key_checked=spec.name in state.keys_checked,
                          reflected=_reflected(state, table))
    finally:
        if kept is None:
            source.dispose()


def _reflected(state: SyncdState, table: TableSync) -> SourceTable | None:
    """The source table the check just before this run reflected (``syncd run``), once,
    when it was for these very settings; None: the run reflects it itself."""
    kept: Reflected | None = state.reflected.pop(table.job, None)
    if kept is None or kept.table != table or time.monotonic() - kept.at > REFLECTED_SECONDS:
        return None
    return kept.src


def _sleep_unless_cancelled(seconds: float, cancelled: CancelCheck) -> str | None:
    """Wait ``seconds`` before the next attempt; who cancelled the run meanwhile, or None."""
    end = time.monotonic() + seconds
    while True:
        by = cancelled()
        left = end - time.monotonic()
        if by is not None or left <= 0:
            return by
        time.sleep(min(left, 0.5))


def _words(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _update_run(state: SyncdState, run_id: int, **values: object) -> None:
    with state.sessions.begin() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _finish(state: SyncdState, run: SyncRun, progress: Progress, result: SyncResult,
            error: BaseException | None, attempts: int, backoff: Backoff,
            attempt_errors: list[dict[str, object]]) -> SyncRun:
    """Record the outcome (retried like every local write).

    When the local database stays unreachable, the outcome is returned unrecorded,
    as ``failed`` with the reason; the row stays ``running`` until housekeeping or
    the job's next run marks it abandoned.
    """
    values = _outcome(progress, result, error, attempts)
    values["next_attempt_at"] = None
    values["attempt_errors_json"] = json.dumps(attempt_errors) if attempt_errors else None
    try:
        recorded = local_write(lambda: _record(state, run.id, values), backoff,
                               "record the outcome of the run")
        recorded.reader = progress.reader  # type: ignore[attr-defined]
        return recorded
    except LocalUnavailable as exc:
        for key, value in values.items():
            setattr(run, key, value)
        if error is None or run.status == "cancelled":
            run.error = f"the sync {run.status} but its outcome could not be recorded: {exc}"
            run.status = "failed"
        else:
            run.error = f"{run.error} (not recorded in the history: {exc})"
        return run


def _outcome(progress: Progress, result: SyncResult, error: BaseException | None,
             attempts: int) -> dict[str, object]:
    """The columns of a finished run."""
    now = utcnow()
    warnings = dict(progress.warnings)
    values: dict[str, object] = {
        "finished_at": now, "heartbeat_at": now,
        "rows_read": progress.rows_read, "rows_inserted": progress.rows_inserted,
        "rows_updated": progress.rows_updated, "rows_deleted": progress.rows_deleted,
        "rows_total": progress.rows_total, "phase": progress.phase,
        "cursor_before": _json(result.cursor_before if error is None else progress.cursor_before),
        "cursor_after": _json(result.cursor_after if error is None else progress.cursor),
        "warnings_json": json.dumps(warnings) if warnings else None,
        "lookback_json": json.dumps(progress.lookback) if progress.lookback else None,
        "status": "succeeded" if error is None else "failed",
    }
    if isinstance(error, TableSkipped):
        values["status"] = "skipped"
        values["error"] = str(error)
    elif isinstance(error, RunCancelled):
        values["status"] = "cancelled"
        values["cancelled_by"] = error.by
        values["error"] = (f"{error}: stopped after {progress.rows_read:,} rows read; the "
                           "checkpoint of the last committed batch is kept")
    elif error is not None:
        prefix = ""
        if is_transient_error(error) and attempts > 1:
            prefix = f"gave up after {attempts} attempts: "
        values["error"] = prefix + describe_error(error)
        values["traceback"] = "".join(
            traceback.format_exception(type(error), error, error.__traceback__))
    return values


def _record(state: SyncdState, run_id: int, values: dict[str, object]) -> SyncRun:
    with state.sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        for key, value in values.items():
            setattr(run, key, value)
        session.flush()
        return run


def _json(value: object) -> str | None:
    return dumps(value)


def describe(run: SyncRun) -> str:
    """One summary line of a run (what it is doing now, if it is not finished)."""
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
    if run.activity:  # a queued or running run: waiting, retrying, being cancelled
        line += f" -- {one_line(run.activity)}"
    elif run.error:
        line += f" -- {one_line(run.error)}"
    return line
