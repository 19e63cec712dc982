"""Full and incremental sync for every source x local pair, through the runner.

Each test asserts what an operator checks: local rows equal source rows, and
the history row counts what happened.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import SyncdEnv
from sample_tables import BASE_TIME, create_orders, execute, order_row, orders_table, table_rows

from syncd import get_state
from syncd.db import upgrade
from syncd.runner import RunRequest, run_job

PAIRS = [
    ("mysql", "postgres"), ("postgres", "mysql"), ("mysql", "sqlite"), ("postgres", "sqlite"),
    ("sqlite", "postgres"), ("sqlite", "mysql"), ("postgres", "postgres"), ("mysql", "mysql"),
]


def jobs_toml(source_url: str, **job: object) -> str:
    settings = {"name": "orders", "source": "src", "table": "orders", "cursor": "updated_at",
                "batch_size": 64, "lookback": "0s"}
    settings.update(job)
    lines = "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in settings.items())
    return f'[sources.src]\nurl = "{source_url}"\n\n[[jobs]]\n{lines}\n'


def make_state(tmp_path, local_url: str, jobs: str):  # type: ignore[no-untyped-def]
    env = SyncdEnv(tmp_path, local_url, jobs)
    state = get_state(env.app())
    upgrade(state.engine)
    return state


def run(state, job: str = "orders", **kwargs: object):  # type: ignore[no-untyped-def]
    result = run_job(state, RunRequest(job=job, trigger="cli", **kwargs))
    assert result is not None
    return result


@pytest.mark.parametrize("source_kind,local_kind", PAIRS)
def test_incremental_sync_keeps_local_equal_to_source(databases, tmp_path, source_kind,
                                                      local_kind):
    src, local = databases.make(source_kind), databases.make(local_kind)
    table = create_orders(src, 500)
    state = make_state(tmp_path, local, jobs_toml(src))

    first = run(state)
    assert first.status == "succeeded", first.error
    assert (first.rows_read, first.rows_inserted, first.rows_updated) == (500, 500, 0)
    assert table_rows(local, "orders") == table_rows(src, "orders")

    later = BASE_TIME + timedelta(days=1)
    execute(src, table.update().where(table.c.id <= 10).values(qty=999, updated_at=later))
    execute(src, table.insert(), params=[order_row(i, later) for i in range(501, 506)])
    second = run(state)
    assert second.status == "succeeded", second.error
    # The first incremental run re-reads the row at the full load's highest cursor value
    # (inclusive start: rows committed later with that same value are not missed).
    assert (second.rows_read, second.rows_inserted, second.rows_updated) == (16, 5, 10)
    assert table_rows(local, "orders") == table_rows(src, "orders")

    third = run(state)  # nothing changed: nothing read, nothing rewritten
    assert (third.status, third.rows_read, third.rows_inserted, third.rows_updated) == (
        "succeeded", 0, 0, 0)


@pytest.mark.parametrize("source_kind,local_kind", PAIRS)
def test_full_sync_replaces_local_table(databases, tmp_path, source_kind, local_kind):
    src, local = databases.make(source_kind), databases.make(local_kind)
    table = create_orders(src, 300)
    state = make_state(tmp_path, local, jobs_toml(src, mode="full"))
    assert run(state).status == "succeeded"
    assert table_rows(local, "orders") == table_rows(src, "orders")

    execute(src, table.delete().where(table.c.id <= 3))
    execute(src, table.update().where(table.c.id.between(10, 14)).values(note="changed"))
    execute(src, table.insert(), params=[order_row(i) for i in range(301, 305)])
    second = run(state)
    assert second.status == "succeeded", second.error
    assert (second.rows_inserted, second.rows_updated, second.rows_deleted) == (4, 5, 3)
    assert table_rows(local, "orders") == table_rows(src, "orders")


def test_rows_sharing_one_cursor_value_cross_batches_without_loss(databases, tmp_path):
    src, local = databases.mysql(), databases.postgres()
    table = create_orders(src, 1)
    state = make_state(tmp_path, local, jobs_toml(src, batch_size=3))
    assert run(state).status == "succeeded"
    same = BASE_TIME + timedelta(hours=5)
    execute(src, table.insert(), params=[order_row(i, same) for i in range(100, 125)])
    result = run(state)
    assert result.status == "succeeded", result.error
    # 25 new rows, plus the re-read of the row at the full load's highest cursor value.
    assert (result.rows_read, result.rows_inserted) == (26, 25)
    assert table_rows(local, "orders") == table_rows(src, "orders")
    again = run(state)
    assert (again.rows_read, again.rows_inserted) == (0, 0)


def test_row_committed_late_with_older_cursor_arrives_within_lookback(databases, tmp_path):
    src, local = databases.postgres(), databases.mysql()
    table = create_orders(src, 50)
    state = make_state(tmp_path, local, jobs_toml(src, lookback="10m"))
    assert run(state).status == "succeeded"
    newest = BASE_TIME + timedelta(hours=1)
    execute(src, table.insert(), params=[order_row(60, newest)])
    assert run(state).rows_inserted == 1
    # A transaction that began earlier commits now: its cursor is older than the checkpoint.
    execute(src, table.insert(), params=[order_row(61, newest - timedelta(minutes=3))])
    late = run(state)
    assert late.status == "succeeded"
    assert late.rows_inserted == 1 and late.rows_updated == 0
    assert table_rows(local, "orders") == table_rows(src, "orders")


def test_null_cursor_rows_are_loaded_by_full_load_and_reported(databases, tmp_path):
    src, local = databases.sqlite(), databases.postgres()
    table = create_orders(src, 20)
    execute(src, table.update().where(table.c.id <= 4).values(updated_at=None))
    state = make_state(tmp_path, local, jobs_toml(src))
    assert run(state).rows_inserted == 20
    second = run(state)
    assert second.status == "succeeded"
    assert {"message": 'rows with a NULL cursor "updated_at" are not picked up by incremental '
            "runs (a full refresh loads them)", "count": 4} in second.warnings


def test_reconcile_deletes_rows_gone_from_source(databases, tmp_path):
    src, local = databases.mysql(), databases.postgres()
    table = create_orders(src, 200)
    state = make_state(tmp_path, local, jobs_toml(src, deletes="reconcile", batch_size=50))
    run(state)
    execute(src, table.delete().where(table.c.id.in_([5, 50, 51, 199])))
    result = run(state)
    assert result.status == "succeeded", result.error
    assert result.rows_deleted == 4
    assert table_rows(local, "orders") == table_rows(src, "orders")


def test_reconcile_refuses_to_delete_more_than_max_delete_ratio(databases, tmp_path):
    src, local = databases.postgres(), databases.sqlite()
    table = create_orders(src, 100)
    state = make_state(tmp_path, local, jobs_toml(src, deletes="reconcile",
                                                  max_delete_ratio=0.2))
    run(state)
    execute(src, table.delete().where(table.c.id <= 30))
    result = run(state)
    assert result.status == "failed"
    assert "would delete 30 of 100" in result.error
    assert len(table_rows(local, "orders")) == 100


def test_full_refresh_reloads_and_resets_checkpoint(databases, tmp_path):
    src, local = databases.postgres(), databases.postgres()
    create_orders(src, 120)
    state = make_state(tmp_path, local, jobs_toml(src))
    run(state)
    execute(local, "DELETE FROM orders WHERE id BETWEEN 50 AND 69")  # local damage
    assert run(state).rows_inserted == 0  # an incremental run does not see it
    fixed = run(state, full_refresh=True)
    assert fixed.status == "succeeded" and fixed.full_refresh
    assert fixed.rows_inserted == 20
    assert table_rows(local, "orders") == table_rows(src, "orders")


@pytest.mark.parametrize("policy", ["evolve", "fail"])
def test_new_source_column_is_added_or_fails(databases, tmp_path, policy):
    src, local = databases.mysql(), databases.postgres()
    create_orders(src, 10)
    state = make_state(tmp_path, local, jobs_toml(src, on_schema_change=policy))
    run(state)
    execute(src, "ALTER TABLE orders ADD COLUMN region VARCHAR(20)",
            "UPDATE orders SET region = 'north', updated_at = '2027-01-01 00:00:00' WHERE id = 1")
    result = run(state)
    if policy == "evolve":
        assert result.status == "succeeded", result.error
        assert table_rows(local, "orders") == table_rows(src, "orders")
    else:
        assert result.status == "failed"
        assert "region" in result.error and "on_schema_change" in result.error
        assert "region" not in table_rows(local, "orders")[0]


def test_mariadb_zero_dates_become_null_with_warning(databases, tmp_path):
    src, local = databases.mysql(), databases.postgres()
    execute(src, "SET SESSION sql_mode = ''",
            "CREATE TABLE legacy (id INT PRIMARY KEY, born DATE, seen DATETIME)",
            "INSERT INTO legacy VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), "
            "(2, '2020-02-29', '2020-02-29 10:11:12')")
    state = make_state(tmp_path, local, jobs_toml(src, table="legacy", mode="full", name="legacy",
                                                  cursor="seen"))
    result = run(state, job="legacy")
    assert result.status == "succeeded", result.error
    rows = table_rows(local, "legacy")
    assert rows[0]["born"] is None and rows[0]["seen"] is None
    assert str(rows[1]["born"]) == "2020-02-29"
    messages = {w["message"]: w["count"] for w in result.warnings}
    assert messages['zero dates in column "born" stored as NULL'] == 1


def test_source_refusing_connections_is_retried_then_fails(databases, tmp_path):
    local = databases.sqlite()
    dead = "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"
    env = SyncdEnv(tmp_path, local, jobs_toml(dead))
    env.extra_env.update(SYNCD_RETRY_ATTEMPTS="3", SYNCD_RETRY_BACKOFF="0.05")
    state = get_state(env.app())
    upgrade(state.engine)
    result = run(state)
    assert result.status == "failed"
    assert result.attempts == 3
    assert "gave up after 3 attempts" in result.error
    assert "127.0.0.1" in result.error or "refused" in result.error.lower()
    assert result.traceback


def test_mariadb_uses_the_cursor_index_for_the_keyset_query(databases):
    from syncd.engine.queries import incremental_batch

    src = databases.mysql()
    create_orders(src, 2000)
    engine = sa.create_engine(src)
    table = orders_table()
    query = incremental_batch(table, [c.name for c in table.columns], "updated_at", ["id"],
                              (BASE_TIME + timedelta(seconds=300), 900), None, 100)
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN {compiled}").mappings().all()
    engine.dispose()
    assert plan[0]["key"] == "ix_orders_updated_at_id", plan
    assert "filesort" not in (plan[0]["Extra"] or "")
