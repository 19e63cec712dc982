"""Where the ranges of a split load run: Celery tasks of the workers, or local processes.

On a worker, the run that planned the ranges sends one ``syncd.split_range`` task per
range (a group) and returns; the run stays ``running``. Celery's chord needs a result
backend, which syncd does without: the ranges table is the chord's counter instead.
The range that finds itself the last one done sends ``syncd.split_finish``, the
callback that counts and swaps once; a range message delivered again (its worker
died: acks_late) resumes the range from its checkpoint, or, when it was done, sends
the callback again (a second callback finds the run finished and does nothing).

``syncd run JOB --jobs N`` loads the ranges in N local processes instead (no broker):
the command holds the job's lock all along and swaps when they are done.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from celery import group, shared_task

from syncd import SyncdState
from syncd.jobs import JobSpec
from syncd.locks import JobLock
from syncd.models import SyncRun
from syncd.slots import hand_on_slot
from syncd.split_finish import finish_run
from syncd.split_runner import SplitStarted, end_run, run_range

log = logging.getLogger(__name__)

RANGE_TASK = "syncd.split_range"
FINISH_TASK = "syncd.split_finish"


@shared_task(name=RANGE_TASK, ignore_result=True)
def split_range(run_id: int, idx: int) -> str:
    """Load one range of a split run; the last one done sends the swap."""
    from syncd import get_state

    state = get_state()
    outcome = run_range(state, run_id, idx, all_done=lambda: send_finish(state, run_id))
    log.info("run #%s range %s: %s", run_id, idx, outcome)
    return outcome


@shared_task(name=FINISH_TASK, ignore_result=True)
def split_finish(run_id: int) -> str | None:
    """The chord's callback: count, swap, record the run."""
    from syncd import get_state
    from syncd.runner import describe

    run = finish_run(get_state(), run_id)
    if run is not None:
        log.info("%s", describe(run))
    return run.status if run is not None else None


def _options(state: SyncdState, spec: JobSpec) -> dict[str, Any]:
    from syncd.tasks import time_limits

    return {"expires": float(state.config.SYNCD_QUEUED_TIMEOUT),
            **time_limits(spec, state.config.SYNCD_MAX_RUN_SECONDS)}


def send_finish(state: SyncdState, run_id: int) -> None:
    """Queue the swap of a split run."""
    from celery import current_app

    current_app.send_task(FINISH_TASK, kwargs={"run_id": run_id}, retry=True)


def hand_off(state: SyncdState, spec: JobSpec, split: SplitStarted, workers: int,
             lock: JobLock) -> SyncRun | None:
    """Start the ranges: as Celery tasks (``workers`` < 0), or in ``workers`` processes."""
    hand_on_slot(split.job)  # each range takes a slot of the source of its own
    if workers > 0:
        return _run_locally(state, split, workers, lock)
    options = _options(state, spec)
    try:
        if split.pending:
            group(split_range.si(run_id=split.run_id, idx=i).set(**options)
                  for i in split.pending).apply_async()
        else:
            send_finish(state, split.run_id)
    except Exception as exc:  # noqa: BLE001  (kombu raises many kinds; all mean "not sent")
        return end_run(state, split.run_id, "failed", "could not queue the ranges: broker "
                       f"unreachable ({type(exc).__name__}: {exc}); their checkpoints are kept")
    log.info("run #%s: %d of %d ranges queued", split.run_id, len(split.pending), split.total)
    with state.sessions() as session:
        return session.get(SyncRun, split.run_id)


def _child(run_id: int, idx: int) -> str:
    """One range in a process of ``syncd run --jobs N`` (its own connections)."""
    from config import Config

    state = SyncdState(Config())
    try:
        return run_range(state, run_id, idx)
    finally:
        state.dispose()


def _run_locally(state: SyncdState, split: SplitStarted, workers: int,
                 lock: JobLock) -> SyncRun | None:
    context = multiprocessing.get_context("spawn")
    errors: list[str] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_child, split.run_id, i) for i in split.pending]
        for future in futures:
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001  (a process that died)
                errors.append(f"{type(exc).__name__}: {exc}")
    if errors:
        end_run(state, split.run_id, "failed", f"a range process died ({errors[0]}); the "
                "checkpoint of every range is kept: the next run resumes them")
    return finish_run(state, split.run_id, lock)
