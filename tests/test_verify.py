"""`syncd verify` as an operator uses it: what it reports, what it repairs, exit codes, history.

The differences are made at the source with the cursor left unchanged (and in the
local table), so incremental runs cannot see them: only verify finds them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sample_tables import BASE_TIME, create_orders, execute, order_row, orders_table, table_rows
from test_sync import jobs_toml, make_state, run

from syncd.engine import connect_source
from syncd.engine import verify as verify_module
from syncd.engine.segments import MAX_TOP, KeyHashes
from syncd.engine.verify import VerifyOptions, verify_table
from syncd.locks import JobLock


def history(env: Any, *args: str) -> list[dict[str, Any]]:
    return json.loads(env.syncd("history", "--json", *args, check=True).stdout)


def damage(src: str, local: str) -> dict[str, str]:
    """Differences no incremental run can see; returns the expected report by key."""
    execute(src, "UPDATE orders SET note = 'changed at the source' WHERE id IN (10, 700)",
            "DELETE FROM orders WHERE id = 20")
    execute(src, orders_table().insert(), params=[order_row(3000, BASE_TIME)])  # an old cursor
    execute(local, "DELETE FROM orders WHERE id = 30",
            "UPDATE orders SET amount = 1.5 WHERE id = 1500")
    return {"10": "different", "700": "different", "20": "extra locally",
            "3000": "missing locally", "30": "missing locally", "1500": "different"}


@pytest.mark.parametrize("source_kind,local_kind", [("mysql", "postgres"), ("postgres", "mysql"),
                                                    ("sqlite", "sqlite")])
def test_verify_reports_every_differing_row_and_repair_makes_local_equal_source(
        databases: Any, make_env: Any, source_kind: str, local_kind: str) -> None:
    src, local = databases.make(source_kind), databases.make(local_kind)
    create_orders(src, 2000)
    env = make_env(local, jobs_toml(src, batch_size=500))
    assert env.syncd("run", "orders").returncode == 0

    clean = env.syncd("verify", "orders")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verify succeeded compared=2000 different=0" in clean.stdout

    expected = damage(src, local)
    assert env.syncd("run", "orders").returncode == 0  # the cursor did not move: nothing seen
    found = env.syncd("verify", "orders", "--json")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert (report["trigger"], report["status"]) == ("verify", "failed")
    assert (report["rows_compared"], report["rows_different"], report["rows_repaired"]) == (
        2000, 6, None)
    assert {e["key"]["id"]: e["kind"] for e in report["verify"]["examples"]} == expected
    changed = {e["key"]["id"]: e.get("columns") for e in report["verify"]["examples"]}
    assert changed["10"] == ["note"] and changed["1500"] == ["amount"]
    assert "6 row(s) differ: 2 missing locally, 1 extra locally, 3 with different values" \
        in report["error"]
    assert table_rows(local, "orders") != table_rows(src, "orders")

    repaired = env.syncd("verify", "orders", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "different=6 repaired=6" in repaired.stdout
    assert "missing locally: id=3000 repaired" in repaired.stdout
    assert table_rows(local, "orders") == table_rows(src, "orders")
    assert env.syncd("verify", "orders").returncode == 0

    runs = history(env)
    assert [(r["trigger"], r["status"], r["rows_different"], r["rows_repaired"])
            for r in runs[:4]] == [("verify", "succeeded", 0, None),
                                   ("verify", "succeeded", 6, 6),
                                   ("verify", "failed", 6, None),
                                   ("cli", "succeeded", None, None)]
    assert runs[1]["verify"]["remaining"] == 0 and runs[1]["verify"]["repair"] is True
    assert all(e["repaired"] for e in runs[1]["verify"]["examples"])


def test_verify_exit_codes_skipped_and_bad_config(databases: Any, make_env: Any) -> None:
    src, local = databases.mysql(), databases.postgres()
    create_orders(src, 50)
    env = make_env(local, jobs_toml(src))
    assert env.syncd("run", "orders").returncode == 0
    unknown = env.syncd("verify", "nope")
    assert unknown.returncode == 2 and 'no job named "nope"' in unknown.stderr

    (env.tmp_path / "state").mkdir()
    state = make_state(env.tmp_path / "state", local, jobs_toml(src))
    lock = JobLock(state.engine, "orders")
    assert lock.acquire()  # a run of the job is in progress
    try:
        skipped = env.syncd("verify", "orders", "--repair")
    finally:
        lock.release()
        state.dispose()
    assert skipped.returncode == 3, skipped.stdout + skipped.stderr
    newest = history(env)[0]
    assert (newest["trigger"], newest["status"]) == ("verify", "skipped")
    assert "another run of this job is in progress" in newest["error"]

    env.write_jobs(jobs_toml(src, cursor="changed"))
    bad = env.syncd("verify", "orders")
    assert bad.returncode == 2 and 'column "changed" not in source table' in bad.stderr


def _verify(src: str, local_engine: Any, table: str, repair: bool = False,
            **fields: Any) -> Any:
    from syncd.engine import TableSync

    spec = TableSync(job=table, table=table, schema=None, target=table, cursor="updated_at",
                     batch_size=3, **fields)
    source = connect_source(src)
    try:
        return verify_table(spec, source, local_engine, VerifyOptions(repair=repair))
    finally:
        source.dispose()


HASHED_KEYS = [
    ("mysql", "VARCHAR(20)", ["'a'", "'B'", "'c d'", "'😀'", "'Z'"], "postgres"),
    ("postgres", "uuid", ["'00000000-0000-0000-0000-000000000001'",
                          "'F47AC10B-58CC-4372-A567-0E02B2C3D479'",
                          "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
                          "'10000000-0000-0000-0000-000000000000'",
                          "'20000000-0000-0000-0000-000000000000'"], "mysql"),
    ("mysql", "DECIMAL(10,2)", ["1.50", "2.00", "10.25", "-3", "0"], "sqlite"),
    ("postgres", "timestamptz", ["'2024-03-31 00:30:00+00'", "'2024-03-31 03:30:00+02'",
                                 "'2024-10-27 02:30:00+01'", "'2000-01-01 00:00:00.5+00'",
                                 "'1999-12-31 23:59:59.999999-08'"], "sqlite"),
    ("sqlite", "TEXT", ["'x'", "'Y'", "'ü'", "''", "'10'"], "mysql"),
    ("mysql", "BINARY(2)", ["x'0001'", "x'00ff'", "x'ff00'", "x'0000'", "x'7f7f'"], "postgres"),
]


@pytest.mark.parametrize("source_kind,key_type,keys,local_kind", HASHED_KEYS,
                         ids=[f"{s}-{t}-to-{loc}" for s, t, _, loc in HASHED_KEYS])
def test_keys_that_order_differently_are_compared_by_hash_segments(
        databases: Any, tmp_path: Any, source_kind: str, key_type: str, keys: list[str],
        local_kind: str) -> None:
    """A text, uuid, decimal, time or binary key: collations and stored forms differ between
    the databases, so segments are buckets of a hash of the key's canonical text."""
    src, local = databases.make(source_kind), databases.make(local_kind)
    stamp = {"mysql": "DATETIME(6)", "postgres": "timestamp(6)", "sqlite": "DATETIME"}[source_kind]
    execute(src, f"CREATE TABLE k (id {key_type} PRIMARY KEY, v VARCHAR(20), updated_at {stamp})",
            *(f"INSERT INTO k VALUES ({key}, 'value {i}', '2026-01-01 00:00:00')"
              for i, key in enumerate(keys)))
    state = make_state(tmp_path, local, jobs_toml(src, name="k", table="k"))
    try:
        assert run(state, "k").status == "succeeded"
        identical = _verify(src, state.engine, "k")
        assert (identical.strategy, identical.rows_compared, identical.rows_different,
                identical.segments_row_by_row) == ("key hashes", 5, 0, 0)
        execute(src, f"DELETE FROM k WHERE id = {keys[1]}",
                f"UPDATE k SET v = 'changed' WHERE id = {keys[2]}")
        found = _verify(src, state.engine, "k")
        assert (found.extra, found.changed, found.missing) == (1, 1, 0), found.examples
        repaired = _verify(src, state.engine, "k", repair=True)
        assert (repaired.rows_repaired, repaired.remaining) == (2, 0)
        assert _verify(src, state.engine, "k").rows_different == 0
    finally:
        state.dispose()
    assert [r["v"] for r in sorted(table_rows(local, "k", "v"), key=lambda r: r["v"])] == sorted(
        r["v"] for r in table_rows(src, "k", "v"))


def test_composite_key_and_forced_splits_of_both_segment_kinds(
        databases: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """Segments small enough to be split several times, by key range and by key hash."""
    src, local = databases.postgres(), databases.mysql()
    create_orders(src, 600)
    execute(src, "CREATE TABLE pairs AS SELECT mod(id, 7) AS a, id AS b, note, updated_at "
                 "FROM orders", "ALTER TABLE pairs ADD PRIMARY KEY (a, b)")
    jobs = jobs_toml(src) + jobs_toml(src, name="pairs", table="pairs").split("\n\n", 1)[1]
    state = make_state(tmp_path, local, jobs)
    monkeypatch.setattr(verify_module, "LEAF_ROWS", 4)
    monkeypatch.setattr("syncd.engine.segments.TOP_ROWS", 100)
    monkeypatch.setattr(KeyHashes, "top_buckets", 4)
    try:
        assert run(state, "orders").status == "succeeded"
        assert run(state, "pairs").status == "succeeded"
        execute(src, "UPDATE orders SET qty = -1 WHERE id IN (1, 333, 600)",
                "UPDATE pairs SET note = 'x' WHERE b IN (2, 444)")
        ranged = _verify(src, state.engine, "orders", repair=True)
        hashed = _verify(src, state.engine, "pairs", repair=True)
    finally:
        state.dispose()
    assert (ranged.strategy, ranged.changed, ranged.rows_repaired) == ("key ranges", 3, 3)
    assert ranged.segments > 6 + 16 * 3  # top ranges, each differing one split further
    assert (hashed.strategy, hashed.changed, hashed.rows_repaired) == ("key hashes", 2, 2)
    assert hashed.segments > 4 + 16
    assert {e["key"]["b"] for e in hashed.examples} == {"2", "444"}
    assert table_rows(local, "orders") == table_rows(src, "orders")


@pytest.mark.parametrize("local_kind", ["sqlite", "postgres"])
def test_sparse_keys_use_at_most_max_top_ranges(databases: Any, tmp_path: Any,
                                                local_kind: str) -> None:
    """The whole BIGINT range: no key arithmetic overflows, top ranges stay bounded."""
    src, local = databases.mysql(), databases.make(local_kind)
    execute(src, "CREATE TABLE s (id BIGINT PRIMARY KEY, v INT, updated_at DATETIME)",
            "INSERT INTO s VALUES (-9223372036854775808, 1, '2026-01-01'), (0, 2, '2026-01-01'),"
            " (9223372036854775806, 3, '2026-01-01'), (9223372036854775807, 3, '2026-01-01')")
    state = make_state(tmp_path, local, jobs_toml(src, name="s", table="s"))
    try:
        assert run(state, "s").status == "succeeded"
        execute(src, "UPDATE s SET v = 4 WHERE id = 9223372036854775807")
        report = _verify(src, state.engine, "s", repair=True)
    finally:
        state.dispose()
    assert (report.strategy, report.changed, report.rows_repaired) == ("key ranges", 1, 1)
    assert report.segments <= MAX_TOP + 16 * 16
    assert table_rows(local, "s")[-1]["v"] == 4


def test_values_stored_as_null_by_the_type_map_are_not_differences(
        databases: Any, tmp_path: Any) -> None:
    """A zero date and a value the local type cannot hold (on_unrepresentable = "null") are
    NULL locally by the type map's rules: verify checks them row by row and finds them equal."""
    src, local = databases.mysql(), databases.postgres()
    execute(src, "SET SESSION sql_mode = ''",
            "CREATE TABLE legacy (id INT PRIMARY KEY, born DATE, note TEXT, updated_at DATETIME)",
            "INSERT INTO legacy VALUES (1, '0000-00-00', 'a\\0b', '2026-01-01'), "
            "(2, '2020-02-29', 'plain', '2026-01-01')")
    state = make_state(tmp_path, local, jobs_toml(src, name="legacy", table="legacy",
                                                  on_unrepresentable="null"))
    try:
        assert run(state, "legacy").status == "succeeded"
        report = _verify(src, state.engine, "legacy", on_unrepresentable="null")
        strict = _verify(src, state.engine, "legacy")
    finally:
        state.dispose()
    assert (report.rows_different, report.segments_row_by_row) == (0, 1)
    assert strict.changed == 1 and strict.examples[0]["columns"] == ["note"]


def test_a_segment_text_cut_by_group_concat_is_compared_row_by_row(
        databases: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """MySQL's GROUP_CONCAT cuts at group_concat_max_len (with a warning): such a segment's
    digest never counts as equal; it is split until its parts fit, so a difference past the
    cut is still found."""
    src, local = databases.mysql(), databases.mysql()
    create_orders(src, 300)
    state = make_state(tmp_path, local, jobs_toml(src))
    monkeypatch.setattr("syncd.engine.segments.GROUP_CONCAT_MAX", 1024)
    try:
        assert run(state).status == "succeeded"
        identical = _verify(src, state.engine, "orders")
        execute(src, "UPDATE orders SET note = 'changed' WHERE id = 299")
        found = _verify(src, state.engine, "orders")
    finally:
        state.dispose()
    assert identical.rows_different == 0 and identical.segments > 1
    assert [(e["key"]["id"], e["columns"]) for e in found.examples] == [("299", ["note"])]
