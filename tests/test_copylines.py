"""MySQL -> PostgreSQL full loads read as COPY lines written by the source.

Every row arrives once and exactly, whatever the key's gaps, the rows' widths and the
limit on one grouped value; values the type map must check still reach its checks.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from conftest import SyncdEnv
from sample_tables import execute, table_rows
from test_sync import jobs_toml, run

from syncd import get_state
from syncd.db import upgrade
from syncd.engine import copylines, fastread
from syncd.engine.errors import SyncError
from syncd.engine.load import decode_copy_line
from syncd.engine.readers import fetch_rows

MYSQL_READERS = ["pymysql", "asyncmy"] if fastread.available() else ["pymysql"]
KEYS = [-(2**62), -5, 0, 1, 2, 3, 17, 18, 1000, 10**6, 10**6 + 1, 2**40, 2**62]


def _source(url: str) -> sa.Table:
    wide = "REPEAT('w', 300)"
    execute(url, "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(400), note TEXT)",
            *[f"INSERT INTO t VALUES ({k}, IF(MOD({k}, 2) = 0, {wide}, 'a\\tb\\\\c'), "
              f"IF(MOD({k}, 3) = 0, NULL, 'n\\nline'))" for k in KEYS])
    return sa.Table("t", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("name", sa.String(400)), sa.Column("note", sa.Text))


def _line(table: sa.Table) -> Any:
    from syncd.engine.catalog import SourceColumn
    from syncd.engine.typemap import plan_column

    plans = [plan_column(SourceColumn(c.name, "mysql", kind, kind, length=n), "postgresql")
             for c, kind, n in zip(table.c, ("bigint", "varchar", "text"), (None, 400, None))]
    assert copylines.lines_possible(plans) and copylines.ranges_possible(plans, ["id"])
    return copylines.line_column(list(table.c), plans, "utf8mb4")


@pytest.mark.parametrize("largest,batch_size", [(10**6, 10_000), (1000, 10_000), (10**6, 2)])
def test_ranges_read_every_row_once_across_gaps_and_cut_values(databases, largest, batch_size):
    url = databases.mysql()
    table = _source(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            # The server cuts grouped values at this length (with a warning): ranges that
            # reach it are read again in halves.
            conn.exec_driver_sql(f"SET SESSION group_concat_max_len = {largest}")

            def run_query(query: Any) -> list[Any]:
                return fetch_rows(conn, query, 1)

            batches = list(copylines.read_ranges(
                run_query, table, "id", _line(table), None, None, batch_size, largest))
            resumed = list(copylines.read_ranges(
                run_query, table, "id", _line(table), 17, 2**40, batch_size, largest))
    finally:
        engine.dispose()
    lines = [line for b in batches for line in b.text.split("\n")]
    got = sorted(int(decode_copy_line(line)[0] or 0) for line in lines)
    assert got == KEYS
    assert sum(b.rows for b in batches) == len(KEYS)
    assert all(len(b.text) < largest for b in batches)
    assert [b.key[0] for b in batches] == sorted(b.key[0] for b in batches)
    assert batches[-1].key == (2**62,)
    values = {int(v[0] or 0): v for v in map(decode_copy_line, lines)}
    assert values[2] == ["2", "w" * 300, "n\nline"]
    assert values[1] == ["1", "a\tb\\c", "n\nline"]
    assert values[3] == ["3", "a\tb\\c", None]
    resumed_keys = sorted(int(decode_copy_line(line)[0] or 0)
                          for b in resumed for line in b.text.split("\n"))
    assert resumed_keys == [k for k in KEYS if 17 < k <= 2**40]


def test_a_row_larger_than_one_value_may_be_is_named(databases):
    url = databases.mysql()
    table = _source(url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn, pytest.raises(SyncError, match="max_allowed_packet"):
            list(copylines.read_ranges(lambda q: fetch_rows(conn, q, 1), table, "id",
                                       _line(table), None, None, 100, 200))
    finally:
        engine.dispose()


@pytest.mark.parametrize("reader", MYSQL_READERS)
def test_full_load_by_ranges_equals_source_and_checks_still_run(databases, tmp_path,
                                                                monkeypatch, reader):
    """Sparse keys, NULLs, escapes and a zero date: the zero date becomes NULL with its
    warning (the marked batch goes through the type map's checks), the rest as it was."""
    src, local = databases.mysql(), databases.postgres()
    execute(src, "SET SESSION sql_mode = ''",
            "CREATE TABLE legacy (id BIGINT PRIMARY KEY, name TEXT, born DATE)",
            *[f"INSERT INTO legacy VALUES ({k}, IF(MOD({k}, 2) = 0, NULL, 'x\\\\N\\ty'), "
              f"IF({k} = 1000, '0000-00-00', '2020-02-29'))" for k in KEYS])
    env = SyncdEnv(tmp_path, local, jobs_toml(src, table="legacy", mode="full",
                                              name="legacy", batch_size=3, cursor="born"))
    env.extra_env["SYNCD_MYSQL_READER"] = reader
    state = get_state(env.app())
    upgrade(state.engine)
    ranges: list[int] = []
    read_ranges = copylines.read_ranges

    def counted(*args: Any) -> Any:
        for batch in read_ranges(*args):
            ranges.append(batch.rows)
            yield batch

    monkeypatch.setattr(copylines, "read_ranges", counted)
    try:
        result = run(state, job="legacy")
    finally:
        state.dispose()
    assert result.status == "succeeded", result.error
    assert result.reader == reader
    assert sum(ranges) == len(KEYS) and len(ranges) > 1  # read as key ranges
    rows = {r["id"]: r for r in table_rows(local, "legacy")}
    assert sorted(rows) == KEYS
    assert rows[1000]["born"] is None
    assert str(rows[17]["born"]) == "2020-02-29"
    assert rows[17]["name"] == "x\\N\ty" and rows[18]["name"] is None
    messages = {w["message"]: w["count"] for w in result.warnings}
    assert messages['zero dates in column "born" stored as NULL'] == 1
