"""Who asked is never dropped: a queued run waits while its job's lock is held, a scheduled
tick steps aside for it, a cancel ends the wait, and the wait ends at the job's timeout.

The runner is called in this process (a thread plays the worker); the test holds the job's
lock itself, as a running run's process does, so nothing depends on how fast anything runs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from celery_helpers import wait_for
from sample_tables import create_orders, table_rows
from test_sync import jobs_toml, make_state

from syncd.cancel import request_cancel
from syncd.locks import JobLock
from syncd.models import SyncRun, utcnow
from syncd.runner import RunRequest, create_queued_run, run_job


class Worker(threading.Thread):
    """run_job of one queued run in a thread; ``result`` once it returns."""

    def __init__(self, state: Any, run_id: int, full_refresh: bool = False) -> None:
        super().__init__(daemon=True)
        self.state = state
        self.request = RunRequest(job="orders", trigger="manual", run_id=run_id,
                                  full_refresh=full_refresh, started_by="alice")
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = run_job(self.state, self.request)
        except BaseException as exc:  # noqa: BLE001  (re-raised by the test)
            self.error = exc

    def outcome(self, timeout: float = 60) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the run did not return"
        if self.error is not None:
            raise self.error
        return self.result


def row(state: Any, run_id: int) -> SyncRun:
    with state.sessions() as session:
        found = session.get(SyncRun, run_id)
    assert found is not None
    return found


def add_running(state: Any) -> int:
    """A running run of "orders", as the process holding the lock records it."""
    with state.sessions.begin() as session:
        run = SyncRun(job="orders", trigger="schedule", status="running", started_at=utcnow(),
                      heartbeat_at=utcnow(), queued_at=utcnow(), started_by="beat")
        session.add(run)
        session.flush()
        return int(run.id)


@pytest.fixture
def state(databases: Any, tmp_path: Any) -> Any:
    source = databases.sqlite("source")
    create_orders(source, 50)
    made = make_state(tmp_path, databases.postgres(), jobs_toml(source, timeout="1h"))
    made.source_url = source
    yield made
    made.dispose()


def test_queued_run_waits_for_the_running_run_then_runs(state: Any) -> None:
    holder = JobLock(state.engine, "orders")
    assert holder.acquire()
    running = add_running(state)
    queued = create_queued_run(state, "orders", "manual", full_refresh=True, started_by="alice")
    worker = Worker(state, queued, full_refresh=True)
    try:
        worker.start()
        wait_for(lambda: row(state, queued).waiting_for == running, 30,
                 lambda: f"the run does not wait for #{running}: {row(state, queued).to_dict()}")
        waiting = row(state, queued)
        assert waiting.status == "queued"
        assert waiting.activity == f"waiting for run #{running} to finish"
        assert worker.is_alive()
    finally:
        with state.sessions.begin() as session:  # the running run ends, its lock goes
            session.get(SyncRun, running).status = "succeeded"
        holder.release()
    done = worker.outcome()
    assert (done.id, done.status, done.full_refresh) == (queued, "succeeded", True)
    assert done.rows_read == 50 and done.waiting_for is None
    assert table_rows(state.config.SYNCD_DATABASE_URL, "orders") == \
        table_rows(state.source_url, "orders")


def test_a_scheduled_tick_steps_aside_for_a_waiting_run(state: Any) -> None:
    queued = create_queued_run(state, "orders", "api", started_by="token:ci")
    with state.sessions.begin() as session:  # a worker holds it and waits (its heartbeat)
        session.get(SyncRun, queued).heartbeat_at = utcnow()
    tick = run_job(state, RunRequest(job="orders", trigger="schedule", scheduled=True,
                                     started_by="beat"))
    assert tick is not None and tick.status == "skipped"
    assert tick.error == (f"skipped: run #{queued} (api, asked by token:ci) is waiting for this "
                          "job and goes first")
    assert row(state, queued).status == "queued"


def test_a_waiting_run_whose_worker_is_gone_does_not_hold_up_scheduled_runs(state: Any) -> None:
    create_queued_run(state, "orders", "manual", started_by="alice")  # no heartbeat: no worker
    tick = run_job(state, RunRequest(job="orders", trigger="schedule", scheduled=True))
    assert tick is not None and tick.status == "succeeded", tick.error


def test_cancel_ends_the_wait_at_once(state: Any) -> None:
    holder = JobLock(state.engine, "orders")
    assert holder.acquire()
    try:
        running = add_running(state)
        queued = create_queued_run(state, "orders", "manual", started_by="alice")
        worker = Worker(state, queued)
        worker.start()
        wait_for(lambda: row(state, queued).waiting_for == running, 30, "the run does not wait")
        outcome = request_cancel(state, queued, by="bob")
        assert outcome.done == "cancelled"
        done = worker.outcome(timeout=30)
    finally:
        holder.release()
    assert (done.status, done.cancelled_by) == ("cancelled", "bob")
    assert done.error == "cancelled by bob before it started" and done.started_at is None


def test_the_wait_ends_at_the_jobs_timeout(databases: Any, tmp_path: Any) -> None:
    source = databases.sqlite("source")
    create_orders(source, 5)
    state = make_state(tmp_path, databases.sqlite("local"), jobs_toml(source, timeout="2s"))
    holder = JobLock(state.engine, "orders")
    assert holder.acquire()  # held by "another process" for longer than the job's timeout
    try:
        queued = create_queued_run(state, "orders", "cli", started_by="cli")
        started = time.monotonic()
        done = Worker(state, queued)
        done.start()
        result = done.outcome(timeout=60)
    finally:
        holder.release()
        state.dispose()
    assert time.monotonic() - started >= 2
    assert result.status == "failed"
    assert result.error == ("not started: waited 2s (the job's timeout) for another process "
                            "to finish, and it still holds the job; start it again")
