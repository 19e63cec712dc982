"""What the workers page shows: workers alive and what each runs, the queue, beat's tick.

Workers are known from two sides: their heartbeats in the local database
(every broker) and Celery's remote control (``inspect ping`` and ``active``),
which only brokers with fanout exchanges carry (RabbitMQ, Redis; not the
embedded SQLite broker). Runs in progress come from the run history, matched
to a worker by host and process id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery
from sqlalchemy import select

from syncd import SyncdState
from syncd.heartbeats import is_alive, recent
from syncd.jobs import mask_url
from syncd.models import Heartbeat, SyncRun, utcnow

log = logging.getLogger(__name__)

PING_TIMEOUT = 1.0  # seconds the page waits for workers to answer Celery's ping
BROKER_TIMEOUT = 3.0  # seconds to connect to the broker


@dataclass
class WorkerView:
    """One worker: its heartbeat, whether it answered the ping, what it runs now."""

    name: str
    heartbeat: Heartbeat | None = None
    answered_ping: bool | None = None  # None: the broker cannot carry the ping
    runs: list[SyncRun] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)  # Celery's own view of its active tasks

    @property
    def alive(self) -> bool:
        return bool(self.answered_ping) or (
            self.heartbeat is not None and is_alive(self.heartbeat))


@dataclass
class WorkersReport:
    """Everything the workers page shows."""

    broker: str  # masked URL
    queue: str
    broker_problem: str | None = None
    remote_control: str | None = None  # why workers could not be pinged, if they could not
    queue_depth: int | None = None
    workers: list[WorkerView] = field(default_factory=list)
    waiting: list[SyncRun] = field(default_factory=list)  # runs queued in the history
    elsewhere: list[SyncRun] = field(default_factory=list)  # running outside known workers
    beats: list[Heartbeat] = field(default_factory=list)
    now: datetime = field(default_factory=utcnow)

    @property
    def beats_alive(self) -> list[Heartbeat]:
        return [b for b in self.beats if is_alive(b, self.now)]


def broker_problem(celery_app: Celery, queue: str, timeout: float = BROKER_TIMEOUT) -> str | None:
    """None if the broker answers, else why not (no password in it)."""
    try:
        # A connection of Celery's pool: its channel is reused (kombu's SQLAlchemy transport
        # keeps a database connection per channel until the channel is garbage).
        with celery_app.connection_or_acquire() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                   interval_max=0, timeout=timeout)
            try:
                conn.default_channel.queue_declare(queue=queue, passive=True)
            except conn.channel_errors:
                pass  # no such queue yet: the broker answered all the same
    except Exception as exc:  # noqa: BLE001  (kombu raises many kinds; all mean "down")
        url = mask_url(str(celery_app.conf.broker_url))
        return f"broker unreachable ({url}): {type(exc).__name__}: {_first_line(exc)}"
    return None


def queue_depth(celery_app: Celery, queue: str) -> int:
    """Messages waiting in ``queue`` (0 if the broker does not know the queue yet)."""
    with celery_app.connection_or_acquire() as conn:
        try:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True)
                       .message_count)
        except conn.channel_errors:
            return 0


def can_broadcast(celery_app: Celery) -> bool:
    """True if the broker carries Celery's remote control (it needs fanout exchanges)."""
    with celery_app.connection_for_read() as conn:
        return "fanout" in conn.transport.implements.exchange_type


def workers_report(state: SyncdState, celery_app: Celery) -> WorkersReport:
    """Workers, queue, waiting runs and beat, for the workers page."""
    queue = str(state.config.SYNCD_QUEUE)
    report = WorkersReport(broker=mask_url(str(celery_app.conf.broker_url)), queue=queue)
    with state.sessions() as session:
        heartbeats = recent(session, "worker", report.now)
        report.beats = recent(session, "beat", report.now)
        running = list(session.scalars(select(SyncRun).where(SyncRun.status == "running")
                                       .order_by(SyncRun.id)))
        report.waiting = list(session.scalars(select(SyncRun).where(SyncRun.status == "queued")
                                              .order_by(SyncRun.id).limit(100)))
    workers = {hb.name: WorkerView(name=hb.name, heartbeat=hb) for hb in heartbeats}
    report.broker_problem = broker_problem(celery_app, queue)
    if report.broker_problem is None:
        report.queue_depth = queue_depth(celery_app, queue)
        _ask_workers(celery_app, workers, report)
    else:
        report.remote_control = "the broker is unreachable"
    _place_runs(running, workers, report)
    report.workers = sorted(workers.values(), key=lambda w: (not w.alive, w.name))
    return report


def _ask_workers(celery_app: Celery, workers: dict[str, WorkerView],
                 report: WorkersReport) -> None:
    """Ping the workers and ask what they run (brokers with fanout only)."""
    if not can_broadcast(celery_app):
        report.remote_control = ("the embedded SQLite broker cannot carry Celery's remote "
                                 "control: workers are known by their heartbeats")
        return
    try:
        pongs = celery_app.control.inspect(timeout=PING_TIMEOUT).ping() or {}
        for view in workers.values():
            view.answered_ping = view.name in pongs
        for name in pongs:
            workers.setdefault(name, WorkerView(name=name, answered_ping=True))
        if pongs:
            active = celery_app.control.inspect(
                destination=list(pongs), timeout=PING_TIMEOUT, limit=len(pongs)).active() or {}
            for name, tasks in active.items():
                workers[name].tasks = [_task_text(task) for task in tasks]
    except Exception as exc:  # noqa: BLE001  (a failed ping must not break the page)
        log.warning("workers page: inspect failed: %s", exc)
        report.remote_control = f"Celery's ping failed: {type(exc).__name__}: {exc}"


def _place_runs(running: list[SyncRun], workers: dict[str, WorkerView],
                report: WorkersReport) -> None:
    """Give each running run to the worker whose process runs it."""
    for run in running:
        owner = next((w for w in workers.values() if w.heartbeat is not None
                      and w.heartbeat.hostname == run.hostname
                      and (run.pid in w.heartbeat.pids or run.pid == w.heartbeat.pid)), None)
        if owner is None:
            report.elsewhere.append(run)
        else:
            owner.runs.append(run)


def _task_text(task: dict[str, Any]) -> str:
    kwargs = task.get("kwargs") or {}
    if isinstance(kwargs, dict) and kwargs.get("run_id") is not None:
        return f"run #{kwargs['run_id']}"
    if isinstance(kwargs, dict) and kwargs.get("job"):
        return f"scheduled tick of {kwargs['job']}"
    return str(task.get("name") or "a task")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]
