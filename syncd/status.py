"""Read-side summaries of jobs and runs, shared by the CLI and the web app."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from syncd import SyncdState
from syncd.jobs import JobsFile
from syncd.models import JobState, SyncRun, utcnow


def last_runs(state: SyncdState, names: list[str]) -> dict[str, SyncRun]:
    """The newest run of each job (one indexed lookup per job)."""
    out: dict[str, SyncRun] = {}
    with state.sessions() as session:
        for name in names:
            run = session.scalar(
                select(SyncRun).where(SyncRun.job == name).order_by(SyncRun.id.desc()).limit(1)
            )
            if run is not None:
                out[name] = run
    return out


def last_successes(state: SyncdState, names: list[str]) -> dict[str, SyncRun]:
    """The newest succeeded run of each job."""
    out: dict[str, SyncRun] = {}
    with state.sessions() as session:
        for name in names:
            run = session.scalar(
                select(SyncRun).where(SyncRun.job == name, SyncRun.status == "succeeded",
                                      SyncRun.trigger != "verify")  # verify copies nothing new
                .order_by(SyncRun.id.desc()).limit(1)
            )
            if run is not None:
                out[name] = run
    return out


def paused_jobs(state: SyncdState) -> set[str]:
    """Names of paused jobs."""
    with state.sessions() as session:
        return set(session.scalars(select(JobState.job).where(JobState.paused.is_(True))))


def last_scheduled_start(state: SyncdState, name: str) -> datetime | None:
    """When the job's newest scheduled run was queued (index (job, trigger, id), no scan)."""
    with state.sessions() as session:
        return session.scalar(
            select(SyncRun.queued_at).where(SyncRun.job == name, SyncRun.trigger == "schedule")
            .order_by(SyncRun.id.desc()).limit(1)
        )


def job_overview(state: SyncdState, jobs: JobsFile) -> list[dict[str, Any]]:
    """One dict per job: settings, paused, last run, last success, next run (JSON-able)."""
    names = sorted(jobs.jobs)
    last = last_runs(state, names)
    success = last_successes(state, names)
    paused = paused_jobs(state)
    now = utcnow()
    rows = []
    for name in names:
        job = jobs.jobs[name]
        next_run = None
        if job.schedule is not None and name not in paused:
            base = last_scheduled_start(state, name) or now
            nxt = job.schedule.next_after(base)
            next_run = max(nxt, now) if nxt < now else nxt
        ok = success.get(name)
        rows.append({
            "name": name,
            "mode": job.mode,
            "source": job.source.name,
            "source_url": job.source.masked_url,
            "table": job.table,
            "target": job.target,
            "schedule": job.schedule.text if job.schedule else None,
            "schedule_text": job.schedule.describe() if job.schedule else "manual only",
            "paused": name in paused,
            "last_run": last[name].to_dict() if name in last else None,
            "last_success_at": ok.to_dict()["finished_at"] if ok else None,
            "seconds_since_success": (now - ok.finished_at).total_seconds()
            if ok and ok.finished_at else None,
            "next_run": next_run.isoformat().replace("+00:00", "Z") if next_run else None,
        })
    return rows
