"""Source type changes: widening is applied to the local column (evolve), narrowing fails
naming the column and both types, and a renamed or dropped key or cursor column fails."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Databases
from test_fidelity import read_values
from test_sync import jobs_toml, make_state, run

LOCALS = ("postgres", "mysql", "sqlite")

# (id, source type before, source type after, a value only the new type holds)
WIDENING = [
    ("int-to-bigint", "INT", "BIGINT", "1099511627776"),
    ("varchar50-to-varchar200", "VARCHAR(50)", "VARCHAR(200)", "'" + "x" * 150 + "'"),
    ("decimal10_2-to-decimal12_2", "DECIMAL(10,2)", "DECIMAL(12,2)", "1234567890.12"),
    ("float-to-double", "FLOAT", "DOUBLE", "0.1"),
]
NARROWING = [
    ("bigint-to-int", "BIGINT", "INT"),
    ("varchar200-to-varchar50", "VARCHAR(200)", "VARCHAR(50)"),
    ("decimal12_2-to-decimal10_2", "DECIMAL(12,2)", "DECIMAL(10,2)"),
    ("double-to-float", "DOUBLE", "FLOAT"),
]


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def _local_type(url: str, table: str, column: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            from syncd.engine.catalog import describe_columns

            return describe_columns(conn, table, None)[column].spelling.lower()
    finally:
        engine.dispose()


def _same(a: Any, b: Any) -> bool:
    """Equal as exact numbers (any spelling of the digits), or as text."""
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except InvalidOperation:
        return str(a) == str(b)


def _start(databases: Databases, tmp_path: Path, local_kind: str, before: str,
           **job: Any) -> tuple[str, str, Any]:
    src, local = databases.mysql(), databases.make(local_kind)
    _execute(src, f"CREATE TABLE t (id INT PRIMARY KEY, updated_at DATETIME(6), v {before})",
             "INSERT INTO t VALUES (1, '2026-01-01 00:00:00', 1)")
    state = make_state(tmp_path, local, jobs_toml(src, name="t", table="t", **job))
    first = run(state, "t")
    assert first.status == "succeeded", first.error
    return src, local, state


@pytest.mark.parametrize("local_kind", LOCALS)
@pytest.mark.parametrize("case_id,before,after,value", WIDENING, ids=[w[0] for w in WIDENING])
def test_widened_source_type_is_applied_to_the_local_column(
        databases: Databases, tmp_path: Path, local_kind: str, case_id: str, before: str,
        after: str, value: str) -> None:
    src, local, state = _start(databases, tmp_path, local_kind, before)
    type_before = _local_type(local, "t", "v")
    _execute(src, f"ALTER TABLE t MODIFY v {after}",
             f"INSERT INTO t VALUES (2, '2026-01-02 00:00:00', {value})")
    try:
        result = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "succeeded", result.error
    local_values = read_values(local, "t", ["v"])["v"]
    source_values = read_values(src, "t", ["v"])["v"]
    assert set(local_values) == {1, 2}
    for key in (1, 2):
        assert _same(local_values[key], source_values[key]), (local_values, source_values)
    if local_kind != "sqlite":  # SQLite does not type its columns: nothing to widen
        assert _local_type(local, "t", "v") != type_before


@pytest.mark.parametrize("local_kind", ("postgres", "mysql"))
@pytest.mark.parametrize("case_id,before,after", NARROWING, ids=[n[0] for n in NARROWING])
def test_narrowed_source_type_fails_naming_column_and_both_types(
        databases: Databases, tmp_path: Path, local_kind: str, case_id: str, before: str,
        after: str) -> None:
    src, local, state = _start(databases, tmp_path, local_kind, before)
    type_before = _local_type(local, "t", "v")
    _execute(src, f"ALTER TABLE t MODIFY v {after}",
             "INSERT INTO t VALUES (2, '2026-01-02 00:00:00', 2)")
    try:
        result = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "failed"
    assert (f'column "v" of source table t changed type from {before.lower()} to '
            f"{after.lower()}") in result.error.replace("int(11)", "int").replace(
                "bigint(20)", "bigint"), result.error
    assert "can lose data; nothing was changed" in result.error
    assert _local_type(local, "t", "v") == type_before
    assert 2 not in read_values(local, "t", ["v"])["v"]


def test_type_change_under_on_schema_change_fail_fails(databases: Databases,
                                                      tmp_path: Path) -> None:
    src, local, state = _start(databases, tmp_path, "postgres", "INT", on_schema_change="fail")
    _execute(src, "ALTER TABLE t MODIFY v BIGINT")
    try:
        result = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "failed"
    assert 'changed type from int(11) to bigint(20), and on_schema_change = "fail"' \
        in result.error, result.error
    assert _local_type(local, "t", "v") == "integer"


def test_renamed_primary_key_column_fails_with_a_clear_message(databases: Databases,
                                                               tmp_path: Path) -> None:
    src, local, state = _start(databases, tmp_path, "postgres", "INT")
    _execute(src, "ALTER TABLE t RENAME COLUMN id TO uid")
    try:
        result = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "failed"
    assert "the primary key of t is now (uid) but local table t is keyed on (id)" in result.error
    assert "renamed or dropped at the source" in result.error


def test_dropped_cursor_column_fails_naming_the_field(databases: Databases,
                                                       tmp_path: Path) -> None:
    src, local, state = _start(databases, tmp_path, "postgres", "INT")
    _execute(src, "ALTER TABLE t DROP COLUMN updated_at")
    try:
        result = run(state, "t")
    finally:
        state.dispose()
    assert result.status == "failed"
    assert 'field "cursor": column "updated_at" not in source table t (columns: id, v)' \
        in result.error, result.error
