"""What the dashboard shows per job: last run, last success, freshness, next run,
the strip of its last runs and its last error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import defer

from syncd import SyncdState
from syncd.jobs import JobsFile, JobSpec, Schedule
from syncd.models import SyncRun, utcnow
from syncd.status import last_successes, paused_jobs
from syncd.web.history import Queued, active_run_in, queued_in

STRIP_RUNS = 20  # runs in each job's strip on the dashboard
OUTCOMES = ("succeeded", "failed", "abandoned")  # what a run's status says about the data
FAILED = ("failed", "abandoned")
ERROR_LINE = 200  # characters of the last error shown on the dashboard


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
    recent: list[SyncRun] = field(default_factory=list)  # up to STRIP_RUNS, newest first
    stale_after: timedelta | None = None
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

    @property
    def outcome(self) -> SyncRun | None:
        """The newest run that succeeded or failed (skipped and cancelled runs say nothing)."""
        return next((r for r in self.recent if r.status in OUTCOMES), None)

    @property
    def failed_run(self) -> SyncRun | None:
        """The job's newest outcome when it is a failure."""
        outcome = self.outcome
        return outcome if outcome is not None and outcome.status in FAILED else None

    @property
    def needs_attention(self) -> bool:
        """Failed or stale: these jobs come first on the dashboard."""
        return self.failed_run is not None or self.freshness == "stale"

    @property
    def strip(self) -> list[SyncRun | None]:
        """The last runs, oldest first, padded on the left to STRIP_RUNS cells."""
        runs: list[SyncRun | None] = list(reversed(self.recent))
        return [None] * (STRIP_RUNS - len(runs)) + runs


def one_line(text: str | None, limit: int = ERROR_LINE) -> str:
    """An error message on one line: its lines joined, cut at ``limit`` characters."""
    flat = " ".join(part.strip() for part in (text or "").splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


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


def recent_runs_query(job: str, limit: int = STRIP_RUNS) -> Select:  # type: ignore[type-arg]
    """The newest ``limit`` runs of ``job`` (index (job, id)), tracebacks left out."""
    return (select(SyncRun).options(defer(SyncRun.traceback)).where(SyncRun.job == job)
            .order_by(SyncRun.id.desc()).limit(limit))


def job_rows(state: SyncdState, specs: dict[str, JobSpec]) -> list[JobRow]:
    """Dashboard lines of all jobs: failed or stale jobs first, then by name."""
    names = sorted(specs)
    success = last_successes(state, names)
    paused = paused_jobs(state)
    now = utcnow()
    rows = []
    for name in names:
        spec = specs[name]
        with state.sessions() as session:
            active = active_run_in(session, name)
            recent = list(session.scalars(recent_runs_query(name)))
            waiting = queued_in(session, name)
        rows.append(JobRow(
            spec=spec, paused=name in paused, last_run=recent[0] if recent else None,
            last_success=success.get(name), active_run_id=active,
            next_run=next_run(spec, name in paused, _last_scheduled(state, name), now),
            freshness=freshness(spec, success.get(name), now),
            recent=recent, stale_after=spec.stale_after(now), queued=waiting,
        ))
    rows.sort(key=lambda row: (not row.needs_attention, row.name))
    return rows


def group_rows(state: SyncdState, jobs: JobsFile) -> list[tuple[dict[str, Any], list[JobRow]]]:
    """Each group job (its summary) with the dashboard lines of its table jobs."""
    from syncd.group_tables import group_summary, recorded_jobs

    table_jobs = recorded_jobs(state, jobs)
    return [(group_summary(state, group), job_rows(state, table_jobs.get(name, {})))
            for name, group in sorted(jobs.groups.items())]
