"""The swap of a split load: when every range is loaded, count and swap once, record the run.

Called by the last range's callback task (``syncd.split_finish``) or by ``syncd run
--jobs N`` once its processes are done. It takes the job's lock, so a second call (a
callback sent twice) finds the run finished and does nothing.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, func, select

from syncd import SyncdState
from syncd.engine import Progress, SyncResult, connect_source
from syncd.engine import split as engine_split
from syncd.engine.connect import translated_errors
from syncd.engine.ranges import split_ranges
from syncd.group_tables import resolve_at_source
from syncd.locks import JobFence, JobLock
from syncd.models import SyncRun
from syncd.retry import Backoff, is_transient_error
from syncd.split_runner import LOCK_WAIT_SECONDS, ranges_left, run_row, run_status


def finish_run(state: SyncdState, run_id: int, lock: JobLock | None = None) -> SyncRun | None:
    """Every range is loaded: count and swap once, record the run. With the job's lock
    (``lock``: already held by the caller), so a second call finds nothing to do."""
    run = run_row(state, run_id)
    if run is None or run.status != "running":
        return run
    own = lock is None
    if lock is None:
        lock = JobLock(state.engine, run.job)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while not lock.acquire():
            if run_status(state, run_id) != "running" or time.monotonic() > deadline:
                return run_row(state, run_id)
            time.sleep(0.2)
    try:
        if run_status(state, run_id) != "running" or ranges_left(state.engine, run.job, run_id):
            return run_row(state, run_id)
        return _swap(state, run, lock)
    finally:
        if own:
            lock.release()


def _swap(state: SyncdState, run: SyncRun, lock: JobLock) -> SyncRun | None:
    from syncd.runner import _finish

    spec = state.jobs().job(run.job)
    backoff = Backoff.of(state.config)
    progress = Progress(rows_read=_rows_read(state.engine, run.job, run.id),
                        rows_total=run.rows_total, phase="full")
    error: BaseException | None = None
    result = SyncResult(full_load=True)
    attempt = 0
    for attempt in range(1, backoff.attempts + 1):
        source = connect_source(spec.source.url)
        try:
            spec = resolve_at_source(spec, source)  # a group's table job: its cursor candidate
            ctx = engine_split.open_context(spec.table_sync(), source, state.engine, progress,
                                            JobFence(lock, run.id))
            with translated_errors("local database"):
                engine_split.finish(ctx)
            cursor = ctx.decode(progress.cursor, spec.cursor) if spec.cursor else None
            result = SyncResult(rows_read=progress.rows_read, full_load=True,
                                rows_inserted=progress.rows_inserted,
                                rows_updated=progress.rows_updated,
                                rows_deleted=progress.rows_deleted, cursor_after=cursor)
            error = None
            break
        except Exception as exc:  # noqa: BLE001  (recorded in the history)
            error = exc
            if not is_transient_error(exc) or attempt == backoff.attempts:
                break
            time.sleep(backoff.delay(attempt))
        finally:
            source.dispose()
    finished = _finish(state, run, progress, result, error, max(attempt, run.attempts or 1),
                       backoff, run.attempt_errors)
    from syncd.notify.alerts import notify_run

    notify_run(state, finished)
    return finished


def _rows_read(engine: Engine, job: str, run_id: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(split_ranges.c.rows_read), 0))
                                .where(split_ranges.c.job == job,
                                       split_ranges.c.run_id == run_id)).scalar_one())
