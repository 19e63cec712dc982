"""Celery beat builds its schedule from the jobs file: scheduled runs succeed, a paused job
produces none, a tick while the job runs is skipped, and a broken jobs file is logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from celery.schedules import crontab
from celery_helpers import (
    job_block,
    running_services,
    runs,
    sqlite_source_jobs,
    wait_for,
)
from sample_tables import create_orders, table_rows

from beat_schedule import HOUSEKEEPING_ENTRY, build_beat_schedule, entry_name
from syncd.jobs import parse_jobs
from syncd.tasks import HOUSEKEEPING_TASK, SYNC_TASK


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    """Worker and beat processes of this test, killed at teardown."""
    yield from running_services()


def _jobs(text: str):  # type: ignore[no-untyped-def]
    import tomllib

    return parse_jobs(tomllib.loads(text), "jobs.toml", {})


def test_schedule_has_one_entry_per_scheduled_job_and_housekeeping():
    jobs = _jobs(sqlite_source_jobs(
        "sqlite:///x.sqlite",
        job_block("every30s", schedule="30s"),
        job_block("cron5", table="customers", schedule="*/5 * * * *", timeout="2m"),
        job_block("manual", table="products"),
    ))
    now = datetime(2026, 1, 1, 12, 1, tzinfo=UTC)

    schedule = build_beat_schedule(jobs, housekeeping_seconds=60, max_run_seconds=3600, now=now)

    assert set(schedule) == {entry_name("every30s"), entry_name("cron5"), HOUSEKEEPING_ENTRY}
    every = schedule[entry_name("every30s")]
    assert every["task"] == SYNC_TASK
    assert every["kwargs"] == {"job": "every30s"}
    assert every["schedule"] == timedelta(seconds=30)
    assert every["options"]["expires"] == 30  # a tick nobody took is dropped before the next
    assert every["options"]["soft_time_limit"] == 3600  # no timeout: the longest allowed run
    cron = schedule[entry_name("cron5")]
    assert isinstance(cron["schedule"], crontab)
    assert cron["options"]["expires"] == 300
    assert 120 <= cron["options"]["soft_time_limit"] < cron["options"]["time_limit"]
    house = schedule[HOUSEKEEPING_ENTRY]
    assert house["task"] == HOUSEKEEPING_TASK
    assert house["schedule"] == timedelta(seconds=60)


def test_beat_runs_interval_job_and_not_paused_job(databases, make_env, services):
    source = databases.sqlite("source")
    create_orders(source, 500)
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(
        source,
        job_block("orders", schedule="2s"),
        job_block("paused", target="orders_paused", schedule="2s"),
    ))
    env.syncd("pause", "paused", check=True)
    services.worker(env)
    beat = services.beat(env)

    scheduled = wait_for(
        lambda: [r for r in runs(env.local_url, "orders")
                 if r["trigger"] == "schedule" and r["status"] == "succeeded"][1:],
        20, lambda: f"fewer than 2 scheduled runs succeeded: {runs(env.local_url)}")

    assert scheduled
    assert "Sending due task sync-paused" in beat.log  # beat fired it; the task did nothing
    assert runs(env.local_url, "paused") == []
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    statuses = {r["status"] for r in runs(env.local_url, "orders")}
    assert statuses <= {"succeeded", "running", "skipped"}, runs(env.local_url, "orders")


def test_tick_while_job_is_running_is_skipped(databases, make_env, services):
    source = databases.mysql()
    create_orders(source, 1000)
    env = make_env(databases.postgres(), sqlite_source_jobs(
        source, job_block("orders", schedule="2s", batch_size=100)))
    # The test blocks the source: with the table write-locked, the first run waits inside
    # its read (holding the job lock) for as long as the test needs, however fast it is.
    blocker = sa.create_engine(source, poolclass=sa.pool.NullPool)
    with blocker.connect() as conn:
        conn.exec_driver_sql("LOCK TABLES orders WRITE")
        services.worker(env, 2)
        services.beat(env)
        skipped = wait_for(
            lambda: [r for r in runs(env.local_url, "orders") if r["status"] == "skipped"], 30,
            lambda: f"no skipped run: {runs(env.local_url, 'orders')}")
        running = [r for r in runs(env.local_url, "orders") if r["status"] == "running"]
        assert len(running) == 1, runs(env.local_url, "orders")
        conn.exec_driver_sql("UNLOCK TABLES")
    blocker.dispose()

    assert skipped[0]["trigger"] == "schedule"
    assert f"another run of this job is in progress (run #{running[0]['id']})" \
        in skipped[0]["error"]
    wait_for(lambda: any(r["status"] == "succeeded" for r in runs(env.local_url, "orders")), 30)
    done = [r for r in runs(env.local_url, "orders") if r["started_at"] and r["finished_at"]]
    done.sort(key=lambda r: r["started_at"])
    for before, after in zip(done, done[1:], strict=False):  # never two at the same time
        assert before["finished_at"] <= after["started_at"], (before, after)
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")


def test_broken_jobs_file_is_logged_and_picked_up_once_fixed(databases, make_env, services):
    source = databases.sqlite("source")
    create_orders(source, 100)
    good = sqlite_source_jobs(source, job_block("orders", schedule="2s"))
    env = make_env(databases.sqlite("local"), good.replace('"2s"', '"every tuesday"'))
    services.worker(env)
    beat = services.beat(env)

    beat.wait_for_log("jobs file rejected")
    assert f'{env.jobs_file}: job "orders": field "schedule"' in beat.log
    assert beat.proc.poll() is None  # beat keeps running (housekeeping) until it is fixed

    env.write_jobs(good)
    beat.wait_for_log("1 job(s) scheduled", timeout=20)
    wait_for(lambda: any(r["status"] == "succeeded" for r in runs(env.local_url, "orders")), 20,
             lambda: f"no run after the fix: {runs(env.local_url)}\n{beat.log}")
