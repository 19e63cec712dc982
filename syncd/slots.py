"""Never more than ``max_connections`` runs of one source at once: the source's slots.

A source has ``max_connections`` slots (default 4). Slot ``i`` of source ``crm`` is a
lock of the same kind as a job's lock (``syncd.locks.JobLock``: a PostgreSQL advisory
lock, a MariaDB/MySQL ``GET_LOCK``, a file lock beside a SQLite database) named
``slot:crm:i``, so a slot dies with the process holding it and holds across every
worker sharing the local database. (With SQLite, file locks hold on one machine only:
run one process at a time there.)

A run takes a slot after its job's lock, before it starts. With every slot taken it
stays ``queued``, "waiting for a slot on source crm", its heartbeat moving, and
starts as soon as a slot frees; it never fails or is skipped for it. A cancel
request ends the wait at once. A run without a row yet (``syncd run``, a scheduled
tick) records itself ``queued`` before it waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import Engine, update

from syncd import SyncdState
from syncd.jobs import JobSpec, SourceSpec
from syncd.locks import JobLock
from syncd.models import SyncRun, utcnow
from syncd.retry import Backoff, local_write

if TYPE_CHECKING:
    from syncd.runner import RunRequest

POLL_SECONDS = 0.5

# The slot each run of this process holds, by job: a split load hands it on to its ranges.
_held: dict[str, SourceSlot] = {}


class SourceSlot:
    """One slot of a source, once taken. Use ``try_take()`` / ``release()``."""

    def __init__(self, engine: Engine, source: str, size: int,
                 beside: JobLock | None = None) -> None:
        self.engine = engine
        self.source = source
        self.size = size
        self.beside = beside  # the run's job lock: the slot is taken on its connection
        self.lock: JobLock | None = None

    def try_take(self) -> bool:
        """Take a free slot without waiting; False if all are taken."""
        for index in range(self.size):
            lock = JobLock(self.engine, f"slot:{self.source}:{index}", beside=self.beside)
            if lock.acquire():
                self.lock = lock
                return True
        return False

    def release(self) -> None:
        """Give the slot back (the database or OS also does it when the process dies)."""
        for job in [job for job, slot in _held.items() if slot is self]:
            del _held[job]
        if self.lock is not None:
            lock, self.lock = self.lock, None
            lock.release()


def take_slot(state: SyncdState, spec: JobSpec, request: RunRequest,
              beside: JobLock | None = None) -> tuple[SourceSlot, RunRequest, SyncRun | None]:
    """Wait for a slot of the job's source and take it.

    Returns (the slot, the request, None) once a slot is taken; the request gains the
    run id of the row recorded ``queued`` when the run had to wait without one. Returns
    (slot, request, row) when the run stopped waiting: cancelled meanwhile.
    """
    backoff = Backoff.of(state.config)
    slot = SourceSlot(state.engine, spec.source.name, spec.source.max_connections, beside)
    if local_write(slot.try_take, backoff, "take a slot of the source"):
        _held[spec.name] = slot
        return slot, request, None
    run_id = request.run_id
    if run_id is None:
        run_id = local_write(partial(_queue, state, request), backoff, "record the run")
        request = replace(request, run_id=run_id)
    while True:
        still = local_write(partial(_waiting, state, run_id, spec.source.name), backoff,
                            "record that the run waits for a slot")
        if not still:
            return slot, request, local_write(partial(_row, state, run_id), backoff,
                                              "read the run")
        if local_write(slot.try_take, backoff, "take a slot of the source"):
            _held[spec.name] = slot
            return slot, request, None
        time.sleep(POLL_SECONDS)


def hand_on_slot(job: str) -> None:
    """Give back the slot the run of ``job`` in this process holds: its split load's ranges
    take slots of their own (the run itself reads nothing more)."""
    slot = _held.pop(job, None)
    if slot is not None:
        slot.release()


def take_range_slot(state: SyncdState, source: SourceSpec,
                    still_running: Callable[[], bool]) -> SourceSlot | None:
    """Wait for a slot of ``source`` for one key range of a split load and take it; None
    when the run stopped meanwhile (finished, failed, cancelled)."""
    backoff = Backoff.of(state.config)
    slot = SourceSlot(state.engine, source.name, source.max_connections)
    while not local_write(slot.try_take, backoff, "take a slot of the source"):
        if not still_running():
            return None
        time.sleep(POLL_SECONDS)
    return slot


def _queue(state: SyncdState, request: RunRequest) -> int:
    from syncd.runner import create_queued_run

    return create_queued_run(state, request.job, request.trigger, request.full_refresh,
                             request.started_by)


def _waiting(state: SyncdState, run_id: int, source: str) -> bool:
    """Record the heartbeat of a run waiting for a slot; False if it is no longer queued."""
    with state.sessions.begin() as session:
        done = session.connection().execute(
            update(SyncRun).where(SyncRun.id == run_id, SyncRun.status == "queued")
            .values(heartbeat_at=utcnow(), waiting_slot=source))
        return bool(done.rowcount)


def _row(state: SyncdState, run_id: int) -> SyncRun | None:
    with state.sessions() as session:
        return session.get(SyncRun, run_id)
