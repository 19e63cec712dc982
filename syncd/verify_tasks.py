"""The verify task: a beat tick of a job's ``verify_schedule``, or a queued verify run.

Thin, like ``syncd.tasks``: it takes a job name or a run id and calls the verify
runner. ``enqueue_verify`` records the run ``queued`` (committed) before the
message goes to the broker, as ``enqueue_run`` does for syncs.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, shared_task
from celery.utils import uuid

from syncd.engine.errors import ConfigError

log = logging.getLogger(__name__)

VERIFY_TASK = "syncd.verify"


@shared_task(name=VERIFY_TASK, ignore_result=True)
def verify(job: str | None = None, run_id: int | None = None) -> str | None:
    """Run one verify: a scheduled tick of ``job``, or the queued run ``run_id``."""
    from syncd import get_state
    from syncd.runner import is_paused
    from syncd.verify_runner import VerifyRequest, describe_verify, queued_request, run_verify

    state = get_state()
    if run_id is not None:
        request = queued_request(state, run_id)
        if request is None:
            log.info("verify run #%s is no longer queued: nothing to do", run_id)
            return None
    elif job is not None:
        if is_paused(state, job):
            log.info("job %s is paused: scheduled verify not started", job)
            return None
        try:
            repair = state.jobs().job(job).verify_repair
        except ConfigError as exc:
            log.error("job %s: scheduled verify not started: %s", job, exc)
            return None
        request = VerifyRequest(job=job, repair=repair, started_by="beat")
    else:
        raise ValueError("verify needs a job name or a run id")
    try:
        run = run_verify(state, request)
    except ConfigError as exc:
        log.error("job %s: verify not started: %s", request.job, exc)
        return None
    log.info("%s", describe_verify(run))
    return run.status


def enqueue_verify(state: Any, job: str, repair: bool, started_by: str | None = None, *,
                   celery: Celery | None = None) -> int:
    """Queue a verify of ``job`` on the broker and return its run id.

    Raises ConfigError for an unknown job and BrokerUnavailable when the broker does
    not take the message (the run is then recorded ``failed`` with that reason).
    """
    from syncd.tasks import (
        RETRY_POLICY,
        BrokerUnavailable,
        _current_celery,
        _update_run,
        time_limits,
    )
    from syncd.verify_runner import queue_verify

    spec = state.jobs().job(job)
    celery_app = celery if celery is not None else _current_celery()
    run_id = queue_verify(state, job, repair, started_by)
    task_id = uuid()
    _update_run(state, run_id, task_id=task_id)
    try:
        celery_app.send_task(VERIFY_TASK, kwargs={"run_id": run_id}, task_id=task_id,
                             retry=True, retry_policy=RETRY_POLICY,
                             **time_limits(spec, state.config.SYNCD_MAX_RUN_SECONDS))
    except Exception as exc:  # noqa: BLE001  (kombu raises many kinds; all mean "not sent")
        message = f"could not queue the verify: broker unreachable ({type(exc).__name__}: {exc})"
        _update_run(state, run_id, status="failed", error=message, finished=True)
        raise BrokerUnavailable(message) from exc
    return run_id
