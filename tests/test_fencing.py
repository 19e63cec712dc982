"""One run per job even when the local database restarts: the job lock dies with its
connection, so every batch commit proves the run still holds the job's lease."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from outages import (
    Background,
    locked_source_table,
    private_postgres_server,
    run_rows,
    source_waiters,
    wait_until,
)
from sample_tables import create_orders, table_rows
from test_sync import jobs_toml

from syncd.engine.errors import LostJobLock
from syncd.locks import JobLock


@pytest.fixture
def private_postgres():  # type: ignore[no-untyped-def]
    """A PostgreSQL server of this test only (stopped and started by it)."""
    yield from private_postgres_server()


def test_lock_is_taken_again_after_a_restart_when_free(private_postgres):
    first_engine = sa.create_engine(private_postgres.url, pool_pre_ping=True)
    other_engine = sa.create_engine(private_postgres.url, pool_pre_ping=True)
    lock, other = JobLock(first_engine, "orders"), JobLock(other_engine, "orders")
    try:
        assert lock.acquire()
        private_postgres.restart()  # the session holding the lock is gone
        lock.ensure()  # nobody took it meanwhile: taken again
        assert not other.acquire()
    finally:
        lock.release()
        other.release()
        first_engine.dispose()
        other_engine.dispose()


def test_lock_taken_by_another_process_after_a_restart_is_lost(private_postgres):
    first_engine = sa.create_engine(private_postgres.url, pool_pre_ping=True)
    other_engine = sa.create_engine(private_postgres.url, pool_pre_ping=True)
    lock, other = JobLock(first_engine, "orders"), JobLock(other_engine, "orders")
    try:
        assert lock.acquire()
        private_postgres.restart()
        assert other.acquire()  # the lock died with its connection
        with pytest.raises(LostJobLock, match="lost the job lock"):
            lock.ensure()
    finally:
        lock.release()
        other.release()
        first_engine.dispose()
        other_engine.dispose()


def test_second_run_after_a_restart_takes_over_and_the_first_writes_nothing(
        databases, make_env, private_postgres):
    source = databases.mysql()
    create_orders(source, 5000)
    env = make_env(private_postgres.url, jobs_toml(source, batch_size=500))
    with locked_source_table(source):
        first = Background(env, "run", "orders")
        try:
            wait_until(lambda: [r["status"] for r in run_rows(env.local_url)] == ["running"], 60,
                       "the first run to start")
            wait_until(lambda: source_waiters(source) == 1, 60, "the first run to wait")
            private_postgres.restart()  # the first run's lock dies; it waits on, unaware
            second = Background(env, "run", "orders")
            try:
                wait_until(lambda: [r["status"] for r in run_rows(env.local_url)]
                           == ["abandoned", "running"], 60, "the second run to start")
                wait_until(lambda: source_waiters(source) == 2, 60, "the second run to wait")
            except BaseException:
                second.kill()
                raise
        except BaseException:
            first.kill()
            raise
    # both go on now: only the run holding the lease may write
    first_code, second_code = first.wait(), second.wait()

    assert second_code == 0, second.stdout + second.stderr
    assert first_code == 1, first.stdout + first.stderr
    assert "lost the job lock" in first.stdout.strip().splitlines()[-1]
    for run in (first, second):
        assert "Traceback" not in run.stderr
        assert "duplicate key" not in run.stdout + run.stderr
    rows = run_rows(env.local_url)
    assert [r["status"] for r in rows] == ["failed", "succeeded"], rows
    assert rows[0]["error"].startswith("lost the job lock: run #2 took the job over")
    assert rows[0]["rows_read"] == 0  # it never wrote a batch
    assert rows[1]["rows_read"] == 5000 and rows[1]["rows_inserted"] == 5000
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
