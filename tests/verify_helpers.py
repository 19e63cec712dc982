"""Helpers of the verify tests: each column's canonical text as each side computes it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from syncd.engine import checksum as ck
from syncd.engine.canonical import canonical_text
from syncd.engine.context import SyncContext
from syncd.engine.schema import plan_columns, reflect_source
from syncd.engine.spec import Progress, TableSync
from syncd.engine.verify import _sides


def text_differences(spec: TableSync, source: sa.Engine, local: sa.Engine) -> list[str]:
    """Per row and column, where the two sides' checksum texts differ (for failure messages)."""
    src = reflect_source(spec, source)
    plans = plan_columns(src, local.dialect.name, spec)
    ctx = SyncContext(spec, source, local, src, Progress(), plans)
    sides = _sides(ctx)
    texts = [_texts(side) for side in sides]
    out = []
    for key in sorted(set(texts[0]) | set(texts[1]), key=str):
        a, b = texts[0].get(key), texts[1].get(key)
        if a is None or b is None:
            out.append(f"{key}: only on the {'local' if a is None else 'source'} side")
            continue
        for col, x, y in zip(sides[0].columns, a, b):
            if x != y:
                out.append(f"{key} {col.name}: source {x!r} local {y!r}")
    return out


def _texts(side: Any) -> dict[Any, list[Any]]:
    key = side.keys[0].name
    out: dict[Any, list[Any]] = {}
    with side.reading() as conn, side.transaction(conn):
        if side.dialect == "sqlite":
            names = ", ".join(c.name for c in side.columns)
            for row in conn.exec_driver_sql(f"SELECT {key}, {names} FROM {side.qualified()}"):
                values = ck._converted(side.python.convert, row[1:])
                out[str(row[0])] = [canonical_text(c.rule, v, side.python.style)
                                    for c, v in zip(side.columns, values)]
            return out
        exprs = ", ".join(ck.column_sql(side.dialect, c) for c in side.columns)
        for row in conn.execute(sa.text(f"SELECT {key}, {exprs} FROM {side.qualified()}")):
            out[str(row[0])] = [None if v is None else str(v) for v in row[1:]]
    return out
