"""Batches end at batch_size rows or batch_bytes, whichever comes first; COPY text encoding."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import SyncdEnv
from sample_tables import BASE_TIME, create_orders, execute, table_rows
from test_sync import jobs_toml, make_state, run

from syncd import get_state
from syncd.db import upgrade
from syncd.engine import fastread, values
from syncd.engine.convert import RowConverter
from syncd.engine.errors import ValueUnrepresentable
from syncd.engine.full import _encoded
from syncd.engine.keys import is_duplicate_key
from syncd.engine.load import ColumnBatch, Target, encode_copy, writer_for
from syncd.engine.readers import Batcher, row_bytes
from syncd.engine.spec import Progress
from syncd.engine.typemap import ColumnPlan


def _fetcher(rows: list[tuple[object, ...]]):  # type: ignore[no-untyped-def]
    position = 0

    def fetch(size: int) -> list[tuple[object, ...]]:
        nonlocal position
        chunk = rows[position:position + size]
        position += len(chunk)
        return chunk

    return fetch


def test_batch_ends_at_batch_bytes_before_batch_size():
    rows = [(str(i), "x" * 1000) for i in range(100)]
    cut = Batcher(batch_size=50, max_bytes=10_000)
    batches = list(cut(_fetcher(rows)))
    assert sum(len(b) for b in batches) == 100
    assert all(row_bytes(b) <= 12_000 for b in batches[1:-1])  # after the first fetch
    assert max(len(b) for b in batches) <= 16
    assert [r for b in batches for r in b] == rows


def test_narrow_rows_end_at_batch_size():
    rows = [(str(i), "x") for i in range(100)]
    batches = list(Batcher(batch_size=30, max_bytes=32 * 1024 * 1024)(_fetcher(rows)))
    assert [len(b) for b in batches] == [30, 30, 30, 10]


def test_copy_text_keeps_null_empty_and_escapes_apart():
    rows = [("1", "", None, "\\N", "tab\there", "line\nbreak\r", "back\\slash")]
    data = encode_copy(rows)
    assert data.format == "text"
    assert data.decoded() == [list(rows[0])]
    assert encode_copy([(1, None)]).format == "csv"  # not all text: the csv module writes it


@pytest.mark.parametrize("odd", ["\\N", "a\\b", "cr\r", "tab\t", "nl\n", "None", ""])
def test_copy_text_of_many_plain_rows_and_one_odd_value(odd):
    rows = [(str(i), f"name {i}", None if i % 3 else "x") for i in range(1000)]
    rows[500] = ("500", odd, None)
    data = encode_copy(rows)
    assert data.format == "text"
    assert data.decoded() == [list(row) for row in rows]
    assert encode_copy(rows[:500]).decoded() == [list(row) for row in rows[:500]]


def _plans(*converters):  # type: ignore[no-untyped-def]
    return [ColumnPlan(name=f"c{i}", source=None, family="string", ddl="text",  # type: ignore[arg-type]
                       read="raw", convert=convert, key=values.same)
            for i, convert in enumerate(converters)]


def test_checks_of_whole_columns_pass_good_values_and_find_every_bad_one():
    plans = _plans(None, values.no_nul, values.no_nul, values.mysql_date, values.mysql_date)
    good = [(str(i), f"text {i}", None, "2026-01-31", "2026-02-01 10:00:00") for i in range(100)]
    progress = Progress()
    assert RowConverter("j", plans, ["c0"], progress)(good) == good
    bad = good + [("100", "a", "b\x00", "2026-01-01", "0000-00-00 00:00:00"),
                  ("101", None, "c", "2026-00-05", None)]
    stored = RowConverter("j", plans, ["c0"], progress, on_unrepresentable="null")(bad)
    assert [list(row) for row in stored[:100]] == [list(row) for row in good]
    assert [list(row) for row in stored[100:]] == [["100", "a", None, "2026-01-01", None],
                                                   ["101", None, "c", None, None]]
    assert len(progress.warnings) == 3
    with pytest.raises(ValueUnrepresentable, match='column "c2", row with c0=100'):
        RowConverter("j", plans, ["c0"], Progress())(bad)


@pytest.mark.parametrize("source_kind,local_kind", [("mysql", "postgres"), ("mysql", "mysql"),
                                                    ("postgres", "postgres"),
                                                    ("postgres", "sqlite")])
def test_wide_rows_cut_by_batch_bytes_arrive_whole(databases, tmp_path, source_kind,
                                                   local_kind):
    src, local = databases.make(source_kind), databases.make(local_kind)
    table = create_orders(src, 40)
    execute(src, table.update().values(note="n" * 3000))
    state = make_state(tmp_path, local, jobs_toml(src, batch_bytes="8KB", batch_size=1000))
    first = run(state)
    assert first.status == "succeeded", first.error
    assert table_rows(local, "orders") == table_rows(src, "orders")
    later = BASE_TIME + timedelta(days=1)
    execute(src, table.update().where(table.c.id > 20).values(note="m" * 3000,
                                                              updated_at=later))
    second = run(state)
    assert second.status == "succeeded", second.error
    assert second.rows_updated == 20
    assert table_rows(local, "orders") == table_rows(src, "orders")


def test_batch_with_a_nul_is_converted_again_and_warns_once_per_value():
    plans = _plans(None, values.no_nul, values.mysql_date)
    rows = [("1", "a", "2026-01-01"), ("2", "x\x00y", "0000-00-00"), ("3", None, "2026-01-03")]
    progress = Progress()
    convert = RowConverter("j", plans, ["c0"], progress, on_unrepresentable="null")
    data = _encoded(convert, rows, (values.no_nul,))
    assert data.decoded() == [["1", "a", "2026-01-01"], ["2", None, None],
                              ["3", None, "2026-01-03"]]
    assert sorted(progress.warnings.values()) == [1, 1]
    with pytest.raises(ValueUnrepresentable, match='column "c1", row with c0=2'):
        _encoded(RowConverter("j", plans, ["c0"], Progress()), rows, (values.no_nul,))


INT_COLUMNS = [
    ("1", "-2", "0", " 7 ", "1_000"),  # int() reads these as to_int does
    ("1", None, "3"),
    (1, "2", None),
    ("9223372036854775807", "-9223372036854775808"),
    ("9223372036854775808", "1"),  # beyond 64 bits: int64 refuses it
    ("1", "x"),
    ("1.5", "2"),
    (True, "1"),
    (1.0, "1"),
    (b"1", "2"),
    (None, None),
]


@pytest.mark.parametrize("column", INT_COLUMNS)
@pytest.mark.parametrize("convert", [values.to_int, values.int64, values.number_text])
def test_whole_column_conversion_returns_what_each_value_converted_returns(convert, column):
    def one(value):  # type: ignore[no-untyped-def]
        try:
            return None if value is None else convert(value)
        except values.Unrepresentable:
            return values.Unrepresentable

    whole = values.column_convert(convert)
    assert whole is not None
    done = whole(column)
    if done is not None:
        assert list(done) == [one(value) for value in column]
        assert [type(v) for v in done] == [type(one(value)) for value in column]
    else:  # left to the converter: some value needs it
        assert any(type(value) not in (str, int, type(None)) or one(value) is
                   values.Unrepresentable or one(value) != value for value in column)


def test_columns_of_a_batch_are_its_converted_rows_column_by_column():
    plans = _plans(values.to_int, None, values.number_text, values.int64, values.mysql_date,
                   values.no_nul)
    rows = [(str(i), f"name {i}", f"{i}.50", str(i * 3), "2026-01-31", "text")
            for i in range(100)]
    rows[7] = ("7", None, None, None, "0000-00-00", "a\x00b")
    rows[9] = ("9", "x", 2.5, "18446744073709551615", None, None)
    progress, by_columns = Progress(), Progress()
    convert = RowConverter("j", plans, ["c0"], progress, on_unrepresentable="null")
    expected = [tuple(row) for row in convert(rows)]
    columns = RowConverter("j", plans, ["c0"], by_columns, on_unrepresentable="null").columns(rows)
    assert list(zip(*columns)) == expected
    assert by_columns.warnings == progress.warnings and len(progress.warnings) == 3
    assert expected[9][2] == "2.5" and expected[9][3] is None and expected[1][0] == 1
    with pytest.raises(ValueUnrepresentable, match='column "c3", row with c0=9'):
        RowConverter("j", plans, ["c0"], Progress()).columns(rows)
    assert [list(c) for c in RowConverter("j", plans, ["c0"], Progress()).columns([])] == [[]] * 6


@pytest.mark.parametrize("width,count", [(6, 2500), (40, 2100), (1, 3)])
def test_sqlite_staging_rows_go_in_as_multi_row_inserts(tmp_path, width, count):
    names = tuple(f"c{i}" for i in range(width))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'local.sqlite'}")
    rows = [tuple([n] + [None if (n + i) % 5 == 0 else f"v{n}.{i}" for i in range(1, width)])
            for n in range(count)]
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE t ({', '.join(names)}, PRIMARY KEY (c0))")
            writer = writer_for(conn, Target("j", "t", names, ("c0",)))
            writer.insert(ColumnBatch(list(zip(*rows)), count))
            writer.insert(ColumnBatch([()] * width, 0))
            assert conn.exec_driver_sql("SELECT * FROM t ORDER BY c0").all() == rows
        with engine.begin() as conn, pytest.raises(sqlite3.IntegrityError) as refused:
            writer = writer_for(conn, Target("j", "t", names, ("c0",)))
            writer.insert(ColumnBatch(list(zip(*rows[-1:])), 1))
        assert is_duplicate_key(refused.value, engine)  # the load names the shared key
    finally:
        engine.dispose()


def _source_connections(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE db = DATABASE() "
                "AND id <> CONNECTION_ID()").scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("reader", ["asyncmy", "pymysql"])
def test_value_refused_in_a_later_batch_into_sqlite_stops_the_read(databases, tmp_path,
                                                                   reader):
    """The fast reader has the next batch's query under way when a batch is refused: the
    run fails naming the row, and no connection to the source is left behind."""
    if reader == "asyncmy" and not fastread.available():
        pytest.skip("asyncmy not installed")
    src, local = databases.mysql(), databases.sqlite()
    execute(src, "CREATE TABLE big (id BIGINT PRIMARY KEY, n BIGINT UNSIGNED, "
                 "updated_at DATETIME(6))",
            "INSERT INTO big SELECT seq, seq, '2026-01-01' FROM seq_1_to_300",
            "UPDATE big SET n = 18446744073709551615 WHERE id = 200")
    env = SyncdEnv(tmp_path, local, jobs_toml(src, name="big", table="big", batch_size=64))
    env.extra_env["SYNCD_MYSQL_READER"] = reader
    state = get_state(env.app())
    upgrade(state.engine)
    try:
        result = run(state, "big")
    finally:
        state.dispose()
    assert result.status == "failed"
    assert 'column "n", row with id=200: integer beyond 64 bits' in result.error, result.error
    deadline = time.monotonic() + 10
    while _source_connections(src) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _source_connections(src) == 0
