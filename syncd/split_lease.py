"""Who holds a job while its split load's ranges run in several processes.

A run's job lock (``syncd.locks.JobLock``) is a session lock: it dies with the
process that took it. The ranges of a split load run in many processes, on many
machines, and between them no process may hold anything (a range waits in the
broker's queue for a worker). So the job stays held by its run in the local
database:

- the job's lease row (``syncd_job_leases``) keeps the run id for the whole load;
  every range checks it, row-locked in share mode, first in each transaction that
  writes (``RangeFence``): ranges do not wait for each other, and a run that
  housekeeping or a new run took the job from stops there without writing;
- each range takes its own session lock (``<job>#range<n>``) while it loads: it dies
  with its process, so a range whose process died is known at once, and the same
  range never runs in two processes at a time;
- ``RunLock`` is the job lock that runs take: it is not free while the job has a
  split run that is alive (a range lock is held, or a range or the run moved within
  SYNCD_QUEUED_TIMEOUT: a range may wait that long in the queue). Housekeeping
  abandons a split run only when it is not alive.
- ``syncd run --jobs N`` holds the job lock itself until its processes are done and
  the table swapped: once that lock is free, only a range still at work keeps the
  run alive.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from syncd.engine.errors import LostJobLock
from syncd.engine.ranges import split_ranges
from syncd.locks import LOST, JobLock
from syncd.models import JobLease, SyncRun


def range_lock(engine: Engine, job: str, idx: int) -> JobLock:
    """The session lock of range ``idx`` of ``job``'s split load."""
    return JobLock(engine, f"{job}#range{idx}")


def lock_is_held(lock: JobLock) -> bool:
    """True if another process holds ``lock`` right now."""
    if lock.acquire():
        lock.release()
        return False
    return True


def split_live(conn: Connection, engine: Engine, run: SyncRun, ttl_seconds: float) -> bool:
    """True if ``run`` is a split load that is still alive (see the module's text)."""
    rows = conn.execute(select(split_ranges).where(
        split_ranges.c.job == run.job, split_ranges.c.run_id == run.id)).all()
    if not rows:
        return False
    if any(lock_is_held(range_lock(engine, run.job, r.idx)) for r in rows
           if r.status != "done"):
        return True
    if any(r.dispatch == "local" for r in rows):  # its command held the job lock: it died
        return False
    moments = [_aware(t) for r in rows for t in (r.heartbeat_at, r.finished_at, r.started_at)]
    moments.append(_aware(run.heartbeat_at))
    latest = max((m for m in moments if m is not None), default=None)
    if latest is None:
        return False
    return (datetime.now(UTC) - latest).total_seconds() < ttl_seconds


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def live_split_run(engine: Engine, job: str, ttl_seconds: float) -> int | None:
    """The id of the job's running split run that is alive, or None."""
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        runs = list(session.scalars(select(SyncRun).where(
            SyncRun.job == job, SyncRun.status == "running")))
        for run in runs:
            if split_live(session.connection(), engine, run, ttl_seconds):
                return run.id
    return None


class RunLock(JobLock):
    """The job lock a run takes: also held while a split run of the job is alive."""

    def __init__(self, engine: Engine, job: str, ttl_seconds: float) -> None:
        super().__init__(engine, job)
        self.ttl_seconds = ttl_seconds

    def acquire(self) -> bool:
        if not super().acquire():
            return False
        try:
            held = live_split_run(self.engine, self.job, self.ttl_seconds) is not None
        except BaseException:
            self.release()
            raise
        if held:
            self.release()
            return False
        return True


class RangeFence:
    """The fencing token of one range: called first in every transaction it writes.

    The job's lease row, locked in share mode (ranges do not wait for each other; a
    takeover waits for their transactions and then stops them), must name the run;
    the range must still belong to the run; its range lock must still be held.
    """

    def __init__(self, lock: JobLock, job: str, run_id: int, idx: int) -> None:
        self.lock = lock
        self.job = job
        self.run_id = run_id
        self.idx = idx

    def __call__(self, conn: Connection) -> None:
        owner = conn.execute(select(JobLease.run_id).where(JobLease.job == self.job)
                             .with_for_update(read=True)).scalar()
        if owner != self.run_id:
            who = f"run #{owner}" if owner is not None else "housekeeping"
            raise LostJobLock(f"{LOST}: {who} took the job over; range {self.idx} stopped "
                              "without writing")
        mine: Any = conn.execute(select(split_ranges.c.run_id).where(
            split_ranges.c.job == self.job, split_ranges.c.idx == self.idx)).scalar()
        if mine != self.run_id:
            raise LostJobLock(f"{LOST}: range {self.idx} belongs to run #{mine} now")
        self.lock.ensure()
