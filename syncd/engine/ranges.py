"""Key ranges of a split full load: how many rows a table has (from the catalog), and
where to cut its primary key so that each range holds about the same number of rows.

An integer key is cut into ranges of equal width between its lowest and highest
value (two index lookups). Any other key, and a composite one, is cut at keys taken
from the key index in one pass on the source server: every n-th key in key order
(``ROW_NUMBER() OVER (ORDER BY key)``), so only the boundaries travel.

A range is ``(lo, hi]``: the rows after ``lo`` up to ``hi`` included; the first
range has no ``lo`` and the last no ``hi``, so rows inserted during the load
beyond the highest key are read too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy import types as sqltypes

from syncd.engine.checkpoint import encode_value

metadata = MetaData()

split_ranges = Table(
    "syncd_split_ranges",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("run_id", BigInteger),
    Column("dispatch", String(16)),  # "celery" | "local"
    Column("lo", Text),
    Column("hi", Text),
    Column("position", Text),
    Column("status", String(16), nullable=False),
    Column("rows_read", BigInteger, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(255)),
    Column("error", Text),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("heartbeat_at", DateTime),
)


@dataclass(frozen=True)
class KeyRange:
    """Rows with ``lo < key <= hi`` (None: unbounded on that side)."""

    lo: tuple[Any, ...] | None
    hi: tuple[Any, ...] | None


def encode_key(key: Sequence[Any] | None) -> str | None:
    """A key as JSON text (as checkpoints store it)."""
    return None if key is None else json.dumps([encode_value(v) for v in key])


def decode_key(textual: str | None) -> tuple[Any, ...] | None:
    """JSON text back to a key of JSON values (the caller types them)."""
    return None if textual is None else tuple(json.loads(textual))


def estimate_rows(conn: Connection, table: Table) -> int | None:
    """The catalog's estimate of the table's rows, never a COUNT(*): ``catalog_rows``, or
    for a view (or a PostgreSQL table never analyzed) the planner's estimate (EXPLAIN).
    None when the source keeps no estimate (SQLite)."""
    if conn.dialect.name not in ("postgresql", "mysql", "mariadb"):
        return None
    rows = catalog_rows(conn, table)
    return rows if rows is not None else _explained(conn, table)


def catalog_rows(conn: Connection, table: Table) -> int | None:
    """The catalog's own figure of a table's rows: PostgreSQL ``pg_class.reltuples`` of a
    table analyzed at least once, MySQL/MariaDB ``information_schema.tables.table_rows``.
    None for a view, a table never analyzed, or SQLite."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        name = f"{table.schema}.{table.name}" if table.schema else table.name
        row = conn.execute(text(
            "SELECT c.reltuples, c.relkind FROM pg_class c "
            "WHERE c.oid = to_regclass(:name)"), {"name": _pg_quoted(conn, name)}).first()
        if row is not None and row[1] in ("r", "p") and row[0] is not None and row[0] >= 0:
            return int(row[0])
        return None
    if dialect in ("mysql", "mariadb"):
        row = conn.execute(text(
            "SELECT TABLE_ROWS, TABLE_TYPE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :name"),
            {"schema": table.schema, "name": table.name}).first()
        if row is not None and row[0] is not None and row[1] != "VIEW":
            return int(row[0])
    return None


def _pg_quoted(conn: Connection, name: str) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return ".".join(quote(part) for part in name.split("."))


def _explained(conn: Connection, table: Table) -> int | None:
    """The planner's row estimate of a full scan of ``table`` (a view)."""
    compiled = select(literal_column("1")).select_from(table).compile(
        conn, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "postgresql":
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}").scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])
    rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").mappings().all()
    counts = [int(r["rows"]) for r in rows if r.get("rows") is not None]
    return max(counts) if counts else None


def range_count(estimate: int, split_rows: int) -> int:
    """How many ranges: about ``split_rows / 2`` rows each."""
    per_range = max(1, split_rows // 2)
    return max(1, math.ceil(estimate / per_range))


def is_integer_key(table: Table, key: Sequence[str]) -> bool:
    """One integer column: cut by value."""
    return len(key) == 1 and isinstance(table.c[key[0]].type, sqltypes.Integer)


def plan_ranges(conn: Connection, table: Table, key: Sequence[str], count: int,
                key_reads: Sequence[Any]) -> list[KeyRange]:
    """``count`` ranges covering every key (fewer when the key has fewer distinct values).

    ``key_reads``: what to select for each key column so that its value arrives as the
    load's keyset parameters take it.
    """
    if count <= 1:
        return [KeyRange(None, None)]
    if is_integer_key(table, key):
        cuts = _integer_cuts(conn, table, key[0], count)
    else:
        cuts = _sampled_cuts(conn, table, key, count, key_reads)
    bounds: list[tuple[Any, ...] | None] = [None, *cuts, None]
    return [KeyRange(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _integer_cuts(conn: Connection, table: Table, name: str, count: int,
                  ) -> list[tuple[Any, ...]]:
    column = table.c[name]
    low, high = conn.execute(select(func.min(column), func.max(column))).one()
    if low is None or high is None or high <= low:
        return []
    width = (int(high) - int(low) + 1) / count
    cuts = sorted({int(low) + math.ceil(width * i) - 1 for i in range(1, count)})
    return [(cut,) for cut in cuts if low <= cut < high]


def _sampled_cuts(conn: Connection, table: Table, key: Sequence[str], count: int,
                  key_reads: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Every n-th key in key order, chosen on the source server from the key index."""
    keys = [table.c[name] for name in key]
    estimate = estimate_rows(conn, table) or 0
    step = max(1, estimate // count)
    number = func.row_number().over(order_by=keys).label("syncd_rn")
    inner = select(*[read.label(f"k{i}") for i, read in enumerate(key_reads)], number) \
        .select_from(table).subquery()
    query = select(*[inner.c[f"k{i}"] for i in range(len(key))]).where(
        inner.c.syncd_rn % step == 0).order_by(inner.c.syncd_rn)
    cuts = [tuple(row) for row in conn.execute(query)]
    return cuts[:count - 1]
