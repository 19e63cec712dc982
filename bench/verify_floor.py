"""What one pass of checksums over a synced table costs each database, alone.

``bench_verify.py`` prints it beside the full load: the lower bound of a verify of
identical tables on this machine. Each database computes, over one connection and
with nothing else running, the count and digest of every top-level key range of the
table, in the statements a verify sends (16 ranges each), for three row texts:

- the exact one that verify hashes (NULL marks, the lengths of free texts, canonical
  forms: equal values hash equal across dialects, a changed value never does);
- the columns' plain text joined by "|" (not exact: NULL and "" or a "|" inside a
  text can collide, dialects write some values differently): what any checksum that
  reads every value costs at least;
- the key alone (the scan and the digest, no values).

Both sides of a verify run at the same time on the machine's cores, so with two cores
a verify of identical tables takes at least about the sum of the two columns divided
by two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from syncd.engine.context import SyncContext
from syncd.engine.schema import plan_columns, reflect_source
from syncd.engine.segments import PER_TRANSACTION, KeyRanges, Side, range_params
from syncd.engine.spec import Progress, TableSync
from syncd.engine.verify import _sides

TEXTS = ("exact row text (what verify hashes)", "plain text of the columns (not exact)",
         "the key alone")


def passes(source_url: str, local_url: str, table: str = "orders"
           ) -> list[tuple[str, float, float]]:
    """Per row text: (label, source database seconds, local database seconds)."""
    source, local = sa.create_engine(source_url), sa.create_engine(local_url)
    spec = TableSync(job=table, table=table, schema=None, target=table)
    src = reflect_source(spec, source)
    plans = plan_columns(src, local.dialect.name, spec)
    sides = _sides(SyncContext(spec, source, local, src, Progress(), plans))
    with ThreadPoolExecutor(2) as pool:
        ranges = KeyRanges(sides, pool).top_ranges()
    out = []
    for n, label in enumerate(TEXTS):
        theirs, ours = (_timed(side, ranges, _sql(side, n)) for side in sides)
        out.append((label, theirs, ours))
    source.dispose()
    local.dispose()
    return out


def _sql(side: Side, text: int) -> Callable[[int], str]:
    """SQL of ``ranges`` ranges' counts and digests of row text number ``text``."""
    if text == 0:
        return side.ranges_digest_sql
    key = side.keys[0].name
    row = key if text == 2 else f"concat_ws('|', {', '.join(c.name for c in side.columns)})"
    table = side.qualified()

    def one(n: int) -> str:
        where = f"{key} >= :lo{n} AND {key} <= :last{n}"
        if side.dialect == "mysql":
            return (f"SELECT {n}, COUNT(*), MD5(GROUP_CONCAT({row} SEPARATOR '\\n')) "
                    f"FROM {table} WHERE {where}")
        return (f"SELECT {n}, COUNT(*), md5(string_agg(r, E'\\n')) FROM (SELECT ({row})::text "
                f"AS r FROM {table} WHERE {where} ORDER BY {key}) s")

    return lambda ranges: " UNION ALL ".join(one(n) for n in range(ranges))


def _timed(side: Side, ranges: list[tuple[int, int]], sql: Callable[[int], str]) -> float:
    with side.reading() as conn:
        started = time.perf_counter()
        for start in range(0, len(ranges), PER_TRANSACTION):
            group = ranges[start:start + PER_TRANSACTION]
            with side.transaction(conn):
                conn.execute(sa.text(sql(len(group))), range_params(group)).all()
        return time.perf_counter() - started
