"""Runs that can no longer finish by themselves: ``running`` runs whose process is gone.

A run's job lock dies with its process, so a run still ``running`` whose job lock is
free lost its process (killed, crashed, machine gone): with the lock held, it is
marked ``abandoned`` and its lease is cleared, so that even a process that only lost
its connection (a restart of the local database) can never write for it again. The
next run resumes from the last committed checkpoint.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd import SyncdState
from syncd.locks import JobLock, fence_off
from syncd.models import SyncRun, utcnow

log = logging.getLogger(__name__)

ABANDONED = ("the process running this sync died (killed, crashed, lost its worker or its "
             "connection to the local database); the next run resumes from the last checkpoint")


def abandon_running(session: Session, job: str) -> list[int]:
    """With the job's lock held: mark the job's ``running`` runs abandoned; their ids."""
    runs = list(session.scalars(
        select(SyncRun).where(SyncRun.job == job, SyncRun.status == "running")
    ))
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
                marked += _abandon(state, name)
            finally:
                lock.release()
    return marked


def _abandon(state: SyncdState, job: str) -> list[int]:
    with state.sessions.begin() as session:
        return abandon_running(session, job)
