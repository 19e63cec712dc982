"""Celery beat's schedule, built from the jobs file.

One entry per scheduled job (cron or interval, UTC) sends ``syncd.sync`` with
the job's name; each message expires when the job's next tick is due, so a
backlog never piles up while no worker is consuming. A housekeeping entry marks
runs of dead workers ``abandoned``.

``JobsScheduler`` is beat's scheduler (``beat_scheduler`` in config.py): it
builds the schedule when beat starts and again whenever the jobs file changes.
A jobs file that does not validate is logged as an error; the last good jobs
file (kept in the local database) stays in force, and with none nothing is
scheduled until the file is fixed. Beat also does the housekeeping of runs itself,
every SYNCD_HOUSEKEEPING_SECONDS, in a thread of its own process: runs of dead
workers are marked abandoned even while no worker is alive to take the housekeeping
task.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler
from celery.schedules import crontab

from syncd.tasks import HOUSEKEEPING_TASK, SYNC_TASK, time_limits
from syncd.verify_tasks import VERIFY_TASK

log = logging.getLogger("syncd.beat")

HOUSEKEEPING_ENTRY = "syncd-housekeeping"
RELOAD_EVERY = 5.0  # seconds between checks of the jobs file for changes


def entry_name(job: str) -> str:
    """The beat entry of a job."""
    return f"sync-{job}"


def verify_entry_name(job: str) -> str:
    """The beat entry of a job's scheduled verify."""
    return f"verify-{job}"


def expires_after(schedule: Any, now: datetime | None = None) -> float:
    """Seconds a tick may wait for a worker: until the job's next tick is due."""
    if schedule.interval is not None:
        return max(1.0, schedule.interval.total_seconds())
    first, second = cron_fire_times(crontab.from_string(schedule.cron),
                                    now or datetime.now(UTC))
    return max(60.0, (second - first).total_seconds())


def cron_fire_times(cron: crontab, after: datetime, count: int = 2) -> list[datetime]:
    """The next ``count`` fire times of ``cron`` (UTC) after ``after``; scans up to 4 years."""
    times: list[datetime] = []
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(4 * 366):
        weekday = (day.weekday() + 1) % 7  # crontab counts days of the week from Sunday
        if (day.month in cron.month_of_year and day.day in cron.day_of_month
                and weekday in cron.day_of_week):
            for hour in sorted(cron.hour):
                for minute in sorted(cron.minute):
                    when = day.replace(hour=hour, minute=minute)
                    if when > after:
                        times.append(when)
                        if len(times) == count:
                            return times
        day += timedelta(days=1)
    while len(times) < count:  # fires less than once in 4 years: "rarely" is enough here
        times.append((times[-1] if times else after) + timedelta(days=4 * 366))
    return times


def _database_url(celery_app: Any) -> str:
    from syncd.celery_app import flask_app_of

    return str(flask_app_of(celery_app).config["SYNCD_DATABASE_URL"])


def housekeeping_entry(every_seconds: float) -> dict[str, Any]:
    """The entry that marks runs of dead workers abandoned."""
    return {
        "task": HOUSEKEEPING_TASK,
        "schedule": timedelta(seconds=every_seconds),
        "options": {"expires": max(1.0, every_seconds)},
    }


def build_beat_schedule(jobs: Any, housekeeping_seconds: float, max_run_seconds: float,
                        now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Celery's ``beat_schedule`` for a validated jobs file (jobs without schedule: none)."""
    entries: dict[str, dict[str, Any]] = {}
    for job in jobs.jobs.values():
        if job.verify_schedule is not None:
            entries[verify_entry_name(job.name)] = {
                "task": VERIFY_TASK,
                "schedule": job.verify_schedule.celery_schedule(),
                "kwargs": {"job": job.name},
                "options": {"expires": expires_after(job.verify_schedule, now),
                            **time_limits(job, max_run_seconds)},
            }
        if job.schedule is None:
            continue
        entries[entry_name(job.name)] = {
            "task": SYNC_TASK,
            "schedule": job.schedule.celery_schedule(),
            "kwargs": {"job": job.name},
            "options": {
                "expires": expires_after(job.schedule, now),
                **time_limits(job, max_run_seconds),
            },
        }
    entries.update(group_entries(jobs, max_run_seconds, now))
    entries[HOUSEKEEPING_ENTRY] = housekeeping_entry(housekeeping_seconds)
    return entries


def group_entries(jobs: Any, max_run_seconds: float,
                  now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """One entry per scheduled group job: its tick expands the group and ticks each table."""
    from syncd.group_tasks import SYNC_GROUP_TASK

    entries: dict[str, dict[str, Any]] = {}
    for group in jobs.groups.values():
        if group.schedule is None:
            continue
        entries[entry_name(group.name)] = {
            "task": SYNC_GROUP_TASK,
            "schedule": group.schedule.celery_schedule(),
            "kwargs": {"group": group.name},
            "options": {"expires": expires_after(group.schedule, now),
                        **time_limits(group.template, max_run_seconds)},
        }
    return entries


class JobsScheduler(PersistentScheduler):  # type: ignore[misc]
    """Beat's scheduler: the entries of the jobs file, reloaded when the file changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._jobs_mtime: int | None = None
        self._next_check = 0.0
        self._next_housekeeping = 0.0
        self._housekeeper: threading.Thread | None = None
        self._next_heartbeat = 0.0
        self._last_tick: datetime | None = None
        self._heartbeat: Any = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        # Set before the persistent store is merged, so entries keep their last run time.
        self.app.conf.beat_schedule = self.jobs_schedule(starting=True)
        super().setup_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if time.monotonic() >= self._next_check:
            schedule = self.jobs_schedule()
            if schedule is not None:
                self.merge_inplace(schedule)
        self.maybe_housekeep()
        if time.monotonic() >= self._next_heartbeat:
            self.record_tick()
        return super().tick(*args, **kwargs)  # type: ignore[no-any-return]

    def maybe_housekeep(self) -> None:
        """Start housekeeping in a thread when it is due and the previous one is done."""
        from syncd import get_state
        from syncd.celery_app import flask_app_of

        if time.monotonic() < self._next_housekeeping or (
                self._housekeeper is not None and self._housekeeper.is_alive()):
            return
        state = get_state(flask_app_of(self.app))
        self._next_housekeeping = time.monotonic() + state.config.SYNCD_HOUSEKEEPING_SECONDS
        self._housekeeper = threading.Thread(target=_housekeep, args=(state,),
                                             name="syncd-housekeeping", daemon=True)
        self._housekeeper.start()

    def record_tick(self) -> None:
        """Note the time of this tick; a thread keeps it in the local database."""
        from syncd.heartbeats import BEAT_EVERY, HeartbeatThread, beat_sign

        self._next_heartbeat = time.monotonic() + BEAT_EVERY
        self._last_tick = datetime.now(UTC)
        if self._heartbeat is None:
            url = _database_url(self.app)
            pid, host = os.getpid(), socket.gethostname()
            self._heartbeat = HeartbeatThread(
                url, lambda: beat_sign(pid, host, self._last_tick), BEAT_EVERY)
            self._heartbeat.start()

    def close(self) -> None:
        super().close()
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None

    def jobs_schedule(self, starting: bool = False) -> dict[str, dict[str, Any]] | None:
        """The schedule of the jobs file, or None if it did not change since it was read."""
        from syncd import get_state
        from syncd.celery_app import flask_app_of

        self._next_check = time.monotonic() + RELOAD_EVERY
        state = get_state(flask_app_of(self.app))
        config = state.config
        try:
            mtime: int | None = Path(config.SYNCD_JOBS_FILE).stat().st_mtime_ns
        except OSError:
            mtime = None
        if not starting and mtime == self._jobs_mtime:
            return None
        self._jobs_mtime = mtime
        force = state.jobs_in_force()
        jobs = force.jobs
        if jobs is None:
            if not starting:
                log.error("beat: jobs file rejected, keeping the previous schedule: %s",
                          force.rejected)
                return None
            log.error("beat: jobs file rejected, no sync is scheduled until it is fixed: %s",
                      force.rejected)
            return {HOUSEKEEPING_ENTRY: housekeeping_entry(config.SYNCD_HOUSEKEEPING_SECONDS)}
        if force.rejected is not None:
            log.error("beat: jobs file rejected, %s: %s", force.explanation(), force.rejected)
        scheduled = [f"{j.name} ({j.schedule.describe()})"
                     for j in [*jobs.jobs.values(), *jobs.groups.values()]
                     if j.schedule is not None]
        log.info("beat: %d job(s) scheduled from %s%s", len(scheduled), jobs.path,
                 ": " + ", ".join(scheduled) if scheduled else "")
        return build_beat_schedule(
            jobs, config.SYNCD_HOUSEKEEPING_SECONDS, config.SYNCD_MAX_RUN_SECONDS)


def _housekeep(state: Any) -> None:
    """Beat's own housekeeping; a failure is logged and tried again next period."""
    from syncd.retry import describe_error
    from syncd.stale_runs import housekeep

    try:
        marked = housekeep(state)
    except Exception as exc:  # noqa: BLE001  (beat keeps scheduling whatever happens here)
        log.error("beat: housekeeping failed: %s", describe_error(exc))
        return
    if marked:
        log.warning("beat: housekeeping marked runs %s abandoned",
                    ", ".join(f"#{i}" for i in marked))
