"""Housekeeping that needs no worker: beat itself, `syncd up` and reads of the dashboard or
/metrics mark runs of dead processes and runs queued too long ``abandoned``."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from celery_helpers import job_block, running_services, runs, sqlite_source_jobs, trigger, wait_for
from outages import free_port, locked_source_table, source_waiters
from sample_tables import create_orders
from web_helpers import make_site

from syncd.models import utcnow


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    """Worker and beat processes of this test, killed at teardown."""
    yield from running_services()


def test_beat_marks_the_run_of_a_killed_worker_abandoned(databases, make_env, services):
    source = databases.mysql()
    create_orders(source, 500)
    env = make_env(databases.postgres(), sqlite_source_jobs(source, job_block("orders")))
    env.extra_env["SYNCD_HOUSEKEEPING_SECONDS"] = "1"
    with locked_source_table(source):  # the run waits for the source, holding its lock
        worker = services.worker(env)
        beat = services.beat(env)
        run_id = trigger(env, "orders")
        wait_for(lambda: source_waiters(source) == 1, 60, "the run never waited for the source")
        assert [r["status"] for r in runs(env.local_url)] == ["running"]
        worker.kill(signal.SIGKILL)  # the whole worker: no process is left to do housekeeping

        run = wait_for(lambda: (r := runs(env.local_url)[0])["status"] == "abandoned" and r, 60,
                       lambda: f"not abandoned: {runs(env.local_url)}\n{beat.log[-3000:]}")

    assert run["id"] == run_id
    assert "the process running this sync died" in run["error"]
    assert f"beat: housekeeping marked runs #{run_id} abandoned" in beat.log


def test_run_queued_too_long_is_abandoned_and_never_started(databases, make_env, services):
    source = databases.sqlite("source")
    create_orders(source, 10)
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(source, job_block("orders")))
    env.extra_env.update(SYNCD_HOUSEKEEPING_SECONDS="1", SYNCD_QUEUED_TIMEOUT="2s")
    beat = services.beat(env)  # and no worker: the run stays queued
    run_id = trigger(env, "orders")

    run = wait_for(lambda: (r := runs(env.local_url)[0])["status"] == "abandoned" and r, 60,
                   lambda: f"not abandoned: {runs(env.local_url)}\n{beat.log[-3000:]}")
    assert run["id"] == run_id and run["started_at"] is None
    assert run["error"].startswith("queued for longer than SYNCD_QUEUED_TIMEOUT (2s)")

    worker = services.worker(env)  # its message has expired: the worker drops it
    worker.wait_for_log("Discarding revoked task: syncd.sync[")
    assert [(r["id"], r["status"]) for r in runs(env.local_url)] == [(run_id, "abandoned")]


def test_reading_metrics_or_dashboard_marks_stale_runs_abandoned(databases, make_env):
    site = make_site(databases, make_env)
    try:
        dead = site.add_run(status="running")  # what a killed process leaves: lock free
        old = site.add_run(status="queued", trigger="manual",
                           queued_at=utcnow() - timedelta(hours=2))
        fresh = site.add_run(job="other", status="queued", trigger="manual", queued_at=utcnow())

        assert site.client().get("/metrics").status_code == 200

        status = {r.id: (r.status, r.error) for r in site.runs() + site.runs("other")}
        assert status[dead][0] == "abandoned" and "died" in status[dead][1]
        assert status[old] == ("abandoned", status[old][1])
        assert status[old][1].startswith("queued for longer than SYNCD_QUEUED_TIMEOUT (1h)")
        assert status[fresh][0] == "queued"

        later = site.add_run(status="running")
        client = site.login("vic")
        assert client.get("/").status_code == 200  # within the period: not again
        assert {r.id: r.status for r in site.runs()}[later] == "running"
    finally:
        site.state.dispose()

    second = make_site(databases, make_env)  # a fresh web process: the dashboard does it
    try:
        dead = second.add_run(status="running")
        assert second.login("vic").get("/").status_code == 200
        assert {r.id: r.status for r in second.runs()}[dead] == "abandoned"
    finally:
        second.state.dispose()


def test_syncd_up_marks_runs_left_behind_abandoned(databases, make_env):
    source = databases.sqlite("source")
    create_orders(source, 10)
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(source, job_block("orders")))
    app = env.app()
    from syncd import get_state
    from syncd.models import SyncRun

    state = get_state(app)
    with state.sessions.begin() as session:
        session.add(SyncRun(job="orders", trigger="schedule", status="running",
                            queued_at=utcnow(), started_at=utcnow()))
    state.dispose()
    up = subprocess.Popen([sys.executable, "-m", "syncd", "up", "--port", str(free_port())],
                          env=env.env, cwd=env.tmp_path, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert up.stderr is not None
        lines = []
        for line in up.stderr:
            lines.append(line)
            if "marked runs" in line or "admin page" in line or "error" in line:
                break
    finally:
        import os

        os.killpg(up.pid, signal.SIGKILL)
        up.wait(timeout=30)
    assert any("marked runs #1 abandoned" in line for line in lines), lines
    assert [r["status"] for r in runs(env.local_url)] == ["abandoned"]
