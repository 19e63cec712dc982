"""Reconcile (deletes = "reconcile") on every source x local pair, through the runner.

Segments are made small here so that every path runs on a few thousand rows: key ranges
measured or read as key lists, hash buckets that differ, their splits, leaves whose keys
are matched.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sample_tables import BASE_TIME, create_orders, execute, order_row
from test_sync import jobs_toml, make_state, run

from syncd.engine import checksum as ck
from syncd.engine import reconcile
from syncd.engine.segments import KeyHashes

SOURCES = ["mysql", "postgres"]
LOCALS = ["postgres", "mysql", "sqlite"]
ROWS = 3000
SCATTERED = "MOD(id, 97) = 0 OR id BETWEEN 1200 AND 1299 OR id = 1 OR id = 3000"


@pytest.fixture(autouse=True)
def small_segments(monkeypatch: Any) -> None:
    monkeypatch.setattr("syncd.engine.segments.TOP_ROWS", 500)
    monkeypatch.setattr(KeyHashes, "top_buckets", 16)
    monkeypatch.setattr(reconcile, "LEAF_ROWS", 8)
    monkeypatch.setattr(reconcile, "TOP_CHUNK", 2)  # the next chunk read without measuring


def keys_of(url: str, table: str, columns: str) -> set[tuple[str, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT {columns} FROM {table}")
            return {tuple(str(v) for v in row) for row in rows}
    finally:
        engine.dispose()


def count(url: str, sql: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("source_kind", SOURCES)
@pytest.mark.parametrize("local_kind", LOCALS)
def test_scattered_and_contiguous_deletes_with_an_integer_key(
        databases: Any, tmp_path: Any, source_kind: str, local_kind: str) -> None:
    """Deletes spread over the table and a block: exactly those go, rows the source has and
    the local table lacks (added late, with an old cursor) are not deletions."""
    src, local = databases.make(source_kind), databases.make(local_kind)
    table = create_orders(src, ROWS)
    state = make_state(tmp_path, local, jobs_toml(src, deletes="reconcile"))
    try:
        assert run(state).status == "succeeded"
        gone = count(src, f"SELECT COUNT(*) FROM orders WHERE {SCATTERED}")
        late = BASE_TIME - timedelta(days=1)
        execute(src, f"DELETE FROM orders WHERE {SCATTERED}",
                table.insert().values([order_row(i, late) for i in (4000, 4001, 1250)]))
        result = run(state)
        again = run(state)
    finally:
        state.dispose()
    assert result.status == "succeeded", result.error
    assert result.rows_deleted == gone - 1 > 100  # 1250 is back at the source
    assert (again.status, again.rows_deleted) == ("succeeded", 0)
    source_keys = keys_of(src, "orders", "id")
    assert keys_of(local, "orders", "id") == source_keys - {("4000",), ("4001",)}


HASHED = [
    ("mysql", "CONCAT('Key ', id) AS code", "code", "postgres"),
    ("mysql", "CONCAT('k', id) AS code", "code", "mysql"),
    ("mysql", "MOD(id, 7) AS a, id * 2 AS b", "a, b", "sqlite"),
    ("postgres", "mod(id, 7)::int AS a, ('k' || id)::varchar(20) AS b", "a, b", "mysql"),
    ("postgres", "(id / 100.0)::numeric(12, 2) AS price", "price", "sqlite"),
    ("postgres", "'2020-01-01'::date + id::int AS day", "day", "postgres"),
]


@pytest.mark.parametrize("source_kind,key,key_columns,local_kind", HASHED,
                         ids=[f"{s}-{c.replace(', ', '+')}-to-{loc}"
                              for s, _, c, loc in HASHED])
def test_text_composite_decimal_and_date_keys(databases: Any, tmp_path: Any, source_kind: str,
                                              key: str, key_columns: str,
                                              local_kind: str) -> None:
    """Keys compared by key-hash segments: exactly the rows gone from the source go, and a
    row the local table lacks is no deletion."""
    src, local = databases.make(source_kind), databases.make(local_kind)
    create_orders(src, ROWS)
    execute(src, f"CREATE TABLE t AS SELECT {key}, id, note, updated_at FROM orders",
            f"ALTER TABLE t ADD PRIMARY KEY ({key_columns})")
    state = make_state(tmp_path, local, jobs_toml(src, name="t", table="t",
                                                  deletes="reconcile"))
    try:
        first = run(state, "t")
        assert first.status == "succeeded", first.error
        execute(local, "DELETE FROM t WHERE id IN (5, 6, 1201)")
        gone = count(src, f"SELECT COUNT(*) FROM t WHERE ({SCATTERED}) AND id <> 1201")
        execute(src, f"DELETE FROM t WHERE {SCATTERED}")
        result = run(state, "t")
        again = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "succeeded", result.error
    assert result.rows_deleted == gone > 100
    assert (again.status, again.rows_deleted) == ("succeeded", 0)
    expected = count(src, "SELECT COUNT(*) FROM t WHERE id NOT IN (5, 6)")
    assert count(local, "SELECT COUNT(*) FROM t") == expected
    assert count(local, f"SELECT COUNT(*) FROM t WHERE {SCATTERED}") == 0


def test_a_key_hashed_differently_on_each_side_is_looked_up_before_it_is_deleted(
        databases: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """Were the two databases to place a key in different hash segments, the key would look
    gone in one of them: it is asked for at the source first, and kept."""
    src, local = databases.mysql(), databases.postgres()
    create_orders(src, 500)
    execute(src, "CREATE TABLE t AS SELECT CONCAT('k', id) AS code, id, updated_at FROM orders",
            "ALTER TABLE t ADD PRIMARY KEY (code)")
    state = make_state(tmp_path, local, jobs_toml(src, name="t", table="t",
                                                  deletes="reconcile"))
    hashed = ck.key_hash_sql

    def shifted(dialect: str, columns: Any) -> str:
        sql = hashed(dialect, columns)
        return f"MOD(({sql}) + 2147483648, 4294967296)" if dialect == "postgresql" else sql

    try:
        first = run(state, "t")
        assert first.status == "succeeded", first.error
        execute(src, "DELETE FROM t WHERE id IN (7, 300)")
        monkeypatch.setattr(ck, "key_hash_sql", shifted)
        result = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "succeeded", result.error
    assert result.rows_deleted == 2
    assert keys_of(local, "t", "code") == keys_of(src, "t", "code")


@pytest.mark.parametrize("key", ["id", "CONCAT('k', id) AS code"])
def test_too_many_deletes_fail_the_run_and_delete_nothing(databases: Any, tmp_path: Any,
                                                          key: str) -> None:
    src, local = databases.mysql(), databases.postgres()
    create_orders(src, 1000)
    execute(src, f"CREATE TABLE t AS SELECT {key}, id AS n, updated_at FROM orders",
            f"ALTER TABLE t ADD PRIMARY KEY ({key.split()[-1]})")
    state = make_state(tmp_path, local, jobs_toml(src, name="t", table="t",
                                                  deletes="reconcile", max_delete_ratio=0.25))
    try:
        first = run(state, "t")
        assert first.status == "succeeded", first.error
        execute(src, "DELETE FROM t WHERE MOD(n, 3) = 0")
        result = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "failed"
    assert "would delete 333 of 1000 local rows of t (33%)" in result.error
    assert result.rows_deleted == 0
    assert count(local, "SELECT COUNT(*) FROM t") == 1000


@pytest.mark.parametrize("local_kind", ["postgres", "sqlite"])
def test_more_deletes_than_kept_are_deleted_by_a_second_walk(
        databases: Any, tmp_path: Any, monkeypatch: Any, local_kind: str) -> None:
    src, local = databases.postgres(), databases.make(local_kind)
    create_orders(src, ROWS)
    state = make_state(tmp_path, local, jobs_toml(src, deletes="reconcile"))
    monkeypatch.setattr(reconcile, "KEEP_KEYS", 10)
    try:
        assert run(state).status == "succeeded"
        gone = count(src, f"SELECT COUNT(*) FROM orders WHERE {SCATTERED}")
        execute(src, f"DELETE FROM orders WHERE {SCATTERED}")
        result = run(state)
    finally:
        state.dispose()
    assert (result.status, result.rows_deleted) == ("succeeded", gone)
    assert keys_of(local, "orders", "id") == keys_of(src, "orders", "id")
