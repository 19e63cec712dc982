"""Send alerts and record every delivery (``syncd_alerts``, ``syncd_alert_deliveries``).

Entry points: ``notify_run`` (the runner, after a run is recorded and its lock
released), ``notify_housekeeping`` (stale jobs; deliveries left ``sending`` by a
process that died), ``send_test`` (``syncd notify test``) and ``recent_deliveries``
(the deliveries page). Alerting never raises into its caller: a failure is
logged and recorded. Each delivery is tried ``SYNCD_NOTIFY_ATTEMPTS`` times with
exponential backoff from ``SYNCD_NOTIFY_BACKOFF`` seconds, each attempt at most
``SYNCD_NOTIFY_TIMEOUT`` seconds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError

from syncd import SyncdState
from syncd.engine.errors import ConfigError
from syncd.jobs import JobsFile
from syncd.models import Alert, AlertDelivery, SyncRun, utcnow
from syncd.notify.config import NotifySpec, Target
from syncd.notify.events import Event, make_test_event, run_event, stale_event
from syncd.notify.send import DeliveryFailed, default_sender, post_webhook, send_email
from syncd.status import paused_jobs

log = logging.getLogger(__name__)

INTERRUPTED_AFTER = timedelta(hours=1)  # a delivery still "sending" this long lost its process


@dataclass(frozen=True)
class DeliveryResult:
    """How one delivery ended."""

    target: str  # masked
    status: str  # delivered | failed
    attempts: int
    error: str | None


class Scrubber:
    """Replaces every known secret in a text by ``***`` (payloads, errors, log lines)."""

    def __init__(self, jobs: JobsFile) -> None:
        found = set(jobs.notify.secrets)
        for source in jobs.sources.values():
            try:
                password = make_url(source.url).password
            except ArgumentError:
                password = None
            if password:
                found.add(str(password))
        # longest first, so a secret containing another is replaced whole
        self.secrets = sorted((s for s in found if len(s) >= 3), key=len, reverse=True)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


def _jobs(state: SyncdState) -> JobsFile | None:
    try:
        return state.jobs()
    except ConfigError as exc:
        log.warning("alerts: the jobs file does not validate, nothing sent: %s", exc)
        return None


def notify_run(state: SyncdState, run: SyncRun | None) -> list[DeliveryResult]:
    """Alert about a finished run if ``[notify]`` asks for its event; never raises."""
    if run is None or run.status not in ("succeeded", "failed"):
        return []
    try:
        jobs = _jobs(state)
        if jobs is None or not jobs.notify.targets:
            return []
        with state.sessions() as session:
            event = run_event(session, jobs.notify, run)
        return send_event(state, jobs, event) if event is not None else []
    except Exception:  # noqa: BLE001  (an alert must never fail the run or its caller)
        log.exception("alerts: could not alert about run #%s of %s", run.id, run.job)
        return []


def notify_housekeeping(state: SyncdState, now: datetime | None = None) -> list[DeliveryResult]:
    """Alert about stale jobs (once per episode; paused jobs are not judged); never raises."""
    try:
        settle_interrupted(state)
        jobs = _jobs(state)
        if jobs is None or not jobs.notify.targets or not jobs.notify.wants("stale"):
            return []
        now = now or utcnow()
        paused = paused_jobs(state)
        results: list[DeliveryResult] = []
        specs = list(jobs.jobs.values())
        if jobs.groups:  # the table jobs the groups' last expansions found
            from syncd.group_tables import recorded_jobs

            specs += [spec for table_jobs in recorded_jobs(state, jobs).values()
                      for spec in table_jobs.values() if spec.group not in paused]
        for spec in specs:
            if spec.name in paused:
                continue
            with state.sessions() as session:
                event = stale_event(session, spec, now)
            if event is not None:
                results += send_event(state, jobs, event)
        return results
    except Exception:  # noqa: BLE001  (housekeeping goes on with its other work)
        log.exception("alerts: stale check failed")
        return []


def send_test(state: SyncdState, jobs: JobsFile) -> list[DeliveryResult]:
    """Send a test alert to every target of ``jobs.notify``."""
    return send_event(state, jobs, make_test_event(f"test:{uuid.uuid4().hex}"))


def send_event(state: SyncdState, jobs: JobsFile, event: Event) -> list[DeliveryResult]:
    """Deliver ``event`` to every target, unless another process already claimed it."""
    scrub = Scrubber(jobs)
    event = Event(event.key, event.event, event.job, scrub(event.summary), event.run_id,
                  scrub(event.details))
    targets = jobs.notify.targets
    ids = _claim(state, event, targets)
    if ids is None:
        return []
    return [_deliver(state, jobs.notify, event, target, delivery_id, scrub)
            for target, delivery_id in zip(targets, ids)]


def _claim(state: SyncdState, event: Event, targets: list[Target]) -> list[int] | None:
    """Record the alert and one ``sending`` delivery per target; None if already recorded."""
    try:
        with state.sessions.begin() as session:
            alert = Alert(key=event.key, job=event.job, event=event.event,
                          run_id=event.run_id, summary=event.summary, created_at=utcnow())
            session.add(alert)
            session.flush()
            rows = [AlertDelivery(alert_id=alert.id, job=event.job, event=event.event,
                                  target=t.label, status="sending", attempts=0,
                                  created_at=utcnow()) for t in targets]
            session.add_all(rows)
            session.flush()
            return [row.id for row in rows]
    except IntegrityError:
        log.debug("alerts: %s was already sent", event.key)
        return None


def _deliver(state: SyncdState, notify: NotifySpec, event: Event, target: Target,
             delivery_id: int, scrub: Scrubber) -> DeliveryResult:
    cfg = state.config
    attempts = max(1, int(cfg.SYNCD_NOTIFY_ATTEMPTS))
    payload = event.payload(utcnow())
    body = json.dumps(payload, indent=None, sort_keys=True).encode()
    error: str | None = None
    attempt = 0
    for attempt in range(1, attempts + 1):
        try:
            _send_once(notify, target, event, payload, body, delivery_id,
                       float(cfg.SYNCD_NOTIFY_TIMEOUT))
            error = None
            break
        except DeliveryFailed as exc:
            error = scrub(str(exc))
        except Exception as exc:  # noqa: BLE001  (recorded, never raised into the run)
            error = scrub(f"{type(exc).__name__}: {exc}")
        _record(state, delivery_id, attempts=attempt, error=error)
        if attempt < attempts:
            time.sleep(float(cfg.SYNCD_NOTIFY_BACKOFF) * 2 ** (attempt - 1))
    status = "failed" if error else "delivered"
    _record(state, delivery_id, attempts=attempt, error=error, status=status)
    if error:
        log.warning("alert %s (%s) to %s failed after %d attempt(s): %s",
                    event.event, event.job or "-", target.label, attempt, error)
    else:
        log.info("alert %s (%s) delivered to %s", event.event, event.job or "-", target.label)
    return DeliveryResult(target.label, status, attempt, error)


def _send_once(notify: NotifySpec, target: Target, event: Event, payload: dict[str, Any],
               body: bytes, delivery_id: int, timeout: float) -> None:
    if target.kind == "webhook":
        headers = {"X-Syncd-Event": event.event, "X-Syncd-Delivery": str(delivery_id)}
        post_webhook(target.url, body, headers, notify.secret, timeout)
        return
    facts = "\n".join(f"{k}: {v}" for k, v in payload.items()
                      if k != "summary" and v is not None)
    send_email(target.url, notify.email_from or default_sender(), target.recipients,
               event.summary.splitlines()[0][:200], f"{event.summary}\n\n{facts}\n", timeout)


def _record(state: SyncdState, delivery_id: int, *, attempts: int, error: str | None,
            status: str | None = None) -> None:
    values: dict[str, Any] = {"attempts": attempts, "error": error}
    if status is not None:
        values.update(status=status, finished_at=utcnow())
    with state.sessions.begin() as session:
        session.execute(update(AlertDelivery).where(AlertDelivery.id == delivery_id)
                        .values(**values))


def settle_interrupted(state: SyncdState, now: datetime | None = None) -> int:
    """Deliveries still ``sending`` long after they began lost their process: ``failed``."""
    cutoff = (now or utcnow()) - INTERRUPTED_AFTER
    with state.sessions.begin() as session:
        result = session.execute(
            update(AlertDelivery)
            .where(AlertDelivery.status == "sending", AlertDelivery.created_at < cutoff)
            .values(status="failed", finished_at=utcnow(),
                    error="the process sending this alert stopped before it finished")
        )
        return int(getattr(result, "rowcount", 0) or 0)


def recent_deliveries(state: SyncdState, limit: int = 100) -> list[AlertDelivery]:
    """The newest deliveries, newest first."""
    with state.sessions() as session:
        return list(session.scalars(
            select(AlertDelivery).order_by(AlertDelivery.id.desc()).limit(limit)))
