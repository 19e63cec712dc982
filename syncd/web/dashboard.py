"""What the dashboard shows per job: last run, last success, freshness, next run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from syncd import SyncdState
from syncd.jobs import JobSpec, Schedule
from syncd.models import SyncRun, utcnow
from syncd.status import last_runs, last_successes, paused_jobs
from syncd.web.history import Queued, active_run_in, queued_in


@dataclass
class JobRow:
    """One line of the dashboard."""

    spec: JobSpec
    paused: bool
    last_run: SyncRun | None
    last_success: SyncRun | None
    active_run_id: int | None
    next_run: datetime | None
    freshness: str  # "fresh" | "stale" | "never" | "manual"
    queued: Queued = field(default_factory=Queued)  # runs someone asked for, not started

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def success_age(self) -> float | None:
        """Seconds since the last successful run finished."""
        if self.last_success is None or self.last_success.finished_at is None:
            return None
        return (utcnow() - self.last_success.finished_at).total_seconds()


def schedule_period(schedule: Schedule, now: datetime) -> timedelta:
    """The time between two runs of ``schedule`` around ``now``."""
    return schedule.period(now)


def freshness(spec: JobSpec, last_success: SyncRun | None, now: datetime) -> str:
    """Whether the job's data is younger than its ``max_age`` (default: three periods)."""
    if last_success is None or last_success.finished_at is None:
        return "never"
    limit = spec.stale_after(now)
    if limit is None:
        return "manual"
    return "fresh" if now - last_success.finished_at <= limit else "stale"


def next_run(spec: JobSpec, paused: bool, last_scheduled: datetime | None,
             now: datetime) -> datetime | None:
    """When beat fires the job next (None: manual only or paused); never in the past."""
    if spec.schedule is None or paused:
        return None
    if spec.schedule.cron is not None or last_scheduled is None:
        return spec.schedule.next_after(now)
    return max(spec.schedule.next_after(last_scheduled), now)


def _last_scheduled(state: SyncdState, name: str) -> datetime | None:
    with state.sessions() as session:
        return session.scalar(
            select(SyncRun.queued_at).where(SyncRun.job == name, SyncRun.trigger == "schedule")
            .order_by(SyncRun.id.desc()).limit(1)
        )


def job_rows(state: SyncdState, specs: dict[str, JobSpec]) -> list[JobRow]:
    """Dashboard lines of all jobs, by name."""
    names = sorted(specs)
    last = last_runs(state, names)
    success = last_successes(state, names)
    paused = paused_jobs(state)
    now = utcnow()
    rows = []
    for name in names:
        spec = specs[name]
        with state.sessions() as session:
            active = active_run_in(session, name)
            waiting = queued_in(session, name)
        rows.append(JobRow(
            spec=spec, paused=name in paused, last_run=last.get(name),
            last_success=success.get(name), active_run_id=active,
            next_run=next_run(spec, name in paused, _last_scheduled(state, name), now),
            freshness=freshness(spec, success.get(name), now), queued=waiting,
        ))
    return rows
