"""Split full loads: plan the ranges in the run, load each range in any process, swap once.

A full load (first load, ``--full-refresh``, ``mode = "full"``) of a table whose
catalog estimate exceeds the job's ``split_rows`` is cut into key ranges
(``syncd.engine.ranges``). The run that plans them stays the one run of the
history: each range is a Celery task (``syncd.split_tasks``) or one of ``syncd run
--jobs N``'s processes, loading into the one staging table with its own checkpoint
and retried like a run; the last range to finish queues the swap. The job stays
held meanwhile (``syncd.split_lease``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from syncd import SyncdState
from syncd.engine import Progress, connect_source
from syncd.engine import split as engine_split
from syncd.engine.checkpoint import load_checkpoint
from syncd.engine.connect import translated_errors
from syncd.engine.errors import LostJobLock, RunCancelled, RunTimedOut
from syncd.engine.ranges import split_ranges
from syncd.group_tables import resolve_at_source
from syncd.jobs import JobSpec
from syncd.locks import JobLock
from syncd.models import SyncRun, utcnow
from syncd.retry import Backoff, describe_error, is_transient_error
from syncd.slots import take_range_slot
from syncd.split_lease import RangeFence, range_lock

log = logging.getLogger(__name__)

CELERY = -1  # RunRequest.split_workers: ranges as tasks of the broker (a worker's run)
LOCK_WAIT_SECONDS = 300.0  # the swap waits this long for the job lock of a planning run


class SplitStarted(Exception):  # noqa: N818  (not an error: the run goes on elsewhere)
    """The run's full load was split: ``pending`` ranges are left to load."""

    def __init__(self, job: str, run_id: int, pending: list[int], total: int) -> None:
        super().__init__(f"job {job}: run #{run_id} split into {total} ranges")
        self.job, self.run_id, self.pending, self.total = job, run_id, pending, total


class RunGone(Exception):  # noqa: N818
    """The run of a range is no longer running (finished, failed, taken over)."""


def maybe_split(spec: JobSpec, state: SyncdState, source: Engine, full_refresh: bool,
                progress: Progress, guard: Callable[[Connection], None], run_id: int,
                split_workers: int) -> None:
    """Raise SplitStarted when this run's full load is split; return to load it alone."""
    if split_workers == 0 or split_workers == 1 or state.engine.dialect.name == "sqlite":
        return
    if not full_refresh and spec.mode != "full":  # an incremental pass: one reader, no reflection
        with state.engine.connect() as conn:
            point = load_checkpoint(conn, spec.name)
        if point is not None and point.phase == "incremental":
            return
    ctx = engine_split.open_context(spec.table_sync(), source, state.engine, progress, guard,
                                    mysql_reader=str(state.config.SYNCD_MYSQL_READER))
    with translated_errors("local database"):
        point = engine_split.prepare(ctx, full_refresh)
        if not engine_split.needs_full_load(ctx, point):
            return
        split = engine_split.plan(ctx, point, spec.split_rows)
        if split is None:
            return
        progress.phase = "full"
        pending = engine_split.start(ctx, split, run_id,
                                     "celery" if split_workers < 0 else "local")
    total = _count(state.engine, spec.name)
    values: dict[str, Any] = {"phase": "full"}
    if split.estimate is not None:
        values["rows_total"] = split.estimate
    _update_run(state, run_id, **values)
    raise SplitStarted(spec.name, run_id, pending, total)


def _count(engine: Engine, job: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(split_ranges)
                                .where(split_ranges.c.job == job)).scalar_one())


def _update_run(state: SyncdState, run_id: int, **values: Any) -> None:
    with state.sessions.begin() as session:
        session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))


def range_rows(engine: Engine, run_id: int) -> list[dict[str, Any]]:
    """The ranges of a split run, for its page: index, status, rows read, attempts, error."""
    with engine.connect() as conn:
        rows = conn.execute(select(split_ranges).where(split_ranges.c.run_id == run_id)
                            .order_by(split_ranges.c.idx)).mappings().all()
    return [dict(r) for r in rows]


def run_range(state: SyncdState, run_id: int, idx: int,
              all_done: Callable[[], None] | None = None) -> str:
    """Load range ``idx`` of split run ``run_id`` here; what became of it.

    Waits while another process loads the same range (it finishes it, or dies and
    frees it). ``all_done`` is called when this range was the last one left.
    """
    run = run_row(state, run_id)
    if run is None or run.status != "running":
        return "run not running"
    lock = range_lock(state.engine, run.job, idx)
    while not lock.acquire():
        row = _range(state.engine, run.job, idx)
        if row is None or row.status == "done" or row.run_id != run_id:
            return "loaded elsewhere"
        if run_status(state, run_id) != "running":
            return "run not running"
        time.sleep(0.5)
    try:
        outcome = _load_range(state, run, idx, lock)
    finally:
        lock.release()
    last = outcome == "done" and ranges_left(state.engine, run.job, run_id) == 0
    if last and all_done is not None:
        all_done()
    return outcome


def _load_range(state: SyncdState, run: SyncRun, idx: int, lock: JobLock) -> str:
    """With the range's lock: its attempts, retried like a run's."""
    row = _range(state.engine, run.job, idx)
    if row is None or row.run_id != run.id:
        return "not this run's range"
    if row.status == "done":
        return "done"
    spec = state.jobs().job(run.job)
    slot = take_range_slot(state, spec.source, lambda: run_status(state, run.id) == "running")
    if slot is None:
        return "stopped"
    try:
        return _attempts(state, run, idx, spec, lock)
    finally:
        slot.release()


def _attempts(state: SyncdState, run: SyncRun, idx: int, spec: JobSpec, lock: JobLock) -> str:
    """The range's attempts, with a slot of the source held."""
    row = _range(state.engine, run.job, idx)
    backoff = Backoff.of(state.config)
    fence = RangeFence(lock, run.job, run.id, idx)
    recorder = _RangeRecorder(state, run, spec)
    for attempt in range(1, backoff.attempts + 1):
        _set_range(state.engine, run.job, idx, status="running",
                   attempts=split_ranges.c.attempts + 1,  # across processes and runs
                   worker=f"{socket.gethostname()}:{os.getpid()}", heartbeat_at=_now(),
                   started_at=row.started_at or _now())
        try:
            _attempt(state, spec, idx, fence, recorder, attempt == 1)
            _set_range(state.engine, run.job, idx, status="done", finished_at=_now(),
                       error=None)
            recorder.write()
            return "done"
        except (RunGone, LostJobLock) as exc:
            _set_range(state.engine, run.job, idx, status="pending", worker=None)
            log.info("run #%s range %s stopped: %s", run.id, idx, exc)
            return "stopped"
        except RunCancelled as exc:
            _set_range(state.engine, run.job, idx, status="pending", worker=None)
            end_run(state, run.id, "cancelled", f"{exc}: stopped at a batch boundary; the "
                    "checkpoint of every range is kept", cancelled_by=exc.by)
            return "cancelled"
        except Exception as exc:  # noqa: BLE001  (recorded in the range and the run)
            last = isinstance(exc, RunTimedOut) or not is_transient_error(exc) \
                or attempt == backoff.attempts
            _set_range(state.engine, run.job, idx, error=describe_error(exc))
            if last:
                return _give_up(state, run, idx, attempt, exc)
            log.warning("run #%s range %s: attempt %d failed (%s); retrying", run.id, idx,
                        attempt, describe_error(exc))
            time.sleep(backoff.delay(attempt))
    return "failed"  # pragma: no cover  (the loop returns)


# The source table and type map of the run whose ranges this process loaded last: the
# next range of the same run skips reflecting the source again (a first attempt only).
_known: dict[int, Any] = {}


def _attempt(state: SyncdState, spec: JobSpec, idx: int, fence: RangeFence,
             recorder: _RangeRecorder, first: bool) -> None:
    source = connect_source(spec.source.url)
    try:
        spec = resolve_at_source(spec, source)  # a group's table job: its cursor candidate
        known = _known.get(fence.run_id) if first else None
        ctx = engine_split.open_context(spec.table_sync(), source, state.engine, Progress(),
                                        fence, recorder,
                                        mysql_reader=str(state.config.SYNCD_MYSQL_READER),
                                        known=known)
        _known.clear()
        _known[fence.run_id] = (ctx.src, ctx.plans)
        recorder(ctx.progress)  # a run cancelled or gone meanwhile stops before reading
        with translated_errors("local database"):
            engine_split.load_range(ctx, idx)
    finally:
        source.dispose()


def _give_up(state: SyncdState, run: SyncRun, idx: int, attempts: int,
             exc: BaseException) -> str:
    _set_range(state.engine, run.job, idx, status="failed", finished_at=_now())
    again = f" after {attempts} attempts" if attempts > 1 else ""
    end_run(state, run.id, "failed", f"range {idx} gave up{again}: {describe_error(exc)}; "
            "the checkpoint of every range is kept: the next run resumes them")
    return "failed"


class _RangeRecorder:
    """After every committed batch of a range: stops it when its run is no longer running,
    was cancelled or is past its timeout; moves the run's counters once a second."""

    def __init__(self, state: SyncdState, run: SyncRun, spec: JobSpec) -> None:
        self.state, self.run_id, self.job = state, run.id, run.job
        started = run.started_at or utcnow()
        self.deadline = started.timestamp() + spec.timeout.total_seconds() \
            if spec.timeout else None
        self.last_write = 0.0

    def __call__(self, progress: Progress) -> None:
        with self.state.sessions() as session:
            row = session.execute(select(SyncRun.status, SyncRun.cancelled_by,
                                         SyncRun.cancel_requested_at)
                                  .where(SyncRun.id == self.run_id)).one()
        if row.status != "running":
            raise RunGone(f"run #{self.run_id} is {row.status}")
        if row.cancel_requested_at is not None:
            raise RunCancelled(row.cancelled_by or "someone")
        if self.deadline is not None and time.time() > self.deadline:
            raise RunTimedOut("timed out; the checkpoint of every range is kept")
        if time.monotonic() - self.last_write >= 1.0:
            self.last_write = time.monotonic()
            self.write()

    def write(self) -> None:
        """The run's rows read: the sum of its ranges'."""
        with self.state.sessions.begin() as session:
            total = session.scalar(select(func.coalesce(func.sum(split_ranges.c.rows_read), 0))
                                   .where(split_ranges.c.job == self.job,
                                          split_ranges.c.run_id == self.run_id))
            session.execute(update(SyncRun).where(SyncRun.id == self.run_id,
                                                  SyncRun.status == "running")
                            .values(rows_read=int(total or 0), heartbeat_at=utcnow()))


def end_run(state: SyncdState, run_id: int, status: str, error: str,
            cancelled_by: str | None = None) -> SyncRun | None:
    """Record a split run's end (only while it is running: the first end wins)."""
    from syncd.notify.alerts import notify_run

    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow(),
                              "heartbeat_at": utcnow()}
    if cancelled_by is not None:
        values["cancelled_by"] = cancelled_by
    with state.sessions.begin() as session:
        job = session.scalar(select(SyncRun.job).where(SyncRun.id == run_id))
        total = session.scalar(select(func.coalesce(func.sum(split_ranges.c.rows_read), 0))
                               .where(split_ranges.c.job == job,
                                      split_ranges.c.run_id == run_id))
        values["rows_read"] = int(total or 0)
        done = session.execute(update(SyncRun).where(SyncRun.id == run_id,
                                                     SyncRun.status == "running")
                               .values(**values))
        if not done.rowcount:  # type: ignore[attr-defined]
            return None
    run = run_row(state, run_id)
    notify_run(state, run)
    return run


def run_row(state: SyncdState, run_id: int) -> SyncRun | None:
    with state.sessions() as session:
        return session.get(SyncRun, run_id)


def run_status(state: SyncdState, run_id: int) -> str | None:
    with state.sessions() as session:
        return session.scalar(select(SyncRun.status).where(SyncRun.id == run_id))


def _range(engine: Engine, job: str, idx: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(split_ranges).where(
            split_ranges.c.job == job, split_ranges.c.idx == idx)).first()


def ranges_left(engine: Engine, job: str, run_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(split_ranges).where(
            split_ranges.c.job == job, split_ranges.c.run_id == run_id,
            split_ranges.c.status != "done")).scalar_one())


def _set_range(engine: Engine, job: str, idx: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(split_ranges).where(split_ranges.c.job == job,
                                                split_ranges.c.idx == idx).values(**values))


def _now() -> Any:
    return engine_split.now()
