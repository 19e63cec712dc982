"""Signs of life of workers and beat, kept in the local database for the workers page.

A worker writes its heartbeat every ``WORKER_EVERY`` seconds (its node name, host,
pid, pool processes) and its stop; beat writes the time of its last tick. The
page reads them back: a worker is alive while its heartbeat is recent. This works
on every broker, including the embedded SQLite one, whose workers cannot answer
Celery's remote control (``inspect ping``).

The writes happen in a thread of their own, on an engine that keeps no connection
and gives up quickly, so a slow or unreachable local database never holds up a
worker's event loop or beat's schedule.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from syncd.engine.urls import database_url
from syncd.models import Heartbeat, utcnow
from syncd.retry import describe_error

log = logging.getLogger(__name__)

WORKER_EVERY = 15.0  # seconds between two heartbeats of a worker
BEAT_EVERY = 5.0  # seconds between two records of beat's tick (beat loops at least this often)
ALIVE_FOR = 3  # a heartbeat counts this many periods
FORGET_AFTER = timedelta(days=7)  # heartbeats older than this are deleted
WAIT_SECONDS = 5  # the longest a heartbeat waits to connect or for a lock


@dataclass(frozen=True)
class Sign:
    """One heartbeat to record."""

    kind: str  # worker | beat
    name: str
    hostname: str
    pid: int
    pool_pids: list[int] | None = None
    concurrency: int | None = None
    seen_at: datetime | None = None  # default: now (beat: the time of its last tick)


def heartbeat_engine(url: str) -> Engine:
    """An engine on the local database that keeps no connection and waits at most a few s."""
    parsed = database_url(url)  # the drivers syncd ships, as for every other engine
    connect_args: dict[str, Any] = {"timeout": WAIT_SECONDS} \
        if parsed.get_backend_name() == "sqlite" else {"connect_timeout": WAIT_SECONDS}
    return create_engine(parsed, poolclass=NullPool, connect_args=connect_args)


class HeartbeatThread(threading.Thread):
    """Records ``sign()`` every ``every`` seconds until stopped; the stop is recorded too."""

    def __init__(self, url: str, sign: Callable[[], Sign], every: float,
                 first: threading.Event | None = None) -> None:
        super().__init__(name="syncd-heartbeat", daemon=True)
        self.engine = heartbeat_engine(url)
        self.sign = sign
        self.every = every
        self.first = first  # when given, the first heartbeat waits for it
        self.stopping = threading.Event()

    def run(self) -> None:
        if self.first is not None:
            while not self.first.wait(0.2):
                if self.stopping.is_set():
                    return
        while not self.stopping.is_set():
            record(self.engine, self.sign())
            self.stopping.wait(self.every)

    def stop(self) -> None:
        """Stop writing and say that the process stopped."""
        self.stopping.set()
        self.join(timeout=WAIT_SECONDS * 2)
        sign = self.sign()
        record_stop(self.engine, sign.kind, sign.name, sign.pid)
        self.engine.dispose()


def record(engine: Engine, sign: Sign, now: datetime | None = None) -> None:
    """Write ``sign`` as the newest heartbeat of its process; logs and carries on on error."""
    now = now or utcnow()
    seen = sign.seen_at or now
    values = {"hostname": sign.hostname, "pid": sign.pid, "concurrency": sign.concurrency,
              "pool_pids": json.dumps(sign.pool_pids) if sign.pool_pids is not None else None,
              "last_seen_at": seen}
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
        log.warning("heartbeat of %s %s not recorded: %s", sign.kind, sign.name,
                    describe_error(exc))


def record_stop(engine: Engine, kind: str, name: str, pid: int) -> None:
    """Say that a process stopped (a clean shutdown), so it does not linger as alive."""
    try:
        with Session(engine) as session, session.begin():
            row = session.get(Heartbeat, (kind, name))
            if row is not None and row.pid == pid:
                row.stopped_at = utcnow()
    except SQLAlchemyError as exc:
        log.warning("stop of %s %s not recorded: %s", kind, name, describe_error(exc))


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


def beat_sign(pid: int, hostname: str, last_tick: datetime | None = None) -> Sign:
    """The heartbeat of a beat process (one per host and pid): the time of its last tick."""
    return Sign(kind="beat", name=f"{hostname}:{pid}", hostname=hostname, pid=pid,
                seen_at=last_tick)


def worker_sign(worker: Any, hostname: str, pid: int) -> Sign:
    """The heartbeat of a Celery worker (its node name, pool processes, concurrency)."""
    try:
        pids = [int(p) for p in (worker.pool.info or {}).get("processes", [])]
    except Exception:  # noqa: BLE001  (a pool that cannot say: no pids, still alive)
        pids = []
    return Sign(kind="worker", name=str(worker.hostname), hostname=hostname, pid=pid,
                pool_pids=pids, concurrency=getattr(worker, "concurrency", None))
