"""The round-trip matrix: every column type of every source into every local database.

For each source x local pair, one source table holds a column per case
(fidelity_cases.py). A full load copies it; then the same values under new keys
arrive through an incremental run. Each cell (source, case, local) is its own
test: the local value equals the source value exactly (compared by the case's
canonical form: numbers as decimals without rounding, floats by repr or their
bits, PostgreSQL values as PostgreSQL's own text), and the row written by the
incremental run is identical to the one the full load wrote. A value that the
local type cannot hold fails the run naming job, column and row, or becomes NULL
with a warning under on_unrepresentable = "null".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Databases, SyncdEnv
from fidelity_cases import CASES, PG_TYPES, Case
from test_sync import jobs_toml, make_state, run

from syncd import get_state
from syncd.db import upgrade
from syncd.engine import copylines, fastread

LOCALS = ("postgres", "mysql", "sqlite")
TIME_1 = "2026-01-01 00:00:00"
TIME_2 = "2026-01-02 00:00:00"
INCREMENTAL_OFFSET = 1000


@dataclass
class Synced:
    """One source x local pair after a full load and an incremental run."""

    error: str | None = None
    source: dict[str, dict[int, Any]] = field(default_factory=dict)
    local: dict[str, dict[int, Any]] = field(default_factory=dict)
    urls: tuple[str, str] = ("", "")  # source, local
    cases: list[Case] = field(default_factory=list)


def column(case: Case) -> str:
    return f"c_{case.id}"


def _create_source(url: str, kind: str, cases: list[Case], table: str = "fid") -> None:
    """The source table: id, updated_at and one column per case, a row per value."""
    stamp = {"mysql": "DATETIME(6)", "postgres": "timestamp(6)", "sqlite": "DATETIME"}[kind]
    cols = ", ".join(f"{column(c)} {c.ddl}" for c in cases)
    rows = max(len(c.values) for c in cases)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if kind == "mysql":
                conn.exec_driver_sql("SET time_zone = '+00:00'")
            if kind == "postgres" and any(c.ddl == "syncd_mood" for c in cases):
                conn.exec_driver_sql(PG_TYPES)
            conn.exec_driver_sql(
                f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, updated_at {stamp}, {cols})")
            for r in range(rows):
                values = ", ".join(c.values[r] if r < len(c.values) else "NULL" for c in cases)
                conn.exec_driver_sql(
                    f"INSERT INTO {table} VALUES ({r + 1}, '{TIME_1}', {values})".replace(
                        "%", "%%"))
    finally:
        engine.dispose()


def _copy_rows_for_incremental(url: str, kind: str, cases: list[Case]) -> None:
    """The same values again under new keys, with a later cursor."""
    cols = ", ".join(column(c) for c in cases)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if kind == "mysql":
                conn.exec_driver_sql("SET time_zone = '+00:00'")
            conn.exec_driver_sql(
                f"INSERT INTO fid (id, updated_at, {cols}) SELECT id + {INCREMENTAL_OFFSET}, "
                f"'{TIME_2}', {cols} FROM fid")
    finally:
        engine.dispose()


def read_values(url: str, table: str, names: list[str]) -> dict[str, dict[int, Any]]:
    """Each column's values by id, as the database itself writes them (no driver typing)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            name = conn.dialect.name
            if name == "postgresql":
                types = dict(conn.exec_driver_sql(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    f"WHERE table_name = '{table}'").all())
                select = [c if types[c] in ("character", "inet") else f"{c}::text"
                          for c in names]
                cursor = raw.cursor()
            elif name in ("mysql", "mariadb"):
                conn.exec_driver_sql("SET time_zone = '+00:00'")
                types = dict(conn.exec_driver_sql(
                    "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE "
                    f"TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'").all())
                select = [f"{c} + 0e0" if types[c] == "float" else c for c in names]
                raw.decoders = {}
                cursor = raw.cursor()
            else:
                select, cursor = list(names), raw.cursor()
            cursor.execute(f"SELECT id, {', '.join(select)} FROM {table}")
            rows = cursor.fetchall()
    finally:
        engine.dispose()
    out: dict[str, dict[int, Any]] = {n: {} for n in names}
    for row in rows:
        for n, value in zip(names, row[1:], strict=True):
            out[n][_key(row[0])] = value
    return out


def _key(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _sync_pair(dbs: Databases, tmp: Path, source_kind: str, local_kind: str,
               reader: str) -> Synced:
    cases = [c for c in CASES[source_kind] if local_kind not in c.refused]
    lines = reader.endswith(LINES)
    if lines:  # only columns the source can write COPY lines of, so the whole table can
        cases = [c for c in cases if c.id in LINE_CASES]
        reader = reader.removesuffix(LINES)
    src, local = dbs.make(source_kind), dbs.make(local_kind)
    _create_source(src, source_kind, cases)
    env = SyncdEnv(tmp, local, jobs_toml(src, name="fid", table="fid", batch_size=2))
    env.extra_env["SYNCD_MYSQL_READER"] = reader
    state = get_state(env.app())
    upgrade(state.engine)
    built = []
    line_column = copylines.line_column

    def counted(*args: Any) -> Any:
        built.append(args)
        return line_column(*args)

    copylines.line_column = counted  # type: ignore[assignment]
    try:
        full = run(state, "fid")
        copylines.line_column = line_column  # type: ignore[assignment]
        if full.status != "succeeded":
            return Synced(error=f"full load: {full.error}")
        if bool(built) != lines:
            return Synced(error=f"the full load {'did not read' if lines else 'read'} "
                                "COPY lines written by the source")
        used = getattr(full, "reader", None)
        if source_kind == "mysql" and used != reader:
            return Synced(error=f"full load read by {used}, not {reader}")
        _copy_rows_for_incremental(src, source_kind, cases)
        incremental = run(state, "fid")
        if incremental.status != "succeeded":
            return Synced(error=f"incremental run: {incremental.error}")
        rows = max(len(c.values) for c in cases)
        # All rows of the full load share its highest cursor value: the first incremental
        # run re-reads them (inclusive start), then reads the new ones.
        # The re-read rows are unchanged: the local database must see them as equal.
        counts = (incremental.rows_read, incremental.rows_inserted, incremental.rows_updated)
        if counts != (2 * rows, rows, 0):
            return Synced(error=f"incremental run read, inserted, updated {counts}, "
                                f"not {(2 * rows, rows, 0)}")
    finally:
        copylines.line_column = line_column  # type: ignore[assignment]
        state.dispose()
    names = [column(c) for c in cases]
    return Synced(source=read_values(src, "fid", names), local=read_values(local, "fid", names),
                  urls=(src, local), cases=cases)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``matrix(source_kind, local_kind, reader)``: the synced pair, made once per module."""
    tmp = tmp_path_factory.mktemp("fidelity")
    dbs = Databases(tmp)
    done: dict[tuple[str, str, str], Synced] = {}

    def get(source_kind: str, local_kind: str, reader: str) -> Synced:
        key = (source_kind, local_kind, reader)
        if key not in done:
            pair_dir = tmp / f"{source_kind}-{local_kind}-{reader}"
            pair_dir.mkdir()
            try:
                done[key] = _sync_pair(dbs, pair_dir, source_kind, local_kind, reader)
            except Exception as exc:  # every cell of the pair reports it
                done[key] = Synced(error=f"{type(exc).__name__}: {exc}")
        return done[key]

    yield get
    dbs.drop_all()


# MySQL sources are read by every MySQL reader installed: the values must not differ.
MYSQL_READERS = ["pymysql", "asyncmy"] if fastread.available() else ["pymysql"]
# Into PostgreSQL, a table whose every column the source can write as COPY text is read
# as lines (syncd/engine/copylines.py): these cases are synced in such a table too.
LINES = "+lines"
LINE_CASES = {"tinyint", "tinyint_unsigned", "smallint", "smallint_unsigned", "mediumint",
              "mediumint_unsigned", "int", "int_unsigned", "bigint", "bigint_unsigned",
              "bigint_unsigned_max", "boolean", "tinyint1", "decimal_38_10", "decimal_65_30",
              "char", "varchar", "text", "date", "datetime6", "timestamp6", "year", "enum",
              "set"}


def _readers(source: str, case: Case, local: str) -> list[str]:
    if source != "mysql":
        return ["auto"]
    if local == "postgres" and case.id in LINE_CASES:
        return MYSQL_READERS + [r + LINES for r in MYSQL_READERS]
    return MYSQL_READERS


EXACT = [pytest.param(s, c, local, reader,
                      id=f"{s}-{c.id}-to-{local}" + (f"-{reader}" if s == "mysql" else ""))
         for s, cases in CASES.items() for c in cases for local in LOCALS
         for reader in _readers(s, c, local) if local not in c.refused]
REFUSED = [pytest.param(s, c, local, id=f"{s}-{c.id}-to-{local}")
           for s, cases in CASES.items() for c in cases for local in LOCALS
           if local in c.refused]


@pytest.mark.parametrize("source_kind,case,local_kind,reader", EXACT)
def test_value_arrives_exactly_by_full_load_and_incremental_run(
        matrix: Any, source_kind: str, case: Case, local_kind: str, reader: str) -> None:
    synced = matrix(source_kind, local_kind, reader)
    assert synced.error is None, synced.error
    name = column(case)
    for r, literal in enumerate(case.values, start=1):
        source = synced.source[name][r]
        by_full, by_incremental = synced.local[name][r], synced.local[name][r + 1000]
        assert by_incremental == by_full, f"{literal}: full load and incremental run differ"
        if source is None:
            assert by_full is None, literal
        else:
            assert by_full is not None, f"{literal}: arrived as NULL"
            assert case.canon(by_full) == case.canon(source), (literal, source, by_full)


@pytest.mark.parametrize("source_kind,case,local_kind", REFUSED)
def test_value_the_local_type_cannot_hold_fails_the_run_or_becomes_null(
        databases: Databases, tmp_path: Path, source_kind: str, case: Case,
        local_kind: str) -> None:
    src, local = databases.make(source_kind), databases.make(local_kind)
    _create_source(src, source_kind, [case])
    fail_dir, null_dir = tmp_path / "fail", tmp_path / "null"
    fail_dir.mkdir()
    null_dir.mkdir()
    state = make_state(fail_dir, local, jobs_toml(src, name="fid", table="fid"))
    try:
        result = run(state, "fid")
    finally:
        state.dispose()
    assert result.status == "failed"
    assert f'job "fid": column "{column(case)}", row with id=1: {case.refused[local_kind]}' \
        in result.error, result.error
    assert "cannot be stored exactly in the local type" in result.error
    engine = sa.create_engine(local, poolclass=sa.pool.NullPool)
    try:
        assert not sa.inspect(engine).has_table("fid")  # nothing was swapped in
    finally:
        engine.dispose()

    state = make_state(null_dir, local, jobs_toml(src, name="fid", table="fid",
                                                  on_unrepresentable="null"))
    try:
        stored = run(state, "fid")
    finally:
        state.dispose()
    assert stored.status == "succeeded", stored.error
    warning = f'column "{column(case)}": {case.refused[local_kind]} stored as NULL'
    assert any(warning in w["message"] for w in stored.to_dict()["warnings"]), stored.warnings_json
    values = read_values(local, "fid", [column(case)])[column(case)]
    assert values[1] is None


RECONCILE_KEYS = [
    ("mysql", "DECIMAL(10,2)", ["1.50", "2.00", "10.25"], "sqlite"),
    ("mysql", "BINARY(2)", ["x'0001'", "x'00ff'", "x'ff00'"], "postgres"),
    ("postgres", "uuid", ["'00000000-0000-0000-0000-000000000001'",
                          "'f47ac10b-58cc-4372-a567-0e02b2c3d479'",
                          "'ffffffff-ffff-ffff-ffff-ffffffffffff'"], "mysql"),
    ("postgres", "timestamptz", ["'2024-03-31 00:30:00+00'", "'2024-03-31 03:30:00+02'",
                                 "'2024-10-27 02:30:00+01'"], "sqlite"),
]


@pytest.mark.parametrize("source_kind,key_type,keys,local_kind", RECONCILE_KEYS,
                         ids=[f"{s}-{t}-to-{loc}" for s, t, _, loc in RECONCILE_KEYS])
def test_reconcile_matches_keys_across_representations(
        databases: Databases, tmp_path: Path, source_kind: str, key_type: str,
        keys: list[str], local_kind: str) -> None:
    """A key stored in another form locally (a SQLite decimal is text) is the same key:
    reconcile deletes exactly the rows gone from the source, nothing else."""
    src, local = databases.make(source_kind), databases.make(local_kind)
    stamp = "DATETIME(6)" if source_kind == "mysql" else "timestamp(6)"
    engine = sa.create_engine(src, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE k (id {key_type} PRIMARY KEY, updated_at {stamp})")
        for key in keys:
            conn.exec_driver_sql(f"INSERT INTO k VALUES ({key}, '{TIME_1}')")
    state = make_state(tmp_path, local, jobs_toml(src, name="k", table="k",
                                                  deletes="reconcile", max_delete_ratio=0.5))
    try:
        first = run(state, "k")
        assert first.status == "succeeded", first.error
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM k WHERE id = {keys[1]}")
        result = run(state, "k")
    finally:
        state.dispose()
        engine.dispose()
    assert result.status == "succeeded", result.error
    assert result.rows_deleted == 1
    left = read_values(local, "k", ["updated_at"])
    assert len(left["updated_at"]) == 2


# --- verify on the matrix: equal values hash equal across dialects ----------------------------

PAIRS = [pytest.param(s, local, id=f"{s}-to-{local}") for s in CASES for local in LOCALS]
# Segments a verify of a freshly synced pair compares row by row because the two databases
# write an equal value differently in SQL (see README, "What verify cannot compare exactly").
# Every other pair must hash every value of the matrix equal.
ROW_BY_ROW: dict[tuple[str, str], int] = {}


def _verify(synced: Synced, repair: bool = False, texts: bool = False) -> Any:
    from verify_helpers import text_differences

    from syncd.db import make_local_engine
    from syncd.engine import TableSync, connect_source
    from syncd.engine.verify import VerifyOptions, verify_table

    spec = TableSync(job="fid", table="fid", schema=None, target="fid", cursor="updated_at",
                     batch_size=2)
    source, local = connect_source(synced.urls[0]), make_local_engine(synced.urls[1])
    try:
        if texts:
            return text_differences(spec, source, local)
        return verify_table(spec, source, local, VerifyOptions(repair=repair))
    finally:
        source.dispose()
        local.dispose()


@pytest.mark.parametrize("source_kind,local_kind", PAIRS)
def test_verify_hashes_equal_values_equal_and_finds_and_repairs_every_changed_type(
        matrix: Any, source_kind: str, local_kind: str) -> None:
    """After a sync, verify says identical with no row-by-row fallback; every column of a
    changed row is reported, a missing and an extra row too; repair restores them all."""
    synced = matrix(source_kind, local_kind, MYSQL_READERS[0] if source_kind == "mysql"
                    else "auto")
    assert synced.error is None, synced.error
    identical = _verify(synced)
    rows = 2 * max(len(c.values) for c in synced.cases)
    assert (identical.rows_compared, identical.rows_different) == (rows, 0), identical.examples
    print(f"{source_kind} -> {local_kind}: {identical.segments} segment(s), "
          f"{identical.segments_row_by_row} compared row by row")
    assert identical.segments_row_by_row == ROW_BY_ROW.get((source_kind, local_kind), 0), \
        "\n".join(_verify(synced, texts=True))

    names = [column(c) for c in synced.cases]
    engine = sa.create_engine(synced.urls[1], poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE fid SET {', '.join(f'{n} = NULL' for n in names)} WHERE id = 1")
            conn.exec_driver_sql("DELETE FROM fid WHERE id = 2")
            conn.exec_driver_sql("INSERT INTO fid (id) VALUES (99999)")
    finally:
        engine.dispose()
    found = _verify(synced)
    assert (found.changed, found.missing, found.extra) == (1, 1, 1), found.examples
    by_key = {e["key"]["id"]: e for e in found.examples}
    assert by_key["1"]["kind"] == "different" and by_key["1"]["columns"] == names
    assert by_key["2"]["kind"] == "missing locally"
    assert by_key["99999"]["kind"] == "extra locally"

    repaired = _verify(synced, repair=True)
    assert (repaired.rows_different, repaired.rows_repaired, repaired.remaining) == (3, 3, 0)
    assert read_values(synced.urls[1], "fid", names) == synced.local
    assert _verify(synced).rows_different == 0
