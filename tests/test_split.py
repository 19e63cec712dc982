"""Split full loads: a table bigger than the job's split_rows is loaded in key ranges by
several processes (``syncd run --jobs N``, or Celery workers), one run in the history.

The tables are small: the test jobs set a small split_rows. Catalog estimates are made
exact with ANALYZE first (the split is planned from them, never from COUNT(*)).
"""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
import sqlalchemy as sa

from blocking import SourceGate
from celery_helpers import Services, running_services, runs, wait_for
from conftest import RABBITMQ_URL, engine_for, require_service
from sample_tables import create_orders, execute, table_rows

ROWS = 2_400
SPLIT_ROWS = 800  # ranges of about 400 rows: 6 ranges


def analyze(url: str, table: str) -> None:
    """Make the catalog's row estimate exact (what autovacuum / InnoDB do by themselves)."""
    engine = engine_for(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"ANALYZE {'TABLE ' if engine.dialect.name != 'postgresql' else ''}"
                                 f"{table}")
    finally:
        engine.dispose()


def jobs_toml(source_url: str, **fields: Any) -> str:
    values: dict[str, Any] = {"name": "orders", "source": "src", "table": "orders",
                              "mode": "full", "split_rows": SPLIT_ROWS, "batch_size": 100,
                              **fields}
    lines = [f'[sources.src]\nurl = "{source_url}"\n', "[[jobs]]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def split_ranges(local_url: str) -> list[dict[str, Any]]:
    engine = engine_for(local_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.exec_driver_sql(
                "SELECT * FROM syncd_split_ranges ORDER BY idx").mappings()]
    finally:
        engine.dispose()


@pytest.mark.parametrize("source_kind,local_kind", [
    ("postgres", "postgres"), ("mysql", "postgres"), ("postgres", "mysql"), ("mysql", "mysql"),
])
def test_split_load_in_local_processes_equals_the_source(databases, make_env, source_kind,
                                                          local_kind):
    source = databases.make(source_kind)
    create_orders(source, ROWS)
    analyze(source, "orders")
    env = make_env(databases.make(local_kind), jobs_toml(source))

    proc = env.syncd("run", "orders", "--jobs", "3", check=True)

    assert "succeeded" in proc.stdout
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    history = runs(env.local_url, "orders")
    assert len(history) == 1, history
    assert history[0]["status"] == "succeeded"
    assert history[0]["rows_read"] == ROWS
    assert history[0]["rows_inserted"] == ROWS
    ranges = split_ranges(env.local_url)
    assert len(ranges) == 6, ranges  # 2,400 rows in ranges of about 400
    assert {r["status"] for r in ranges} == {"done"}
    assert {r["run_id"] for r in ranges} == {history[0]["id"]}
    assert sum(r["rows_read"] for r in ranges) == ROWS


def test_composite_key_is_cut_at_sampled_boundaries(databases, make_env):
    source = databases.postgres()
    execute(source, "CREATE TABLE lines (order_id int, line text, qty int, "
                    "PRIMARY KEY (order_id, line))",
            "INSERT INTO lines SELECT i / 3, 'l' || mod(i, 3), i FROM generate_series(1, 1800) i",
            "ANALYZE lines")
    env = make_env(databases.postgres(),
                   jobs_toml(source, table="lines", split_rows=600))

    env.syncd("run", "orders", "--jobs", "2", check=True)

    assert table_rows(env.local_url, "lines", "qty") == table_rows(source, "lines", "qty")
    (run,) = runs(env.local_url, "orders")
    assert run["rows_read"] == 1800 and run["status"] == "succeeded"
    assert len(split_ranges(env.local_url)) == 3


def test_small_table_and_incremental_runs_stay_single_reader(databases, make_env):
    source = databases.postgres()
    create_orders(source, 500)
    analyze(source, "orders")
    env = make_env(databases.postgres(),
                   jobs_toml(source, mode="incremental", cursor="updated_at"))

    env.syncd("run", "orders", "--jobs", "4", check=True)  # 500 rows < split_rows: one reader
    assert split_ranges(env.local_url) == []
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
