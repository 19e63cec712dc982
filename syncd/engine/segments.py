"""The two sides of a verify and the segments they are compared by.

A segment is a half-open range ``[lo, hi)``: of the primary key itself
(``KeyRanges``, for a single integer key: integers order the same in every
database, and a range is an index range scan), or of a 32-bit hash of the key's
canonical text (``KeyHashes``, for every other key: text collations, SQLite's
text decimals and dates order differently in each database, so a key range would
not hold the same rows on both sides). Each side computes, per segment, its row
count and checksum in one query; both sides run at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, select, text
from sqlalchemy.sql.expression import FromClause

from syncd.engine import checksum as ck
from syncd.engine.readers import read_batches

FANOUT = 16  # a differing hash segment is split into this many (one full scan per level)
RANGE_FANOUT = 64  # a differing key range into this many (a top range: into leaves)
LEAF_ROWS = 64  # a differing segment this small is compared row by row
TOP_ROWS = 4096  # rows per top-level key range (dense keys)
MAX_TOP = 4096  # top-level segments at most
LANES = 2  # connections per side measuring top-level ranges at the same time
PER_TRANSACTION = 16  # ranges measured in one statement, split in one read transaction
ROWS_QUERY = 64  # ranges whose rows one query reads
HASH_BITS = ck.KEY_BITS
SEGMENT_BYTES = 8 * 2**20  # a key range's rows' texts, joined for its digest, at most about
GROUP_CONCAT_MAX = 2**30  # the largest MariaDB takes in strict mode
# PostgreSQL's text output fixed; no parallel workers: a verify's lanes already keep the
# cores busy, and workers cost about a third more CPU for the same checksums.
PG_SESSION = ("SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; "
              "SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'; "
              "SET LOCAL TimeZone = 'UTC'; SET LOCAL max_parallel_workers_per_gather = 0")


@dataclass
class Side:
    """One side of a verify: a table in one database, its compared columns, its reads."""

    label: str  # "source" | "local"
    engine: Engine
    table: FromClause
    columns: list[ck.Column]  # every compared column, in the job's column order
    key_index: list[int]  # positions of the primary-key columns in ``columns``
    reads: list[ColumnElement[Any]]  # what to select so values arrive as the type map reads
    python: ck.PythonSide  # SQLite: the functions registered on its connections
    clustered: bool = False  # InnoDB: rows of a key range come in key order
    utf8: bool = False  # MySQL: the row text is already UTF-8 (``check_utf8``)

    @property
    def dialect(self) -> str:
        name = self.engine.dialect.name
        return "mysql" if name in ("mysql", "mariadb") else name

    @property
    def keys(self) -> list[ck.Column]:
        return [self.columns[i] for i in self.key_index]

    def keys_only(self) -> Side:
        """This side narrowed to its primary-key columns."""
        python = replace(self.python, rules=self.python.key_rules,
                         convert=self.python.key_convert)
        return replace(self, columns=self.keys, key_index=list(range(len(self.key_index))),
                       reads=[self.reads[i] for i in self.key_index], python=python)

    def qualified(self) -> str:
        """The table's name as SQL."""
        quote = self.engine.dialect.identifier_preparer
        schema = getattr(self.table, "schema", None)
        name = quote.quote(str(getattr(self.table, "name", "")))
        return f"{quote.quote_schema(schema)}.{name}" if schema else name

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for a few short read transactions (functions registered on SQLite)."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                ck.register_functions(conn.connection.dbapi_connection, self.python)
            elif self.dialect == "mysql":  # GROUP_CONCAT of a segment's rows (1 GiB)
                conn.exec_driver_sql(f"SET SESSION group_concat_max_len = {GROUP_CONCAT_MAX}")
                conn.commit()
            yield conn

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[Connection]:
        """One short read transaction, with PostgreSQL's text output fixed."""
        with conn.begin():
            if self.dialect == "postgresql":
                conn.exec_driver_sql(PG_SESSION)
            yield conn

    def check_utf8(self) -> None:
        """MySQL: find whether the row text comes in a UTF-8 character set already."""
        if self.dialect != "mysql":
            return
        with self.reading() as conn, self.transaction(conn):
            charset = conn.exec_driver_sql(ck.utf8_sql(self.columns, self.qualified())).scalar()
        self.utf8 = str(charset).lower() in ck.UTF8_CHARSETS

    def sum_sql(self) -> str:
        return ck.sum_sql(self.dialect, self.columns)

    def digest_sql(self, grouped: bool = False) -> str:
        """A key range's digest (``grouped``: of each group of a GROUP BY, which may sort)."""
        return ck.digest_sql(self.dialect, self.columns, self.keys[0],
                             self.clustered and not grouped, self.utf8)

    def ranges_digest_sql(self, ranges: int) -> str:
        """Of ``ranges`` key ranges ``[:lo<n>, :last<n>]``: n, count and digest (one row each,
        in one statement: one round trip)."""
        return " UNION ALL ".join(
            ck.range_digest_sql(self.dialect, self.columns, self.keys[0], self.qualified(),
                                self.clustered, n, self.utf8) for n in range(ranges))

    def key_hash_sql(self) -> str:
        return ck.key_hash_sql(self.dialect, self.keys)

    def rows(self, conn: Connection, where: str, params: dict[str, Any],
             order: Sequence[ColumnElement[Any]] = ()) -> list[Any]:
        """The raw rows matching ``where`` (one read transaction)."""
        query: Select[Any] = select(*self.reads).select_from(self.table).where(
            text(where).bindparams(**params) if params else text(where))
        if order:
            query = query.order_by(*order)
        out: list[Any] = []
        with self.transaction(conn):
            for batch in read_batches(conn, query, 5000):
                out.extend(batch)
        return out


@dataclass
class Stats:
    """A segment's row count and checksum (modulo 2**64) on one side."""

    count: int = 0
    total: int | str = 0  # a sum of row hashes (key hashes) or a digest (key ranges)


@dataclass
class Segment:
    """A range of the strategy's key space and what each side holds in it."""

    lo: int
    hi: int
    source: Stats = field(default_factory=Stats)
    local: Stats = field(default_factory=Stats)

    @property
    def differs(self) -> bool:
        return (self.source.count, self.source.total) != (self.local.count, self.local.total)

    @property
    def rows(self) -> int:
        return max(self.source.count, self.local.count)


def _stats(row: Any) -> Stats:
    count, total = int(row[-2] or 0), row[-1]
    return Stats(count, int(total or 0) % ck.MOD if count else 0)


def _cut(conn: Connection) -> bool:
    """MySQL: GROUP_CONCAT cut its result (warning 1260) in the statement just run."""
    return any(row[1] == 1260 for row in conn.exec_driver_sql("SHOW WARNINGS"))


def _digest(row: Any) -> Stats:
    count, digest = int(row[0] or 0), row[1]
    return Stats(count, str(digest) if count else 0)


def both(pool: ThreadPoolExecutor, sides: tuple[Side, Side],
         work: Callable[[Side], Any]) -> tuple[Any, Any]:
    """Run ``work`` for the source and the local side at the same time."""
    futures = [pool.submit(work, side) for side in sides]
    return futures[0].result(), futures[1].result()


class KeyRanges:
    """Segments are ranges of a single integer primary key (index range scans)."""

    def __init__(self, sides: tuple[Side, Side], pool: ThreadPoolExecutor) -> None:
        self.sides = sides
        self.pool = pool

    def _key(self, side: Side) -> str:
        return side.keys[0].name

    def top_ranges(self) -> list[tuple[int, int]]:
        """Equal-width ranges over both sides' keys: about TOP_ROWS rows each when dense
        (fewer when rows are wide: a segment's rows' texts stay near SEGMENT_BYTES)."""
        bounds = both(self.pool, self.sides, self._bounds)
        found = [b for b in bounds if b is not None]
        if not found:
            return []
        lo, hi = min(b[0] for b in found), max(b[1] for b in found) + 1
        rows = max(16, min(TOP_ROWS, SEGMENT_BYTES // max(1, self._row_width())))
        return _ranges(lo, hi, min(MAX_TOP, max(1, math.ceil((hi - lo) / rows))))

    def _row_width(self) -> int:
        """The average length of a row's text, from a sample of the local table."""
        side = self.sides[1]
        sql = ck.row_width_sql(side.dialect, side.columns, side.qualified(), 1000)
        with side.reading() as conn, side.transaction(conn):
            width = conn.exec_driver_sql(sql).scalar()
        return int(width or 1)

    def _bounds(self, side: Side) -> tuple[int, int] | None:
        key = self._key(side)
        with side.reading() as conn, side.transaction(conn):
            low, high = conn.exec_driver_sql(
                f"SELECT MIN({key}), MAX({key}) FROM {side.qualified()}").one()
        return None if low is None else (int(low), int(high))

    def split(self, segments: Sequence[Segment]) -> list[Segment]:
        """Each segment's RANGE_FANOUT sub-ranges of equal width, measured: one grouped query
        per segment and side (with a SQLite side: one query per sub-range)."""
        if "sqlite" in (self.sides[0].dialect, self.sides[1].dialect):
            return self.measure([r for s in segments
                                 for r in _ranges(s.lo, s.hi, RANGE_FANOUT)])
        widths = [-(-(s.hi - s.lo) // RANGE_FANOUT) for s in segments]

        def measure(side: Side, lane: list[tuple[Segment, int]]) -> list[dict[int, Stats]]:
            out = []
            with side.reading() as conn:
                for start in range(0, len(lane), PER_TRANSACTION):
                    with side.transaction(conn):
                        out += self._parts(side, conn, lane[start:start + PER_TRANSACTION])
            return out

        source, local = self._in_lanes(list(zip(segments, widths)), measure)
        children = []
        for s, width, theirs, ours in zip(segments, widths, source, local):
            for part, lo in enumerate(range(s.lo, s.hi, width)):
                children.append(Segment(lo, min(lo + width, s.hi), theirs.get(part, Stats()),
                                        ours.get(part, Stats())))
        return children

    def _parts(self, side: Side, conn: Connection,
               segments: list[tuple[Segment, int]]) -> list[dict[int, Stats]]:
        """Each segment's sub-ranges ``(key - lo) DIV width``: count and digest, in one
        statement."""
        params = {f"{name}{n}": value for n, (s, width) in enumerate(segments)
                  for name, value in (("lo", s.lo), ("last", s.hi - 1), ("w", width))}
        sql = " UNION ALL ".join(self._parts_sql(side, s.hi - s.lo, n)
                                 for n, (s, _) in enumerate(segments))
        result = conn.execute(text(sql), params)
        warned = getattr(getattr(result.cursor, "_result", None), "warning_count", 0)
        out: list[dict[int, Stats]] = [{} for _ in segments]
        for row in result:
            out[int(row[0])][int(row[1])] = _digest(row[2:])
        if warned and _cut(conn):  # GROUP_CONCAT cut one of them: none counts as equal
            for stats in (one for parts in out for one in parts.values()):
                stats.total = f"cut at {GROUP_CONCAT_MAX} bytes ({side.label})"
        return out

    def _parts_sql(self, side: Side, span: int, n: int) -> str:
        """Of each sub-range ``(key - :lo<n>) DIV :w<n>`` of ``[:lo<n>, :last<n>]``: n, the
        sub-range, its count and digest."""
        key, lo, w = self._key(side), f":lo{n}", f":w{n}"
        if side.dialect == "mysql":
            offset = f"({key} - {lo})" if span < 2**62 else \
                f"(CAST({key} AS DECIMAL(21,0)) - {lo})"
            part = f"{offset} DIV {w}"
        else:
            part = f"div(({key})::numeric - {lo}, {w})"
        return (f"SELECT {n}, {part} AS syncd_part, COUNT(*), {side.digest_sql(True)} FROM "
                f"{side.qualified()} WHERE {key} >= {lo} AND {key} <= :last{n} "
                "GROUP BY syncd_part")

    def splittable(self, segment: Segment) -> bool:
        return segment.hi - segment.lo > 1

    def remeasure(self, segments: Sequence[Segment]) -> list[Segment]:
        """The same segments, measured again (after a repair)."""
        return self.measure([(s.lo, s.hi) for s in segments])

    def measure(self, ranges: list[tuple[int, int]]) -> list[Segment]:
        """Count and checksum of each range on both sides: LANES connections per side, each
        measuring every LANES-th range, PER_TRANSACTION ranges per read transaction."""

        def measure(side: Side, lane: list[tuple[int, int]]) -> list[Stats]:
            out: list[Stats] = []
            with side.reading() as conn:
                for start in range(0, len(lane), PER_TRANSACTION):
                    with side.transaction(conn):
                        out += self._many(side, conn, lane[start:start + PER_TRANSACTION])
            return out

        source, local = self._in_lanes(ranges, measure)
        return [Segment(lo, hi, s, loc) for (lo, hi), s, loc in zip(ranges, source, local)]

    def _in_lanes(self, items: list[Any], work: Callable[[Side, list[Any]], list[Any]]
                  ) -> tuple[list[Any], list[Any]]:
        """``work`` over ``items`` on both sides at once, LANES connections per side (each
        takes every LANES-th item); each side's results in the order of ``items``."""
        lanes = max(1, min(LANES, len(items)))
        futures = [[self.pool.submit(work, side, items[lane::lanes]) for lane in range(lanes)]
                   for side in self.sides]
        done = [[f.result() for f in side] for side in futures]
        source, local = ([side[i % lanes][i // lanes] for i in range(len(items))] for side in done)
        return source, local

    @staticmethod
    def _many(side: Side, conn: Connection, ranges: list[tuple[int, int]]) -> list[Stats]:
        """Count and digest of each of ``ranges``, in one statement."""
        result = conn.execute(text(side.ranges_digest_sql(len(ranges))), range_params(ranges))
        warned = getattr(getattr(result.cursor, "_result", None), "warning_count", 0)
        found = {int(r[0]): _digest(r[1:]) for r in result}
        stats = [found.get(n, Stats()) for n in range(len(ranges))]
        if warned and _cut(conn):  # GROUP_CONCAT cut one of them: none counts as equal
            for one in stats:
                one.total = f"cut at {GROUP_CONCAT_MAX} bytes ({side.label})"
        return stats

    def rows(self, side: Side, conn: Connection, segments: Sequence[Segment]) -> list[Any]:
        """The raw rows of ``segments`` on ``side`` (one query per ROWS_QUERY ranges)."""
        key = self._key(side)
        out: list[Any] = []
        for start in range(0, len(segments), ROWS_QUERY):
            group = segments[start:start + ROWS_QUERY]
            where = " OR ".join(f"({key} >= :lo{i} AND {key} <= :last{i})"
                                for i in range(len(group)))
            out.extend(side.rows(conn, where, range_params([(s.lo, s.hi) for s in group])))
        return out


def range_params(ranges: Sequence[tuple[int, int]]) -> dict[str, int]:
    """The bound parameters ``:lo<n>`` and ``:last<n>`` of each range ``[lo, hi)``."""
    return {f"{name}{n}": value for n, (lo, hi) in enumerate(ranges)
            for name, value in (("lo", lo), ("last", hi - 1))}


def _ranges(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` cut into ``parts`` (at most ``hi - lo``) ranges of near-equal width."""
    parts = max(1, min(parts, hi - lo))
    cuts = [lo + (hi - lo) * i // parts for i in range(parts + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


class KeyHashes:
    """Segments are ranges of a 32-bit hash of the key's canonical text (full scans,
    grouped: one query per side and level)."""

    top_buckets = 4096

    def __init__(self, sides: tuple[Side, Side], pool: ThreadPoolExecutor) -> None:
        self.sides = sides
        self.pool = pool

    def top(self) -> list[Segment]:
        return self._measure(2**HASH_BITS // self.top_buckets, None, [])

    def split(self, segments: Sequence[Segment]) -> list[Segment]:
        out: list[Segment] = []
        for width, group in _by_width(segments).items():
            for start in range(0, len(group), 1000):
                parents = [s.lo // width for s in group[start:start + 1000]]
                out += self._measure(width // FANOUT, width, parents)
        return out

    def splittable(self, segment: Segment) -> bool:
        return segment.hi - segment.lo >= FANOUT

    def remeasure(self, segments: Sequence[Segment]) -> list[Segment]:
        """The same segments, measured again (after a repair)."""
        out: list[Segment] = []
        for width, group in _by_width(segments).items():
            for start in range(0, len(group), 1000):
                buckets = [s.lo // width for s in group[start:start + 1000]]
                out += self._measure(width, width, buckets)
        return out

    def _measure(self, width: int, parent_width: int | None,
                 parents: list[int]) -> list[Segment]:
        def measure(side: Side) -> dict[int, Stats]:
            bucket = ck.bucket_sql(side.dialect, side.key_hash_sql(), width)
            where = ""
            if parent_width is not None:
                parent = ck.bucket_sql(side.dialect, side.key_hash_sql(), parent_width)
                where = f" WHERE {parent} IN ({', '.join(str(p) for p in parents)})"
            sql = (f"SELECT {bucket} AS syncd_bucket, COUNT(*), {side.sum_sql()} "
                   f"FROM {side.qualified()}{where} GROUP BY syncd_bucket")
            with side.reading() as conn, side.transaction(conn):
                return {int(r[0]): _stats(r) for r in conn.execute(text(sql))}

        source, local = both(self.pool, self.sides, measure)
        return [Segment(b * width, (b + 1) * width, source.get(b, Stats()), local.get(b, Stats()))
                for b in sorted(set(source) | set(local))]

    def rows(self, side: Side, conn: Connection, segments: Sequence[Segment]) -> list[Any]:
        out: list[Any] = []
        for width, group in _by_width(segments).items():
            bucket = ck.bucket_sql(side.dialect, side.key_hash_sql(), width)
            listed = ", ".join(str(s.lo // width) for s in group)
            out.extend(side.rows(conn, f"{bucket} IN ({listed})", {}))
        return out


def _by_width(segments: Sequence[Segment]) -> dict[int, list[Segment]]:
    out: dict[int, list[Segment]] = {}
    for s in segments:
        out.setdefault(s.hi - s.lo, []).append(s)
    return out
