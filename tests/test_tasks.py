"""``syncd trigger`` and ``enqueue_run``: the run row is committed ``queued`` before the message
goes to the broker; unknown jobs and broken jobs files are refused; a message delivered again
after its worker died starts a new run instead of reviving the dead one."""

from __future__ import annotations

import sqlalchemy as sa
from celery_helpers import job_block, run_by_id, runs, sqlite_source_jobs
from sample_tables import create_orders, table_rows

from syncd import get_state
from syncd.models import SyncRun, utcnow
from syncd.tasks import SYNC_TASK, sync, time_limits


def broker_messages(env) -> list[str]:  # type: ignore[no-untyped-def]
    """Payloads waiting in the embedded (SQLite) broker."""
    engine = sa.create_engine(f"sqlite:///{env.var_dir / 'broker.sqlite'}")
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.exec_driver_sql(
                "SELECT payload FROM kombu_message WHERE visible = 1")]
    finally:
        engine.dispose()


def test_trigger_records_queued_run_and_sends_it(databases, make_env):
    source = databases.sqlite("source")
    create_orders(source, 10)
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(source, job_block("orders")))

    proc = env.syncd("trigger", "orders", "--full-refresh")

    assert proc.returncode == 0, proc.stderr
    run_id = int(proc.stdout.strip().splitlines()[-1])  # the id alone on the last line
    run = run_by_id(env.local_url, run_id)
    assert run["status"] == "queued"  # no worker yet: it waits on the broker
    assert run["trigger"] == "cli" and run["full_refresh"] is True
    messages = broker_messages(env)
    assert len(messages) == 1 and SYNC_TASK in messages[0]


def test_trigger_unknown_job_or_broken_file_exits_2_and_writes_nothing(databases, make_env):
    source = databases.sqlite("source")
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(source, job_block("orders")))

    # Broken before any jobs file validated: no last good file can stand in for it.
    env.write_jobs(sqlite_source_jobs(source, job_block("orders", batch_size=0)))
    broken = env.syncd("trigger", "orders")
    assert broken.returncode == 2
    assert 'job "orders": field "batch_size"' in broken.stderr

    env.write_jobs(sqlite_source_jobs(source, job_block("orders")))
    unknown = env.syncd("trigger", "nope")
    assert unknown.returncode == 2
    assert 'no job named "nope"' in unknown.stderr
    assert runs(env.local_url) == []


def test_trigger_with_broker_down_fails_the_run_clearly(databases, make_env):
    source = databases.sqlite("source")
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(source, job_block("orders")))
    env.extra_env["CELERY_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1//"

    proc = env.syncd("trigger", "orders", timeout=60)

    assert proc.returncode == 1
    assert "broker unreachable" in proc.stderr
    [run] = runs(env.local_url)
    assert run["status"] == "failed" and "broker unreachable" in run["error"]


def test_message_delivered_again_after_worker_died_starts_new_run(databases, make_env):
    """acks_late: the broker redelivers the message of a dead worker's run."""
    source = databases.sqlite("source")
    create_orders(source, 50)
    env = make_env(databases.sqlite("local"), sqlite_source_jobs(source, job_block("orders")))
    app = env.app()
    state = get_state(app)
    with state.sessions.begin() as session:
        dead = SyncRun(job="orders", trigger="manual", status="running", queued_at=utcnow(),
                       started_at=utcnow(), full_refresh=True)
        done = SyncRun(job="orders", trigger="api", status="succeeded", queued_at=utcnow())
        session.add_all([dead, done])
    try:
        assert sync(run_id=done.id) is None  # finished: nothing to do again
        assert sync(run_id=dead.id) == "succeeded"
    finally:
        state.dispose()

    history = {r["id"]: r for r in runs(env.local_url)}
    assert history[dead.id]["status"] == "abandoned"  # stays one row
    [new] = [r for r in history.values() if r["id"] not in (dead.id, done.id)]
    assert new["status"] == "succeeded" and new["trigger"] == "manual"
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")


def test_time_limits_follow_the_job_timeout():
    class Job:
        timeout = None

    assert time_limits(Job, 3600) == {"soft_time_limit": 3600, "time_limit": 3660}
    from datetime import timedelta

    Job.timeout = timedelta(minutes=5)
    limits = time_limits(Job, 3600)
    assert 300 < limits["soft_time_limit"] < limits["time_limit"] <= 3600 + 60


def test_celery_settings_ack_late_on_syncd_queue_with_redelivery_above_longest_run():
    from config import Config, celery_settings

    base = {"SYNCD_MAX_RUN_SECONDS": "7200", "SYNCD_VAR_DIR": "/tmp/x", "SYNCD_SECRET_KEY": "k"}
    redis = celery_settings(Config(environ={**base, "CELERY_BROKER_URL": "redis://r:6379/0"})
                            .as_dict())
    assert redis["task_default_queue"] == "syncd"
    assert redis["task_acks_late"] is True and redis["worker_prefetch_multiplier"] == 1
    assert redis["broker_transport_options"]["visibility_timeout"] > 7200
    assert redis["task_soft_time_limit"] == 7200
    embedded = celery_settings(Config(environ=base).as_dict())
    assert embedded["broker_url"] == "sqla+sqlite:////tmp/x/broker.sqlite"
    assert "visibility_timeout" not in embedded["broker_transport_options"]  # not for SQLAlchemy
    queue = celery_settings(Config(environ={**base, "SYNCD_QUEUE": "q2"}).as_dict())
    assert queue["task_default_queue"] == "q2"
