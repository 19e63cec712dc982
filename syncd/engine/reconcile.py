"""Deletes: local rows whose primary key is gone from the source.

The key sets of both tables are compared as ``syncd verify`` compares rows
(``segments.py``), on the key columns alone: each database computes, per segment of
the key space, the count and digest of its keys, both at the same time, and only the
keys of segments that differ are read. A single integer key: segments are key ranges,
and each side sends the keys of a differing range as one text, matched as sets; where
most ranges differ (deletes spread over the table) the next ones are read so without
being measured first. Any other key: segments are hash buckets, split until small,
then their keys read and matched value by value (``compare.py``). So the databases
each read their keys about once, and what travels and what Python handles follows the
differences.

A key counts as gone only when the source does not have it. With key-hash segments
(any key but one integer column) a key's segment comes from a text both databases
compute; each key found gone there is looked up at the source by value before it
counts. Source keys missing locally are never deletions.

A first walk counts (keeping up to KEEP_KEYS of the keys found gone); if more than
max_delete_ratio of the local table would go, the run fails and nothing is deleted.
Otherwise the kept keys are deleted in batches, each in one local transaction, or,
when there were more, a second walk deletes them as it finds them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Column, MetaData, Table, delete, text

from syncd.engine.compare import EXTRA, RowRules, compare_rows
from syncd.engine.connect import translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.errors import DeleteLimitExceeded
from syncd.engine.queries import existing_keys, keys_listed
from syncd.engine.readers import fetch_rows, select_list
from syncd.engine.segments import (
    LANES,
    LEAF_ROWS,
    ROWS_QUERY,
    TOP_ROWS,
    KeyHashes,
    KeyRanges,
    Segment,
    Side,
    both,
    range_params,
)
from syncd.engine.verify import key_ranged, key_sides

KEEP_KEYS = 100_000  # keys the counting walk keeps for the deletes
KEY_ROWS = 50_000  # keys per side read at once to be matched
TOP_CHUNK = 64  # top-level key ranges measured between two progress reports


def reconcile_deletes(ctx: SyncContext) -> None:
    """Delete local rows that no longer exist at the source (bounded by max_delete_ratio)."""
    spec, progress = ctx.spec, ctx.progress
    progress.phase = "reconcile"
    with translated_errors("local database"):
        sides = key_sides(ctx)
    gone, total = 0, 0
    kept: list[tuple[Any, ...]] | None = []
    with _walking(ctx, sides) as walk:
        for keys in walk.gone():
            gone += len(keys)
            if kept is not None and len(kept) + len(keys) <= KEEP_KEYS:
                kept += keys
            else:
                kept = None
        total = walk.total
    if gone == 0:
        return
    if gone > spec.max_delete_ratio * total:
        raise DeleteLimitExceeded(
            f"reconcile would delete {gone} of {total} local rows of {spec.target} "
            f"({gone / total:.0%}), more than max_delete_ratio = {spec.max_delete_ratio}; "
            "nothing was deleted. If the source really lost these rows, raise max_delete_ratio "
            "for one run or run a full refresh"
        )
    if kept is not None:  # the first walk kept the keys: no second walk
        _delete(ctx, kept)
        return
    with _walking(ctx, sides) as walk:
        for keys in walk.gone():
            _delete(ctx, keys)


@contextmanager
def _walking(ctx: SyncContext, sides: tuple[Side, Side]) -> Iterator[_KeyWalk]:
    """A walk over both tables' keys, with its threads."""
    where = f"source table {ctx.spec.qualified_table} or local table {ctx.spec.target}"
    with ThreadPoolExecutor(max_workers=2 * LANES, thread_name_prefix="syncd-reconcile") as pool, \
            translated_errors(where):
        yield _KeyWalk(ctx, sides, pool)


class _KeyWalk:
    """One walk over the key space: yields the local keys the source does not have."""

    def __init__(self, ctx: SyncContext, sides: tuple[Side, Side],
                 pool: ThreadPoolExecutor) -> None:
        self.ctx, self.sides, self.pool = ctx, sides, pool
        self.ranged = key_ranged(ctx)
        self.strategy: KeyRanges | KeyHashes = \
            KeyRanges(sides, pool) if self.ranged else KeyHashes(sides, pool)
        plans = ctx.key_plans()
        self.rules = RowRules(
            names=tuple(p.name for p in plans), rules=tuple(c.rule for c in sides[0].columns),
            convert=tuple(p.convert for p in plans), key_index=tuple(range(len(plans))),
            store_null=ctx.spec.on_unrepresentable == "null")
        self.total = 0  # local rows, counted by the top-level segments

    def gone(self) -> Iterator[list[tuple[Any, ...]]]:
        """The local keys (as the local database sent them) gone from the source, a few
        at a time."""
        if isinstance(self.strategy, KeyRanges):
            yield from self._gone_from_ranges(self.strategy)
            return
        top = self.strategy.top()
        self.total += sum(s.local.count for s in top)
        yield from self._descend(top)

    def _gone_from_ranges(self, strategy: KeyRanges) -> Iterator[list[tuple[Any, ...]]]:
        """Integer keys: the top ranges are measured a chunk at a time; the keys of those
        that differ are read as lists and matched as sets. When most ranges of a chunk
        differ (deletes spread over the table), the next chunk's keys are read without
        measuring it first."""
        ranges = strategy.top_ranges()
        listed = False  # read this chunk's key lists without measuring it
        per_range = TOP_ROWS
        for start in range(0, len(ranges), TOP_CHUNK):
            chunk = [Segment(lo, hi) for lo, hi in ranges[start:start + TOP_CHUNK]]
            if not listed:
                chunk = strategy.measure([(s.lo, s.hi) for s in chunk])
                self.total += sum(s.local.count for s in chunk)
                per_range = max([s.rows for s in chunk] + [TOP_ROWS])
                chunk = [s for s in chunk if s.differs and s.local.count]
            step = max(1, KEY_ROWS // per_range)
            gone: list[tuple[Any, ...]] = []
            differing = 0
            for at in range(0, len(chunk), step):
                read = partial(_key_lists, ranges=chunk[at:at + step])
                source, local = both(self.pool, self.sides, read)
                for theirs, ours in zip(source, local):
                    if listed:
                        self.total += len(ours)
                        per_range = max(per_range, len(ours), len(theirs))
                    differing += theirs != ours
                    gone += [(key,) for key in sorted(ours - theirs)]
            listed = 2 * differing > min(TOP_CHUNK, len(ranges) - start)
            yield gone
            self.ctx.report()

    def _descend(self, segments: Sequence[Segment]) -> Iterator[list[tuple[Any, ...]]]:
        """Hash buckets that differ and hold local keys: split until small (or until they
        hold no source key: all their local keys are gone), then their keys matched."""
        leaves: list[Segment] = []
        big: list[Segment] = []
        for s in segments:
            if s.differs and s.local.count:
                split = s.source.count and s.rows > LEAF_ROWS and self.strategy.splittable(s)
                (big if split else leaves).append(s)
        group: list[Segment] = []
        for s in leaves:
            group.append(s)
            if sum(one.rows for one in group) >= KEY_ROWS:
                yield self._gone_in(group)
                group = []
        if group:
            yield self._gone_in(group)
        self.ctx.report()
        for start in range(0, len(big), 4096):
            yield from self._descend(self.strategy.split(big[start:start + 4096]))

    def _gone_in(self, group: Sequence[Segment]) -> list[tuple[Any, ...]]:
        """The local keys of the hash buckets ``group`` that the source does not have."""
        def read(side: Side) -> list[Any]:
            with side.reading() as conn:
                return self.strategy.rows(side, conn, group)

        source, local = both(self.pool, self.sides, read)
        extra = [d.local_key for d in compare_rows(self.rules, source, local)
                 if d.kind == EXTRA and d.local_key is not None]
        return self._absent(extra) if extra else []

    def _absent(self, keys: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Of ``keys``, those the source does not have, looked up by value."""
        src, size = self.ctx.src, max(1, self.ctx.spec.batch_size)
        read = select_list([src.table.c[name] for name in src.primary_key], self.ctx.key_plans())
        out = []
        with self.ctx.source.connect() as conn:
            for start in range(0, len(keys), size):
                chunk = keys[start:start + size]
                rows = fetch_rows(conn, existing_keys(src.table, src.primary_key, chunk, read),
                                  len(chunk))
                there = {self.rules.key_of(self.rules.source_form(row)) for row in rows}
                out += [k for k in chunk
                        if self.rules.key_of(self.rules.local_form(k)) not in there]
        return out


def _key_lists(side: Side, ranges: Sequence[Segment]) -> list[set[int]]:
    """The integer keys of each of ``ranges`` on ``side``, sent as one text per range
    (a driver takes far longer over a row per key than over its digits)."""
    key = side.keys[0].name
    listed = {"mysql": f"GROUP_CONCAT({key} SEPARATOR ',')",
              "postgresql": f"string_agg(({key})::text, ',')"}.get(
        side.dialect, f"group_concat({key}, ',')")
    out: list[set[int]] = [set() for _ in ranges]
    with side.reading() as conn:
        for start in range(0, len(ranges), ROWS_QUERY):
            group = ranges[start:start + ROWS_QUERY]
            sql = " UNION ALL ".join(
                f"SELECT {i}, {listed} FROM {side.qualified()} "
                f"WHERE {key} >= :lo{i} AND {key} <= :last{i}" for i in range(len(group)))
            params = range_params([(s.lo, s.hi) for s in group])
            with side.transaction(conn):
                rows = conn.execute(text(sql), params).all()
            for n, found in rows:
                if found:
                    digits = found.decode() if isinstance(found, bytes) else str(found)
                    out[start + int(n)] = set(map(int, digits.split(",")))
    return out


def _delete(ctx: SyncContext, keys: list[tuple[Any, ...]]) -> None:
    """Delete ``keys`` from the local table in batches, each in one local transaction."""
    pk = list(ctx.src.primary_key)
    target = Table(ctx.spec.target, MetaData(), *(Column(name) for name in pk))
    size = max(1, ctx.spec.batch_size)
    for start in range(0, len(keys), size):
        with ctx.writing() as conn:
            done = conn.execute(delete(target).where(
                keys_listed(target, pk, keys[start:start + size])))
        ctx.progress.rows_deleted += max(done.rowcount, 0)
        ctx.report()
