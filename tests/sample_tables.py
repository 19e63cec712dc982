"""Sample source tables for the tests, created with SQLAlchemy in any dialect."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from decimal import Context, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

DT6 = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BASE_TIME = datetime(2026, 1, 1, 12, 0, 0)


def orders_table(metadata: sa.MetaData | None = None, name: str = "orders") -> sa.Table:
    """BIGINT key, VARCHAR, DECIMAL, INT, TEXT, DATETIME(6) cursor with an index."""
    return sa.Table(
        name, metadata or sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("customer", sa.String(100)),
        sa.Column("amount", sa.Numeric(12, 4)),
        sa.Column("qty", sa.Integer),
        sa.Column("note", sa.Text),
        sa.Column("updated_at", DT6),
        sa.Index(f"ix_{name}_updated_at_id", "updated_at", "id"),
    )


def order_row(i: int, when: datetime | None = None) -> dict[str, Any]:
    """A deterministic row with awkward values: tabs, quotes, backslashes, unicode, empty."""
    rnd = random.Random(i)
    notes = ["", None, "tab\there", 'quote "q" \\ back', "line\nbreak", "ünïcødé ✓", "plain"]
    return {
        "id": i,
        "customer": f"customer {i % 97}",
        "amount": Decimal(rnd.randint(0, 10_000_000)) / Decimal(10_000),
        "qty": rnd.randint(-5, 500),
        "note": notes[i % len(notes)],
        "updated_at": when or (BASE_TIME + timedelta(seconds=i // 3, microseconds=i % 1000)),
    }


def create_orders(url: str, count: int, name: str = "orders", chunk: int = 5000) -> sa.Table:
    """Create and fill the orders table at ``url``; returns the Table."""
    engine = sa.create_engine(url)
    table = orders_table(name=name)
    try:
        with engine.begin() as conn:
            table.create(conn)
        for start in range(1, count + 1, chunk):
            with engine.begin() as conn:
                conn.execute(table.insert(), [order_row(i) for i in
                                              range(start, min(start + chunk, count + 1))])
    finally:
        engine.dispose()
    return table


def execute(url: str, *statements: Any, params: Any = None) -> None:
    """Run statements in one transaction."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                if isinstance(statement, str):
                    conn.exec_driver_sql(statement, params) if params else \
                        conn.exec_driver_sql(statement)
                else:
                    conn.execute(statement, params) if params is not None else \
                        conn.execute(statement)
    finally:
        engine.dispose()


def table_rows(url: str, name: str, key: str = "id") -> list[dict[str, Any]]:
    """All rows of a table as dicts, ordered by ``key``, with comparable values."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(table).order_by(table.c[key])).mappings().all()
            return [{k: _norm(v) for k, v in row.items()} for row in rows]
    finally:
        engine.dispose()


_DECIMAL_TEXT = re.compile(r"-?\d+(\.\d+)?")


def _norm(value: Any) -> Any:
    """Exact numbers as their digits: a SQLite local table keeps DECIMAL as exact text."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        value = Decimal(value)
    if isinstance(value, Decimal):
        exact = Context(prec=max(28, len(value.as_tuple().digits)))  # no rounding
        return format(value.normalize(exact), "f")
    return value


def count(url: str, name: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {name}").scalar_one())
    finally:
        engine.dispose()
