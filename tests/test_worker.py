"""A real Celery worker (no eager mode) runs queued syncs: on the embedded SQLite broker and
on RabbitMQ; a worker killed mid-run leaves an abandoned run that the next run resumes from;
a source that refuses connections is retried with backoff, then the run fails."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from blocking import SourceGate
from celery_helpers import (
    history,
    job_block,
    run_by_id,
    running_services,
    runs,
    sqlite_source_jobs,
    trigger,
    wait_for,
)
from conftest import RABBITMQ_URL, require_service
from sample_tables import create_orders, execute, table_rows


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    """Worker and beat processes of this test, killed at teardown."""
    yield from running_services()


REDIS_URL = "redis://127.0.0.1:6379/0"
FINISHED = {"succeeded", "failed", "skipped", "abandoned", "cancelled"}


def finished_run(local_url: str, run_id: int, timeout: float = 30) -> dict[str, Any]:
    """Wait for a run to finish; return its history row."""
    return wait_for(
        lambda: (r := run_by_id(local_url, run_id)) and r["status"] in FINISHED and r,
        timeout, lambda: f"run #{run_id} did not finish: {run_by_id(local_url, run_id)}",
    )


def test_worker_on_sqlite_broker_runs_queued_sync(databases, make_env, services):
    source = databases.sqlite("source")
    create_orders(source, 2_500)
    env = make_env(databases.sqlite("local"),
                   sqlite_source_jobs(source, job_block("orders", batch_size=1000)))
    services.worker(env)

    run_id = trigger(env, "orders")

    run = finished_run(env.local_url, run_id)
    assert run["status"] == "succeeded", run
    assert run["trigger"] == "cli"
    assert run["rows_inserted"] == 2_500
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    # what the operator sees: exactly this run, no duplicate from the broker
    assert [(r["id"], r["status"]) for r in history(env, "orders")] == [(run_id, "succeeded")]


def test_worker_on_rabbitmq_runs_queued_sync(databases, make_env, services):
    require_service("rabbitmq")
    source = databases.mysql()
    create_orders(source, 3_000)
    env = make_env(databases.postgres(),
                   sqlite_source_jobs(source, job_block("orders", batch_size=1000)))
    queue = f"syncd-test-{uuid.uuid4().hex[:10]}"
    env.extra_env.update(CELERY_BROKER_URL=RABBITMQ_URL, SYNCD_QUEUE=queue)
    try:
        worker = services.worker(env)
        assert f".> {queue}" in worker.log  # consumes syncd's queue without -Q

        full = trigger(env, "orders", "--full-refresh")
        run = finished_run(env.local_url, full)
        assert run["status"] == "succeeded", run
        assert run["full_refresh"] is True
        execute(source, "UPDATE orders SET qty = qty + 1, updated_at = '2030-01-01 00:00:00' "
                        "WHERE id <= 10")
        incremental = finished_run(env.local_url, trigger(env, "orders"))
        assert incremental["status"] == "succeeded", incremental
        assert incremental["rows_updated"] == 10
        assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    finally:
        _delete_rabbitmq_queue(queue)


def test_worker_on_redis_runs_queued_sync(databases, make_env, services):
    require_service("redis")
    source = databases.postgres()
    create_orders(source, 1_000)
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(source, job_block("orders")))
    queue = f"syncd-test-{uuid.uuid4().hex[:10]}"
    env.extra_env.update(CELERY_BROKER_URL=REDIS_URL, SYNCD_QUEUE=queue)
    try:
        services.worker(env)
        run = finished_run(env.local_url, trigger(env, "orders"))
        assert run["status"] == "succeeded", run
        assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    finally:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()


def _delete_rabbitmq_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(RABBITMQ_URL) as conn:
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


def test_killed_worker_run_is_abandoned_and_next_run_resumes(databases, make_env, services):
    source = databases.mysql()
    create_orders(source, 2_000)
    gate = SourceGate(source, at=1_001)  # the load cannot pass row 1001 while the test holds it
    env = make_env(databases.postgres(), sqlite_source_jobs(
        source, job_block("orders", batch_size=100, **gate.job_fields())))
    env.extra_env["SYNCD_HOUSEKEEPING_SECONDS"] = "1"
    worker = services.worker(env)
    with gate:
        killed = trigger(env, "orders")
        # kill the whole worker (main process and pool) while the run waits at the gate,
        # with the batches before it committed
        gate.wait_until_reached()
        wait_for(lambda: _checkpointed(env.local_url), 30, "the run never checkpointed a batch",
                 interval=0.02)
        worker.kill()
    run = run_by_id(env.local_url, killed)
    assert run["status"] == "running", "the kill must land mid-run"

    # housekeeping (beat) notices the dead run once a worker is back
    services.worker(env)
    services.beat(env)
    wait_for(lambda: run_by_id(env.local_url, killed)["status"] == "abandoned", 20,
             lambda: f"run not abandoned: {run_by_id(env.local_url, killed)}")
    abandoned = run_by_id(env.local_url, killed)
    assert "died" in abandoned["error"]

    resumed = finished_run(env.local_url, trigger(env, "orders"), timeout=45)
    assert resumed["status"] == "succeeded", resumed
    assert 0 < resumed["rows_read"] < 2_000  # it went on from the checkpoint
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    assert [r["status"] for r in runs(env.local_url, "orders")] == ["abandoned", "succeeded"]


def test_rabbitmq_redelivers_killed_run_and_a_new_run_resumes(databases, make_env, services):
    """acks_late on RabbitMQ: the message of a killed worker goes to the next worker."""
    require_service("rabbitmq")
    source = databases.mysql()
    create_orders(source, 2_000)
    gate = SourceGate(source, at=1_001)
    env = make_env(databases.postgres(), sqlite_source_jobs(
        source, job_block("orders", batch_size=100, **gate.job_fields())))
    queue = f"syncd-test-{uuid.uuid4().hex[:10]}"
    env.extra_env.update(CELERY_BROKER_URL=RABBITMQ_URL, SYNCD_QUEUE=queue)
    try:
        worker = services.worker(env)
        with gate:
            killed = trigger(env, "orders")
            gate.wait_until_reached()
            wait_for(lambda: _checkpointed(env.local_url), 30,
                     "the run never checkpointed a batch", interval=0.02)
            worker.kill()
        assert run_by_id(env.local_url, killed)["status"] == "running"

        services.worker(env)  # no new trigger: the broker delivers the message again
        wait_for(lambda: len(runs(env.local_url, "orders")) == 2 and
                 runs(env.local_url, "orders")[1]["status"] in FINISHED, 45,
                 lambda: f"no new run after redelivery: {runs(env.local_url)}")
        dead, resumed = runs(env.local_url, "orders")
        assert dead["id"] == killed and dead["status"] == "abandoned"
        assert resumed["status"] == "succeeded" and resumed["trigger"] == "cli"
        assert 0 < resumed["rows_read"] < 2_000
        assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    finally:
        _delete_rabbitmq_queue(queue)


def _checkpointed(local_url: str) -> bool:
    engine = sa.create_engine(local_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT COUNT(*) FROM syncd_checkpoints WHERE job = 'orders' AND position "
                "IS NOT NULL")).scalar())
    except sa.exc.ProgrammingError:
        return False
    finally:
        engine.dispose()


def test_unreachable_source_is_retried_then_fails(databases, make_env, services):
    refused = "postgresql+psycopg2://reader:secret@127.0.0.1:1/crm"  # nothing listens on port 1
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(refused, job_block("orders")))
    env.extra_env.update(SYNCD_RETRY_ATTEMPTS="3", SYNCD_RETRY_BACKOFF="0.5")
    services.worker(env)

    run = finished_run(env.local_url, trigger(env, "orders"))

    assert run["status"] == "failed"
    assert run["attempts"] == 3
    assert "gave up after 3 attempts" in run["error"]
    assert "127.0.0.1" in run["error"] or "refused" in run["error"].lower(), run["error"]
    assert "secret" not in run["error"]
    # backoff between the attempts: 0.5 s then 1 s, each with jitter of x0.5..x1.5
    assert run["duration_s"] >= 0.75


def test_soft_time_limit_ends_run_as_timed_out(databases, make_env, services):
    """The worker's soft time limit (the job's timeout) stops a run the runner did not."""
    source = databases.mysql()
    create_orders(source, 1_000)
    gate = SourceGate(source, at=501)
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(
        source, job_block("orders", batch_size=1_000, **gate.job_fields())))
    worker = services.worker(env)
    app = env.app()
    from syncd import get_state
    from syncd.runner import create_queued_run
    from syncd.tasks import SYNC_TASK

    state = get_state(app)
    run_id = create_queued_run(state, "orders", "cli")
    # The batch that reaches the gate cannot complete while it is held: the runner checks
    # the timeout only between batches, so only the soft limit can stop it.
    # (The limit leaves the run ample time to get to the gate.)
    with gate:
        task = app.extensions["celery"].send_task(
            SYNC_TASK, kwargs={"run_id": run_id}, soft_time_limit=2, time_limit=60)
        gate.wait_until_reached()
        # logged by the worker right before it signals the process running the task
        worker.wait_for_log(f"exceeded for {SYNC_TASK}[{task.id}]")
    # The runner records the run failed, then the task words the error: read it after both.
    worker.wait_for_log(f"Task {SYNC_TASK}[{task.id}] succeeded")
    run = run_by_id(env.local_url, run_id)
    state.dispose()
    assert run["status"] == "failed", run
    assert run["error"].startswith("timed out"), run["error"]
    assert "checkpoint kept" in run["error"]
    # The rows before the gate may have been committed (a batch's first fetch is small
    # until the rows' width is known); none past it: the run was stopped at the gate.
    assert run["rows_read"] < 501


def test_a_full_resync_asked_for_while_a_run_holds_the_job_waits_then_runs(databases, make_env,
                                                                           services):
    """Who asked is never dropped: the operator's full resync waits "queued" for the run in
    progress, then runs; a scheduled tick meanwhile is skipped."""
    source = databases.mysql()
    create_orders(source, 2_000)
    gate = SourceGate(source, at=1_001)
    env = make_env(databases.postgres(), sqlite_source_jobs(
        source, job_block("orders", batch_size=100, **gate.job_fields())))
    worker = services.worker(env, 3)  # the run, the resync waiting for it, and the tick
    app = env.app()
    from syncd.tasks import SYNC_TASK

    with gate:
        first = trigger(env, "orders")
        gate.wait_until_reached()  # the first run holds the job, mid-load
        asked = env.syncd("trigger", "orders", "--full-refresh", check=True).stdout
        resync = int(asked.strip().splitlines()[-1])
        assert f"as run #{resync}; it waits for run #{first} to finish;" in asked
        waiting = wait_for(lambda: (r := run_by_id(env.local_url, resync)) and
                           r["waiting_for"] == first and r, 30,
                           lambda: f"not waiting: {run_by_id(env.local_url, resync)}")
        assert waiting["status"] == "queued"
        assert waiting["activity"] == f"waiting for run #{first} to finish"
        text = env.syncd("history", "orders", check=True).stdout
        assert f"run #{resync} orders: queued read=0" in text
        assert f"-- waiting for run #{first} to finish" in text
        tick = app.extensions["celery"].send_task(SYNC_TASK, kwargs={"job": "orders"})
        worker.wait_for_log(f"Task {SYNC_TASK}[{tick.id}] succeeded")  # a worker is free again
        assert run_by_id(env.local_url, resync)["status"] == "queued"
    done = finished_run(env.local_url, first, timeout=60)
    assert done["status"] == "succeeded", done
    full = finished_run(env.local_url, resync, timeout=60)
    assert (full["status"], full["full_refresh"], full["rows_read"]) == ("succeeded", True, 2_000)
    assert full["started_at"] >= done["finished_at"]
    statuses = {r["id"]: (r["trigger"], r["status"]) for r in runs(env.local_url, "orders")}
    assert statuses.pop(first) == ("cli", "succeeded")
    assert statuses.pop(resync) == ("cli", "succeeded")
    assert list(statuses.values()) == [("schedule", "skipped")]  # the tick, not the operator
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    from syncd import get_state

    get_state(app).dispose()


def test_cancel_stops_a_running_run_at_a_batch_boundary(databases, make_env, services):
    source = databases.mysql()
    create_orders(source, 2_000)
    gate = SourceGate(source, at=1_001)
    env = make_env(databases.postgres(), sqlite_source_jobs(
        source, job_block("orders", batch_size=100, **gate.job_fields())))
    services.worker(env)
    with gate:
        run_id = trigger(env, "orders")
        gate.wait_until_reached()
        wait_for(lambda: _checkpointed(env.local_url), 30, "the run never checkpointed a batch",
                 interval=0.02)
        asked = env.syncd("cancel", str(run_id), check=True)
        assert asked.stdout.strip() == (
            f"run #{run_id} of orders: cancel requested by cli; it stops at the next batch "
            "boundary with its checkpoint committed")
        row = run_by_id(env.local_url, run_id)
        assert row["status"] == "running" and row["cancelled_by"] == "cli"
    run = finished_run(env.local_url, run_id, timeout=60)
    assert (run["status"], run["cancelled_by"]) == ("cancelled", "cli"), run
    assert run["error"].startswith("cancelled by cli: stopped after ")
    assert 0 < run["rows_read"] < 2_000
    again = env.syncd("cancel", str(run_id))
    assert again.returncode == 0 and "already finished (cancelled)" in again.stdout

    resumed = finished_run(env.local_url, trigger(env, "orders"), timeout=60)
    assert resumed["status"] == "succeeded"
    assert resumed["rows_read"] == 2_000 - run["rows_read"]  # from the kept checkpoint
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
