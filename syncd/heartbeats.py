"""Signs of life of workers and beat, kept in the local database for the workers page.

A worker writes its heartbeat every ``WORKER_EVERY`` seconds (its node name, host,
pid, pool processes) and its stop; beat writes the time of its last tick. The
page reads them back: a worker is alive while its heartbeat is recent. This works
on every broker, including the embedded SQLite one, whose workers cannot answer
Celery's remote control (``inspect ping``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from syncd.models import Heartbeat, utcnow

log = logging.getLogger(__name__)

WORKER_EVERY = 15.0  # seconds between two heartbeats of a worker
BEAT_EVERY = 5.0  # seconds between two records of beat's tick (beat loops at least this often)
ALIVE_FOR = 3  # a heartbeat counts this many periods
FORGET_AFTER = timedelta(days=7)  # heartbeats older than this are deleted


@dataclass(frozen=True)
class Sign:
    """One heartbeat to record."""

    kind: str  # worker | beat
    name: str
    hostname: str
    pid: int
    pool_pids: list[int] | None = None
    concurrency: int | None = None


def record(engine: Engine, sign: Sign, now: datetime | None = None) -> None:
    """Write ``sign`` as the newest heartbeat of its process; logs and carries on on error."""
    now = now or utcnow()
    values = {"hostname": sign.hostname, "pid": sign.pid, "concurrency": sign.concurrency,
              "pool_pids": json.dumps(sign.pool_pids) if sign.pool_pids is not None else None,
              "last_seen_at": now}
    try:
        with Session(engine) as session, session.begin():
            row = session.get(Heartbeat, (sign.kind, sign.name))
            if row is not None and row.pid == sign.pid and row.stopped_at is None:
                for key, value in values.items():
                    setattr(row, key, value)
                return
            if row is not None:  # the same name, a new process: it starts afresh
                session.delete(row)
            session.execute(delete(Heartbeat).where(Heartbeat.last_seen_at < now - FORGET_AFTER))
            session.flush()
            session.add(Heartbeat(kind=sign.kind, name=sign.name, started_at=now, **values))
    except SQLAlchemyError as exc:
        log.warning("heartbeat of %s %s not recorded: %s", sign.kind, sign.name, exc)


def record_stop(engine: Engine, kind: str, name: str, pid: int) -> None:
    """Say that a process stopped (a clean shutdown), so it does not linger as alive."""
    try:
        with Session(engine) as session, session.begin():
            row = session.get(Heartbeat, (kind, name))
            if row is not None and row.pid == pid:
                row.stopped_at = utcnow()
    except SQLAlchemyError as exc:
        log.warning("stop of %s %s not recorded: %s", kind, name, exc)


def recent(session: Session, kind: str, now: datetime | None = None) -> list[Heartbeat]:
    """Heartbeats of ``kind`` from the last day, newest first."""
    now = now or utcnow()
    return list(session.scalars(
        select(Heartbeat).where(Heartbeat.kind == kind,
                                Heartbeat.last_seen_at >= now - timedelta(days=1))
        .order_by(Heartbeat.last_seen_at.desc())))


def is_alive(row: Heartbeat, now: datetime | None = None) -> bool:
    """True while the process's heartbeat is recent and it did not say it stopped."""
    every = WORKER_EVERY if row.kind == "worker" else BEAT_EVERY
    age = ((now or utcnow()) - row.last_seen_at).total_seconds()
    return row.stopped_at is None and age <= ALIVE_FOR * every + every


def beat_sign(pid: int, hostname: str) -> Sign:
    """The heartbeat of a beat process: one per host and pid."""
    return Sign(kind="beat", name=f"{hostname}:{pid}", hostname=hostname, pid=pid)


def worker_sign(worker: Any, hostname: str, pid: int) -> Sign:
    """The heartbeat of a Celery worker (its node name, pool processes, concurrency)."""
    try:
        pids = [int(p) for p in (worker.pool.info or {}).get("processes", [])]
    except Exception:  # noqa: BLE001  (a pool that cannot say: no pids, still alive)
        pids = []
    return Sign(kind="worker", name=str(worker.hostname), hostname=hostname, pid=pid,
                pool_pids=pids, concurrency=getattr(worker, "concurrency", None))
