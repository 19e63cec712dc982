"""Pure query builders and the type map: compiled, no database needed."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite  # noqa: F401

from syncd.engine.queries import full_scan, incremental_batch, keys_listed, keyset_after

T = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("k2", sa.Integer, primary_key=True), sa.Column("updated_at", sa.DateTime),
             sa.Column("v", sa.String(10)))


def sql(query: object, dialect: object = None) -> str:
    compiled = query.compile(dialect=dialect or postgresql.dialect(),  # type: ignore[attr-defined]
                             compile_kwargs={"literal_binds": True})
    return " ".join(str(compiled).split())


def test_keyset_is_written_out_not_a_row_value_comparison():
    text = sql(keyset_after([T.c.updated_at, T.c.id], ["2026-01-01", 7]))
    assert text == ("t.updated_at > '2026-01-01' OR t.updated_at = '2026-01-01' AND t.id > 7")


def test_keyset_over_three_columns():
    text = sql(keyset_after([T.c.updated_at, T.c.id, T.c.k2], [1, 2, 3]))
    assert text == ("t.updated_at > 1 OR t.updated_at = 1 AND t.id > 2 "
                    "OR t.updated_at = 1 AND t.id = 2 AND t.k2 > 3")


def test_incremental_batch_orders_by_cursor_then_key_and_limits():
    when = datetime(2026, 1, 1)
    text = sql(incremental_batch(T, ["id", "v", "updated_at"], "updated_at", ["id"],
                                 (when, 5), None, 100), mysql.dialect())
    assert text.endswith("ORDER BY t.updated_at, t.id LIMIT 100")
    assert "(updated_at, id) >" not in text and "t.updated_at = '2026-01-01 00:00:00'" in text


def test_first_incremental_batch_starts_at_lower_bound_inclusive():
    query = incremental_batch(T, ["id"], "updated_at", ["id"], None, 10, 5)
    assert "WHERE t.updated_at >= 10 ORDER BY" in sql(query)


def test_incremental_batch_without_checkpoint_skips_null_cursors():
    assert "t.updated_at IS NOT NULL" in sql(incremental_batch(T, ["id"], "updated_at", ["id"],
                                                               None, None, 5))


def test_full_scan_resumes_after_composite_key_without_offset():
    text = sql(full_scan(T, ["id", "k2", "v"], ["id", "k2"], (3, 4)))
    assert "WHERE t.id > 3 OR t.id = 3 AND t.k2 > 4 ORDER BY t.id, t.k2" in text
    assert "OFFSET" not in text and "LIMIT" not in text


def test_keys_listed_writes_integer_keys_as_literals_and_binds_the_rest():
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                     sa.Column("code", sa.String(10)))
    ints = str(sa.delete(table).where(keys_listed(table, ["id"], [(1,), (22,), (333,)]))
               .compile(dialect=mysql.dialect()))
    assert "t.id IN (1, 22, 333)" in ints and "%s" not in ints
    texts = sa.delete(table).where(
        keys_listed(table, ["code"], [("a",), ("b'; DROP TABLE t; --",)])).compile(
        dialect=mysql.dialect(), compile_kwargs={"render_postcompile": True})
    assert "DROP" not in str(texts) and "%s" in str(texts)


def test_keys_listed_holds_exactly_the_keys_listed(tmp_path):
    # Runs of consecutive keys become BETWEEN ranges: they must hold exactly the keys
    # listed, not the table's other keys inside or around the ranges.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'keys.sqlite'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True))
    present = [k for k in range(1, 101) if k not in (50, 51)] + [200, 202, 300]
    asked = [(k,) for k in [*range(1, 121), 200, 201, 202, 299, 301, 9, 400]]
    asked = sorted(set(asked))
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": k} for k in present])
        query = sa.delete(table).where(keys_listed(table, ["id"], asked))
        deleted = conn.execute(query).rowcount
        left = sorted(conn.execute(sa.select(table.c.id)).scalars())
    engine.dispose()
    assert deleted == len(set(present) & {k for (k,) in asked}) == 100
    assert left == [300]
    text = str(query.compile(dialect=mysql.dialect()))
    assert "BETWEEN 1 AND 120" in text and "BETWEEN 200 AND 202" in text
    assert "IN (299, 301, 400)" in text


def test_engine_imports_no_framework():
    code = ("import sys, syncd.engine, syncd.engine.sync, syncd.engine.load;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'celery', 'kombu')"
            " or m in ('syncd.models', 'syncd.runner', 'syncd.jobs')];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
