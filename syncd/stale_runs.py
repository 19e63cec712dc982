"""Housekeeping of runs that can no longer finish by themselves.

- A run's job lock dies with its process, so a run still ``running`` whose job lock
  is free lost its process (killed, crashed, machine gone): with the lock held, it is
  marked ``abandoned`` and its lease is cleared, so that even a process that only lost
  its connection (a restart of the local database) can never write for it again. The
  next run resumes from the last committed checkpoint.
- A run ``queued`` for longer than SYNCD_QUEUED_TIMEOUT will never start: its broker
  message expires then (``syncd.tasks.enqueue_run``), or was lost. It is marked
  ``abandoned`` with that reason. A queued run that a worker holds while it waits for
  its job (``syncd.waiting``) moves its heartbeat every second: it is left alone.

Beat does this every SYNCD_HOUSEKEEPING_SECONDS (in its own process: no worker
needed), ``syncd up`` when it starts, and a read of the dashboard or of /metrics
at most once per SYNCD_HOUSEKEEPING_SECONDS per web process.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from weakref import WeakKeyDictionary

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from syncd import SyncdState
from syncd.locks import JobLock, fence_off
from syncd.models import SyncRun, utcnow
from syncd.retry import describe_error

log = logging.getLogger(__name__)

ABANDONED = ("the process running this sync died (killed, crashed, lost its worker or its "
             "connection to the local database); the next run resumes from the last checkpoint")


def abandon_running(session: Session, job: str, split_ttl: float | None = None) -> list[int]:
    """With the job's lock held: mark the job's ``running`` runs abandoned; their ids.

    ``split_ttl``: a split run that is still alive (``syncd.split_lease``) is kept.
    """
    runs = list(session.scalars(
        select(SyncRun).where(SyncRun.job == job, SyncRun.status == "running")
    ))
    if split_ttl is not None:
        from syncd.split_lease import split_live

        engine = session.get_bind()
        runs = [r for r in runs
                if not split_live(session.connection(), engine, r, split_ttl)]  # type: ignore[arg-type]
    for run in runs:
        run.status = "abandoned"
        run.finished_at = run.heartbeat_at or utcnow()
        run.error = (run.error + "; " if run.error else "") + ABANDONED
    ids = [run.id for run in runs]
    fence_off(session.connection(), job, ids)
    return ids


def mark_abandoned(state: SyncdState, job: str | None = None) -> list[int]:
    """Mark ``running`` runs whose lock is free (their process is gone) ``abandoned``."""
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
                marked += _abandon(state, name, float(state.config.SYNCD_QUEUED_TIMEOUT))
            finally:
                lock.release()
    return marked


def _abandon(state: SyncdState, job: str, split_ttl: float) -> list[int]:
    with state.sessions.begin() as session:
        return abandon_running(session, job, split_ttl)


def queued_too_long(timeout_seconds: float) -> str:
    """Why a queued run was abandoned."""
    return (f"queued for longer than SYNCD_QUEUED_TIMEOUT ({_words(timeout_seconds)}) without "
            "a worker starting it: its broker message expired or was lost, so it never "
            "starts; start the job again")


def expire_queued(state: SyncdState, timeout_seconds: float) -> list[int]:
    """Mark runs ``queued`` for longer than ``timeout_seconds`` abandoned; their ids."""
    now = utcnow()
    cutoff = now - timedelta(seconds=timeout_seconds)
    with state.sessions.begin() as session:
        ids = list(session.scalars(
            select(SyncRun.id).where(SyncRun.status == "queued", SyncRun.queued_at < cutoff,
                                     or_(SyncRun.heartbeat_at.is_(None),
                                         SyncRun.heartbeat_at < cutoff))
        ))
        if ids:
            session.execute(
                update(SyncRun).where(SyncRun.id.in_(ids), SyncRun.status == "queued")
                .values(status="abandoned", finished_at=now,
                        error=queued_too_long(timeout_seconds))
            )
    return ids


def housekeep(state: SyncdState) -> list[int]:
    """Mark dead ``running`` runs and expired ``queued`` runs abandoned; their ids."""
    marked = mark_abandoned(state)
    expired = expire_queued(state, float(state.config.SYNCD_QUEUED_TIMEOUT))
    if marked:
        log.warning("runs %s lost their process: marked abandoned", _ids(marked))
    if expired:
        log.warning("runs %s were queued too long: marked abandoned", _ids(expired))
    return sorted(marked + expired)


_last_housekeeping: WeakKeyDictionary[SyncdState, float] = WeakKeyDictionary()
_throttle = threading.Lock()


def housekeep_now_and_then(state: SyncdState) -> None:
    """Housekeeping on a page read: at most once per SYNCD_HOUSEKEEPING_SECONDS per
    process, one index probe when nothing is queued or running; never fails the read."""
    now = time.monotonic()
    with _throttle:
        last = _last_housekeeping.get(state)
        if last is not None and now - last < float(state.config.SYNCD_HOUSEKEEPING_SECONDS):
            return
        _last_housekeeping[state] = now
    try:
        with state.sessions() as session:
            active = session.scalar(
                select(SyncRun.id).where(SyncRun.status.in_(("queued", "running"))).limit(1))
        if active is not None:
            housekeep(state)
    except Exception as exc:  # noqa: BLE001  (a page read never fails because of it)
        log.warning("housekeeping skipped: %s", describe_error(exc))


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def _words(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
