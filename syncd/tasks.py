"""Celery tasks: thin; they take a job name or a run id and call the runner.

``sync(job=...)`` is a beat tick: it does nothing while the job is paused.
``sync(run_id=...)`` runs a row that ``enqueue_run`` recorded as ``queued``
(and committed) before it sent the message. The runner takes the job's lock: a
scheduled tick that finds it held is recorded ``skipped``, a queued run waits for
it (``syncd.waiting``). Transient errors are retried with backoff on the same row.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils import uuid

from syncd.engine.errors import ConfigError, SyncError

log = logging.getLogger(__name__)

SYNC_TASK = "syncd.sync"
HOUSEKEEPING_TASK = "syncd.housekeeping"
SOFT_LIMIT_GRACE = 10.0  # the runner stops a run between batches at the timeout; this is later
HARD_LIMIT_MARGIN = 60.0  # after the soft limit, the worker kills the process running the task
RETRY_POLICY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


class BrokerUnavailable(SyncError):
    """The run could not be queued: the broker did not take the message."""

    transient = True


def time_limits(job: Any, max_run_seconds: float, waits: bool = False) -> dict[str, float]:
    """apply_async options: the soft and hard time limits of one run of ``job``; a run that
    may wait for its job first (``waits``: someone asked for it) gets the wait on top."""
    from syncd.waiting import wait_limit

    soft = float(max_run_seconds)
    if job.timeout is not None:
        soft = min(soft, job.timeout.total_seconds() + SOFT_LIMIT_GRACE)
    if waits:
        soft += wait_limit(job, max_run_seconds)
    return {"soft_time_limit": soft, "time_limit": soft + HARD_LIMIT_MARGIN}


@shared_task(name=SYNC_TASK, ignore_result=True)
def sync(job: str | None = None, run_id: int | None = None) -> str | None:
    """Run one sync: a scheduled tick of ``job``, or the queued run ``run_id``."""
    from syncd import get_state
    from syncd.retry import Backoff, LocalUnavailable, local_write
    from syncd.runner import RunRequest, describe, run_job
    from syncd.split_runner import CELERY

    state = get_state()
    if run_id is not None:
        try:
            request = local_write(lambda: _queued_request(state, run_id), Backoff.of(state.config),
                                  f"read run #{run_id}")
        except LocalUnavailable as exc:
            log.error("run #%s not started: %s", run_id, exc)
            return None
    elif job is not None:
        request = RunRequest(job=job, trigger="schedule", scheduled=True, started_by="beat",
                             split_workers=CELERY)
    else:
        raise ValueError("sync needs a job name or a run id")
    if request is None:
        return None
    try:
        run = run_job(state, request)
    except ConfigError as exc:
        log.error("job %s: scheduled run not started: %s", request.job, exc)
        return None
    except LocalUnavailable as exc:
        log.error("job %s: run not started: %s", request.job, exc)
        return None
    except SoftTimeLimitExceeded:
        log.error("job %s: timed out while recording its run; housekeeping marks it abandoned",
                  request.job)
        return None
    if run is None:
        log.info("job %s is paused: scheduled run not started", request.job)
        return None
    if run.status == "failed" and SoftTimeLimitExceeded.__name__ in (run.error or ""):
        run = _record_time_limit(state, run.id)
    log.info("%s", describe(run))
    return run.status


@shared_task(name=HOUSEKEEPING_TASK, ignore_result=True)
def housekeeping() -> list[int]:
    """Mark runs whose process died (left ``running``, lock free) and runs queued for
    longer than SYNCD_QUEUED_TIMEOUT ``abandoned`` (beat also does it by itself); alert
    about stale jobs; delete old history."""
    from syncd import get_state
    from syncd.notify.alerts import notify_housekeeping
    from syncd.retention import prune_history
    from syncd.stale_runs import housekeep

    state = get_state()
    marked = housekeep(state)
    notify_housekeeping(state)
    prune_history(state)
    return marked


def enqueue_run(state: Any, job: str, trigger: str, full_refresh: bool = False,
                started_by: str | None = None, *, celery: Celery | None = None) -> int:
    """Queue a run of ``job`` on the broker and return its run id.

    The run row is recorded ``queued`` and committed before the message is sent,
    so the worker always finds it. Raises ConfigError for an unknown job or a
    broken jobs file (nothing is written then) and BrokerUnavailable when the
    broker does not take the message (the row is then ``failed`` with that reason).
    """
    from syncd.runner import create_queued_run

    spec = state.jobs().job(job)
    celery_app = celery if celery is not None else _current_celery()
    run_id = create_queued_run(state, job, trigger, full_refresh, started_by)
    task_id = uuid()
    _update_run(state, run_id, task_id=task_id)
    try:
        celery_app.send_task(
            SYNC_TASK, kwargs={"run_id": run_id}, task_id=task_id,
            retry=True, retry_policy=RETRY_POLICY,
            # Never started after this long: housekeeping then marks the run abandoned.
            expires=float(state.config.SYNCD_QUEUED_TIMEOUT),
            **time_limits(spec, state.config.SYNCD_MAX_RUN_SECONDS, waits=True),
        )
    except Exception as exc:  # noqa: BLE001  (kombu raises many kinds; all mean "not sent")
        message = f"could not queue the run: broker unreachable ({type(exc).__name__}: {exc})"
        _update_run(state, run_id, status="failed", error=message, finished=True)
        raise BrokerUnavailable(message) from exc
    return run_id


def _current_celery() -> Celery:
    from flask import current_app

    return current_app.extensions["celery"]  # type: ignore[no-any-return]


def _queued_request(state: Any, run_id: int) -> Any:
    """The RunRequest of a queued run, or None when there is nothing (left) to do."""
    from syncd.models import SyncRun
    from syncd.runner import RunRequest
    from syncd.split_runner import CELERY

    with state.sessions() as session:
        run = session.get(SyncRun, run_id)
    if run is None:
        log.error("run #%s does not exist in the local database: message dropped", run_id)
        return None
    if run.status == "queued":
        return RunRequest(job=run.job, trigger=run.trigger, full_refresh=run.full_refresh,
                          run_id=run.id, started_by=run.started_by, split_workers=CELERY)
    if run.status == "abandoned" and run.started_at is None:
        log.info("run #%s was abandoned while queued: nothing to do", run.id)
        return None
    if run.status in ("running", "abandoned"):
        # acks_late: the broker delivered the message again because the worker that
        # had it died. That run stays one row; a new run resumes from the checkpoint.
        log.warning("run #%s (%s) was delivered again after its worker died: "
                    "starting a new run of %s", run.id, run.status, run.job)
        return RunRequest(job=run.job, trigger=run.trigger, full_refresh=False,
                          started_by=run.started_by, split_workers=CELERY)
    log.info("run #%s is already %s: nothing to do", run.id, run.status)
    return None


def _record_time_limit(state: Any, run_id: int) -> Any:
    """Say in the history that the worker's soft time limit ended the run."""
    from syncd.models import SyncRun

    with state.sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        timeout = _job_timeout_text(state, run.job)
        run.error = f"timed out{timeout} (the worker's soft time limit); checkpoint kept"
        return run


def _job_timeout_text(state: Any, job: str) -> str:
    try:
        timeout = state.jobs().job(job).timeout
    except ConfigError:
        return ""
    return f" after {int(timeout.total_seconds())}s" if timeout is not None else ""


def _update_run(state: Any, run_id: int, *, task_id: str | None = None,
                status: str | None = None, error: str | None = None,
                finished: bool = False) -> None:
    from syncd.models import SyncRun, utcnow

    with state.sessions.begin() as session:
        run = session.get(SyncRun, run_id)
        if task_id is not None:
            run.task_id = task_id
        if status is not None:
            run.status = status
        if error is not None:
            run.error = error
        if finished:
            run.finished_at = utcnow()
