"""Outages while a run is under way: the source connection lost mid-load, the local
database stopped for a while or for good. Each test breaks only what it owns (its own
MariaDB connection, a private PostgreSQL) and asserts what an operator checks: the exit
code and summary line, the history row, local rows equal to source rows."""

from __future__ import annotations

import json

import pytest
from outages import (
    Background,
    fill_orders_mysql,
    held_checkpoints,
    kill_source_reader,
    locked_source_table,
    private_postgres_server,
    run_rows,
    source_waiters,
    wait_until,
)
from sample_tables import create_orders, execute, table_rows
from test_sync import jobs_toml


@pytest.fixture
def private_postgres():  # type: ignore[no-untyped-def]
    """A PostgreSQL server of this test only (stopped and started by it)."""
    yield from private_postgres_server()


def history(env) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(env.syncd("history", "--json", check=True).stdout)


@pytest.mark.parametrize("path", ["values", "ranges"])
def test_source_connection_lost_mid_full_load_is_retried(databases, make_env, path):
    """MySQL -> PostgreSQL full load, PyMySQL: the source connection is killed mid-table;
    the run retries and resumes from its checkpoint. ``values``: a table with a DOUBLE
    column streams its values (the streaming cursor whose close() once hid the error);
    ``ranges``: the source writes COPY lines by key range, and the reader is killed
    between two ranges, idle in its snapshot."""
    src, local = databases.mysql(), databases.postgres()
    fill_orders_mysql(src, 100_000)
    if path == "values":
        execute(src, "ALTER TABLE orders ADD COLUMN ratio DOUBLE DEFAULT 0.5")
    env = make_env(local, jobs_toml(src, batch_size=1000))
    env.extra_env["SYNCD_MYSQL_READER"] = "pymysql"
    with held_checkpoints(local) as hold:
        proc = env.popen("run", "orders")
        try:
            hold.wait_until_blocked()  # batch 1 waits to commit; the reader is mid-table
            kill_source_reader(src, idle=path == "ranges")
            hold.release()
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, out + err
    assert "AttributeError" not in err
    (run,) = history(env)
    assert run["status"] == "succeeded", run
    assert run["attempts"] == 2
    assert "Lost connection" in err or "gone away" in err  # the retry says why
    assert table_rows(local, "orders") == table_rows(src, "orders")


def _start_blocked_run(env, source: str):  # type: ignore[no-untyped-def]
    """``syncd run orders`` in the background, waiting for the source (table locked)."""
    run = Background(env, "run", "orders")
    wait_until(lambda: [r for r in run_rows(env.local_url) if r["status"] == "running"], 60,
               "the run to start")
    wait_until(lambda: source_waiters(source) >= 1, 60, "the run to wait for the source")
    return run


def test_local_database_stopped_mid_run_and_back_is_retried(databases, make_env,
                                                            private_postgres):
    source = databases.mysql()
    create_orders(source, 3000)
    env = make_env(private_postgres.url, jobs_toml(source, batch_size=500))
    env.extra_env.update(SYNCD_RETRY_ATTEMPTS="8", SYNCD_RETRY_BACKOFF="0.5")
    with locked_source_table(source):
        run = _start_blocked_run(env, source)
        private_postgres.stop()  # the run holds its lock and waits for the source
    try:
        run.wait_for_stderr("attempt 1 of 8 failed (local database:")
        private_postgres.start()
        code = run.wait()
    finally:
        run.kill()

    assert code == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("run #1 orders: succeeded read=3000")
    (row,) = run_rows(env.local_url)
    assert row["status"] == "succeeded" and row["attempts"] >= 2, row
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")


def test_local_database_down_longer_than_the_retries(databases, make_env, private_postgres):
    source = databases.mysql()
    create_orders(source, 3000)
    env = make_env(private_postgres.url, jobs_toml(source, batch_size=500))
    env.extra_env.update(SYNCD_RETRY_ATTEMPTS="3", SYNCD_RETRY_BACKOFF="0.2")
    with locked_source_table(source):
        run = _start_blocked_run(env, source)
        private_postgres.stop()
    try:
        code = run.wait()
    finally:
        run.kill()
    # exit 1 (not 2: nothing is wrong with the configuration), one summary line, no traceback
    assert code == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.startswith("run #1 orders: failed"), summary
    assert "gave up after 3 attempts: local database:" in summary
    assert "not recorded in the history" in summary
    history = env.syncd("history")  # other commands say so too, without a traceback
    assert history.returncode == 1 and "local database unreachable" in history.stderr
    assert "Traceback" not in history.stderr

    private_postgres.start()
    again = env.syncd("run", "orders")
    assert again.returncode == 0, again.stdout + again.stderr
    rows = run_rows(env.local_url)
    assert [r["status"] for r in rows] == ["abandoned", "succeeded"], rows
    assert "died" in rows[0]["error"]
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")


def test_local_database_down_before_the_run_starts(databases, make_env, private_postgres):
    source = databases.mysql()
    create_orders(source, 10)
    env = make_env(private_postgres.url, jobs_toml(source))
    env.extra_env.update(SYNCD_RETRY_ATTEMPTS="2", SYNCD_RETRY_BACKOFF="0.1")
    private_postgres.stop()

    proc = env.syncd("run", "orders")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("run orders: failed -- local database: gave up after 2 attempts")
