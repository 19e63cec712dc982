"""Jobs the source answers with an error, and keys that do not identify a row: one clear
line naming the file, the job and the field, and the exit code of the README (2 bad
configuration, 3 unreachable), never a traceback."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from sample_tables import create_orders, execute, table_rows
from test_sync import jobs_toml, make_state, run


def history(env) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(env.syncd("history", "--json", check=True).stdout)


def error_line(proc) -> str:  # type: ignore[no-untyped-def]
    """The one error line of a failed command (and no traceback)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


SOURCE_ANSWERS = {  # case: (source kind, job fields, text of the message)
    "table name over 64 characters": ("mysql", {"table": "t" * 70, "target": "t"},
                                      "Incorrect table name"),
    "trailing space": ("mysql", {"table": "orders ", "target": "t"}, "Incorrect table name"),
    "unknown schema (MySQL)": ("mysql", {"table": "nope.items"}, "Unknown database 'nope'"),
    "unknown schema (PostgreSQL)": ("postgres", {"table": "nope.items"},
                                    "table nope.items not found"),
}


@pytest.mark.parametrize("case", sorted(SOURCE_ANSWERS))
def test_table_the_source_rejects_is_bad_configuration(databases, make_env, case):
    kind, fields, text = SOURCE_ANSWERS[case]
    source = databases.make(kind)
    create_orders(source, 5)
    env = make_env(databases.sqlite(), jobs_toml(source, **fields))
    for command in (("check",), ("run", "orders")):
        proc = env.syncd(*command)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        line = error_line(proc)
        assert line.startswith(f'error: {env.jobs_file}: job "orders": field "table": '), line
        assert text in line
    assert history(env) == []


def test_sqlite_source_that_cannot_be_opened_is_unreachable(databases, make_env):
    env = make_env(databases.sqlite(), jobs_toml("sqlite:////nope/x.db"))
    env.extra_env["SYNCD_RETRY_ATTEMPTS"] = "2"
    check = env.syncd("check")
    assert check.returncode == 3, check.stderr
    line = error_line(check)
    assert line.startswith(f'error: {env.jobs_file}: source "src" (sqlite:////nope/x.db): '
                           "unreachable: ") and "unable to open database file" in line
    run_ = env.syncd("run", "orders")  # retried, then failed with the summary line
    assert run_.returncode == 1 and "Traceback" not in run_.stderr
    assert "failed" in run_.stdout.splitlines()[-1]
    assert "gave up after 2 attempts" in run_.stdout.splitlines()[-1]


@pytest.mark.parametrize("field,value,text", [
    ("schedule", "99999999999h", '"99999999999h" is too long (at most 3650d)'),
    ("timeout", "9" * 5000 + "s", "is too long (at most 3650d)"),
    ("lookback", "100000d", '"100000d" is too long'),
])
def test_huge_durations_are_bad_configuration(databases, make_env, field, value, text):
    source = databases.sqlite()
    create_orders(source, 5)
    env = make_env(databases.sqlite(), jobs_toml(source, **{field: value}))
    for command in (("check",), ("run", "orders")):
        proc = env.syncd(*command)
        assert proc.returncode == 2, proc.stderr
        line = error_line(proc)
        assert line.startswith(f'error: {env.jobs_file}: job "orders": field "{field}": ')
        assert text in line and len(line) < 600


def test_error_lines_cut_long_values_to_200_characters(databases, make_env):
    source = databases.sqlite()
    create_orders(source, 5)
    env = make_env(databases.sqlite(), jobs_toml(source, deletes="x" * 100_000))
    proc = env.syncd("check")
    assert proc.returncode == 2
    line = error_line(proc)
    assert 'field "deletes": must be "ignore" or "reconcile", not "' + "x" * 200 + "..." in line
    assert "(100000 characters)" in line and len(line) < 500


def test_unknown_database_kind_and_missing_driver(databases, make_env):
    # mysql:// itself is read with PyMySQL, the driver syncd ships (tests/test_database_urls.py)
    for url, text in (("foo://h/db", 'unknown database kind "foo"'),
                      ("mysql+mysqldb://h/db", 'not with "mysqldb" (write mysql://')):
        env = make_env(databases.sqlite(), jobs_toml(url))
        proc = env.syncd("check")
        assert proc.returncode == 2, proc.stderr
        line = error_line(proc)
        assert line.startswith(f'error: {env.jobs_file}: source "src": field "url": ') and \
            text in line


def create_items(url: str, qty: list[int]) -> sa.Table:
    """Table items(id PRIMARY KEY, qty, code, updated_at) with one row per qty value."""
    table = sa.Table("items", sa.MetaData(),
                     sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                     sa.Column("qty", sa.Integer), sa.Column("code", sa.String(20)),
                     sa.Column("updated_at", sa.DateTime))
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [
            {"id": i, "qty": q, "code": f"c{i}", "updated_at": datetime(2026, 1, 1, 0, 0, i)}
            for i, q in enumerate(qty, start=1)])
    engine.dispose()
    return table


@pytest.mark.parametrize("kind", ["mysql", "postgres", "sqlite"])
def test_primary_key_that_is_not_unique_at_the_source_is_refused(databases, make_env, kind):
    source = databases.make(kind)
    create_items(source, [5, 7, 5, 9])
    env = make_env(databases.sqlite(), jobs_toml(source, table="items", primary_key=["qty"]))
    for command in (("check",), ("run", "orders")):
        proc = env.syncd(*command)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        line = error_line(proc)
        assert line.startswith(f'error: {env.jobs_file}: job "orders": field "primary_key": '
                               '(qty) does not identify a row of source table "items": '
                               "2 rows have qty = 5"), line
    assert history(env) == []


def test_unique_key_without_an_index_is_accepted(databases, make_env):
    source = databases.mysql()
    create_items(source, [5, 7, 9])
    env = make_env(databases.postgres(), jobs_toml(source, table="items",
                                                   primary_key=["code"]))
    assert env.syncd("check").returncode == 0
    assert env.syncd("run", "orders").returncode == 0
    assert table_rows(env.local_url, "items") == table_rows(source, "items")


def test_key_that_stops_being_unique_fails_the_run_instead_of_collapsing_rows(databases,
                                                                              tmp_path):
    source, local = databases.mysql(), databases.postgres()
    table = create_items(source, [5, 7, 9])
    state = make_state(tmp_path, local, jobs_toml(source, table="items", primary_key=["qty"],
                                                  batch_size=2))
    assert run(state).status == "succeeded"
    before = table_rows(local, "items", key="qty")
    execute(source, table.insert(), params=[
        {"id": 4, "qty": 7, "code": "c4", "updated_at": datetime(2026, 2, 1)}])

    later = run(state)  # a scheduled run: recorded failed, the local table left alone

    assert later.status == "failed"
    assert later.error.startswith('field "primary_key": (qty) does not identify a row of '
                                  'source table "items": 2 rows have qty = 7')
    assert table_rows(local, "items", key="qty") == before


@pytest.mark.parametrize("local_kind", ["postgres", "mysql", "sqlite"])
def test_full_load_of_a_key_that_is_not_unique_fails_and_leaves_no_local_table(
        databases, tmp_path, local_kind):
    # A scheduled run (no check before it): the staging table's own key refuses the
    # second row, and the run names the shared key as `syncd check` would.
    source, local = databases.mysql(), databases.make(local_kind)
    create_items(source, [5, 7, 9, 7])
    state = make_state(tmp_path, local, jobs_toml(source, table="items", primary_key=["qty"],
                                                  batch_size=2))

    failed = run(state)

    assert failed.status == "failed"
    assert failed.error.startswith('field "primary_key": (qty) does not identify a row of '
                                   'source table "items": 2 rows have qty = 7'), failed.error
    engine = sa.create_engine(local, poolclass=sa.pool.NullPool)
    try:
        assert not sa.inspect(engine).has_table("items")
    finally:
        engine.dispose()
