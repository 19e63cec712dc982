"""Which events a finished run or a job's age give rise to, and what an alert says.

- ``failed``: a run failed; ``failing``: it is the Nth failure in a row for a
  ``failing:N`` of ``on`` (sent instead of ``failed`` for that run);
- ``recovered``: the first success after one or more failures;
- ``stale``: the last success is older than the job's ``max_age``; one alert per
  episode (the episode is keyed by the last success, so a new success ends it).

Runs that were skipped, cancelled or abandoned do not break or extend a streak.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.jobs import JobSpec
from syncd.models import SyncRun
from syncd.notify.config import NotifySpec

MAX_ERROR_CHARS = 1000  # an alert carries the start of a run's error
STREAK_LIMIT = 1000  # failures counted back at most (a message then says "1000 or more")


@dataclass(frozen=True)
class Event:
    """One alert to send: its unique key, a one-line summary and the JSON payload."""

    key: str
    event: str  # failed | failing | recovered | stale | test
    job: str | None
    summary: str
    run_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self, sent_at: datetime) -> dict[str, Any]:
        """The webhook body (also the facts listed in an e-mail)."""
        return {
            "event": self.event,
            "job": self.job,
            "summary": self.summary,
            "run_id": self.run_id,
            **self.details,
            "host": socket.gethostname(),
            "sent_at": iso(sent_at),
        }


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as in the run history's JSON."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def words(delta: timedelta) -> str:
    """``3d 4h``, ``2h 5m``, ``12m``, ``40s``."""
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}m" if minutes else "", f"{seconds}s" if seconds and not days else ""]
    return " ".join(p for p in parts if p) or "0s"


def _error(run: SyncRun) -> str:
    text = (run.error or "").strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


def _streak(session: Session, run: SyncRun) -> list[str]:
    """Statuses of the job's succeeded and failed runs up to ``run``, newest first
    (of its verify runs for a verify run, of its syncs otherwise)."""
    kind = SyncRun.trigger == "verify" if run.trigger == "verify" else \
        SyncRun.trigger != "verify"
    return list(session.scalars(
        select(SyncRun.status)
        .where(SyncRun.job == run.job, SyncRun.status.in_(("succeeded", "failed")),
               SyncRun.id <= run.id, kind)
        .order_by(SyncRun.id.desc()).limit(STREAK_LIMIT + 1)
    ))


def _leading_failures(statuses: list[str]) -> int:
    count = 0
    for status in statuses:
        if status != "failed":
            break
        count += 1
    return count


def _run_details(run: SyncRun, failures: int) -> dict[str, Any]:
    return {
        "status": run.status, "trigger": run.trigger, "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at), "error": _error(run) or None,
        "failures_in_a_row": failures,
    }


def run_event(session: Session, notify: NotifySpec, run: SyncRun) -> Event | None:
    """The event of a finished run, if ``notify.on`` asks for it."""
    if run.status == "failed":
        failures = _leading_failures(_streak(session, run))
        key = f"run:{run.id}"
        details = _run_details(run, failures)
        if failures in notify.failing_after:
            return Event(key, "failing", run.job,
                         f'syncd: job "{run.job}" has failed {failures} runs in a row '
                         f"(last: run #{run.id}): {_error(run)}", run.id, details)
        if notify.wants("failed"):
            return Event(key, "failed", run.job,
                         f'syncd: job "{run.job}" failed (run #{run.id}): {_error(run)}',
                         run.id, details)
        return None
    if run.status == "succeeded" and notify.wants("recovered"):
        before = _leading_failures(_streak(session, run)[1:])
        if before:
            many = f"{before} or more" if before >= STREAK_LIMIT else str(before)
            return Event(f"run:{run.id}", "recovered", run.job,
                         f'syncd: job "{run.job}" recovered: run #{run.id} succeeded after '
                         f"{many} failed run(s)", run.id, _run_details(run, 0))
    return None


def stale_event(session: Session, spec: JobSpec, now: datetime) -> Event | None:
    """The ``stale`` event of a job whose data is older than its max_age, else None.

    The age is that of the last success; a job that never succeeded is as old as
    its first recorded run (a job that never ran is not judged).
    """
    max_age = spec.stale_after(now)
    if max_age is None:
        return None
    last_ok = session.scalars(
        select(SyncRun).where(SyncRun.job == spec.name, SyncRun.status == "succeeded",
                              SyncRun.trigger != "verify")  # a verify copies nothing new
        .order_by(SyncRun.id.desc()).limit(1)
    ).first()
    since: datetime | None
    if last_ok is not None:
        since = last_ok.finished_at or last_ok.queued_at
    else:
        since = session.scalar(
            select(SyncRun.queued_at).where(SyncRun.job == spec.name)
            .order_by(SyncRun.id).limit(1)
        )
        if since is None:
            return None
    age = now - since
    if age <= max_age:
        return None
    episode = str(last_ok.id) if last_ok is not None else "never"
    if last_ok is not None:
        text = f"its data is {words(age)} old (max_age {words(max_age)}); " \
               f"last success: run #{last_ok.id} at {iso(since)}"
    else:
        text = f"it has not succeeded since its first run at {iso(since)}, {words(age)} ago " \
               f"(max_age {words(max_age)})"
    return Event(f"stale:{spec.name}:{episode}", "stale", spec.name,
                 f'syncd: job "{spec.name}" is stale: {text}',
                 last_ok.id if last_ok is not None else None,
                 {"data_age_s": round(age.total_seconds()),
                  "max_age_s": round(max_age.total_seconds()),
                  "last_success_at": iso(since) if last_ok is not None else None})


def make_test_event(key: str) -> Event:
    """The message of ``syncd notify test``."""
    host = socket.gethostname()
    return Event(key, "test", None,
                 f"syncd: test alert from {host}: this target receives syncd's alerts")
