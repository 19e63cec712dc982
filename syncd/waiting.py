"""Who asked is never dropped: a run someone asked for waits while another run has the job.

A scheduled tick that finds its job's lock held is ``skipped``. A run queued by an
operator (web, API, ``syncd trigger``) stays ``queued``, "waiting for run #N", and
takes the lock as soon as it is free, waiting at most the job's timeout
(SYNCD_MAX_RUN_SECONDS for a job without one); after that it fails saying so. While
it waits, its row's heartbeat moves every poll, so housekeeping knows it is alive, and
a scheduled tick that takes the lock first steps aside (``skipped``): the run someone
asked for goes next. A cancel request ends the wait at once.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import select, update

from syncd import SyncdState
from syncd.locks import JobLock
from syncd.models import SyncRun, utcnow
from syncd.retry import Backoff, local_write

POLL_SECONDS = 1.0
ALIVE_SECONDS = 30.0  # a waiting run whose heartbeat is older than this has lost its process


def wait_limit(spec: Any, max_run_seconds: float) -> float:
    """Seconds a run waits for its job at most: the job's timeout, else the longest run."""
    if spec.timeout is not None:
        return float(spec.timeout.total_seconds())
    return float(max_run_seconds)


def wait_for_job(state: SyncdState, spec: Any, run_id: int, lock: JobLock) -> SyncRun | None:
    """Wait until the job's lock is free and take it (None); or the run's row when it
    stopped waiting: cancelled meanwhile, or failed when the wait reached its limit."""
    backoff = Backoff.of(state.config)
    limit = wait_limit(spec, state.config.SYNCD_MAX_RUN_SECONDS)
    deadline = time.monotonic() + limit
    why = "the job's timeout" if spec.timeout is not None else "SYNCD_MAX_RUN_SECONDS"
    while True:
        waiting, holder = local_write(partial(_still_waiting, state, spec.name, run_id),
                                      backoff, "record that the run waits")
        if not waiting:
            return _row(state, run_id)  # not queued anymore: cancelled
        if local_write(lock.acquire, backoff, "take the job lock"):
            return None
        if time.monotonic() >= deadline:
            return local_write(partial(_give_up, state, run_id, holder, limit, why), backoff,
                               "record the run")
        time.sleep(POLL_SECONDS)


def waiting_run(state: SyncdState, job: str) -> SyncRun | None:
    """The oldest run someone asked for that is alive and waiting for ``job``, or None."""
    alive = utcnow() - timedelta(seconds=ALIVE_SECONDS)
    with state.sessions() as session:
        return session.scalar(
            select(SyncRun).where(SyncRun.job == job, SyncRun.status == "queued",
                                  SyncRun.heartbeat_at >= alive, SyncRun.trigger != "schedule")
            .order_by(SyncRun.id).limit(1))


def _still_waiting(state: SyncdState, job: str, run_id: int) -> tuple[bool, int | None]:
    """Record the heartbeat and the run waited for: (False, ...) if no longer queued."""
    with state.sessions.begin() as session:
        holder = session.scalar(
            select(SyncRun.id).where(SyncRun.job == job, SyncRun.status == "running")
            .order_by(SyncRun.id.desc()).limit(1))
        done = session.connection().execute(
            update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "queued")
            .values(heartbeat_at=utcnow(), waiting_for=holder))
        return bool(done.rowcount), holder


def _row(state: SyncdState, run_id: int) -> SyncRun | None:
    with state.sessions() as session:
        return session.get(SyncRun, run_id)


def _give_up(state: SyncdState, run_id: int, holder: int | None, limit: float, why: str,
             ) -> SyncRun:
    which = f"run #{holder}" if holder is not None else "another process"
    now = utcnow()
    with state.sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        assert run is not None
        if run.status == "queued":
            run.status = "failed"
            run.finished_at = now
            run.heartbeat_at = now
            run.error = (f"not started: waited {_words(limit)} ({why}) for "
                         f"{which} to finish, and it still holds the job; start it again")
        session.flush()
        return run


def _words(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
