"""Outages while a run is under way: the source connection lost mid-load, the local
database stopped for a while or for good. Each test breaks only what it owns (its own
MariaDB connection, a private PostgreSQL) and asserts what an operator checks: the exit
code and summary line, the history row, local rows equal to source rows."""

from __future__ import annotations

import json

from outages import fill_orders_mysql, held_checkpoints, kill_source_reader
from sample_tables import table_rows
from test_sync import jobs_toml


def history(env) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(env.syncd("history", "--json", check=True).stdout)


def test_source_connection_lost_mid_full_load_is_retried(databases, make_env):
    """MySQL -> PostgreSQL full load (raw-text reader): the source connection is killed
    while the table streams; the run retries and resumes from its checkpoint."""
    src, local = databases.mysql(), databases.postgres()
    fill_orders_mysql(src, 100_000)
    env = make_env(local, jobs_toml(src, batch_size=1000))
    with held_checkpoints(local) as hold:
        proc = env.popen("run", "orders")
        try:
            hold.wait_until_blocked()  # batch 1 waits to commit; the reader is mid-table
            kill_source_reader(src)
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
    assert "Lost connection" in err  # the retry says why
    assert table_rows(local, "orders") == table_rows(src, "orders")
