"""Incremental pass: read rows changed since the checkpoint, in (cursor, pk) keyset order.

Each batch is upserted and its checkpoint written in one local transaction; each
source read is its own short transaction (a MySQL connection that never ends its
transaction keeps an old snapshot and sees no new rows).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from syncd.engine.checkpoint import Checkpoint, save_checkpoint
from syncd.engine.connect import translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.convert import RowConverter
from syncd.engine.copyread import copy_select_list, first_batch, key_of
from syncd.engine.full import copy_through
from syncd.engine.keys import declared_unique, require_unique_batch
from syncd.engine.load import writer_for
from syncd.engine.lookback import read_clock, start_auto
from syncd.engine.queries import count_null_cursor, incremental_batch
from syncd.engine.readers import fetch_batch, select_list


def incremental_pass(ctx: SyncContext, point: Checkpoint, conn: Connection) -> None:
    """Upsert every row whose (cursor, pk) comes after the checkpoint (less the lookback).

    The local table is already in line with the source (``sync._prepare``). The
    batches' transactions share ``conn``, held by the caller.
    """
    spec, src, progress = ctx.spec, ctx.src, ctx.progress
    assert spec.cursor is not None
    progress.phase = "incremental"
    progress.done = False
    cursor = ctx.decode(point.cursor, spec.cursor)
    position = None if point.position is None else tuple(
        ctx.decode(v, name) for v, name in zip(point.position, src.primary_key))
    best: tuple[Any, ...] | None = None if cursor is None else (cursor, *(position or ()))
    auto = start_auto(ctx)
    after, lower = _start(ctx, cursor, position, fixed_lookback=auto is None)
    convert = RowConverter(spec.job, ctx.plans, src.primary_key, progress,
                           spec.on_unrepresentable)
    order = [src.columns.index(spec.cursor)] + [src.columns.index(n) for n in src.primary_key]
    by_name = {p.name: p for p in ctx.plans}
    key_plans = [by_name[spec.cursor], *ctx.key_plans()]
    through = copy_through(ctx)
    read = (copy_select_list if through else select_list)(src.cols(), ctx.plans)
    target = ctx.target()
    where = f"source table {spec.qualified_table}"
    limit = spec.batch_size
    unique = declared_unique(src.table, src.primary_key)
    nulls: int | None = None
    while True:
        query = incremental_batch(src.table, src.columns, spec.cursor, src.primary_key,
                                  after, lower, limit, read)
        values: Any
        with translated_errors(where), ctx.source.connect() as s:
            clock = read_clock(s) if auto is not None else None  # before the batch's snapshot
            if through:  # PostgreSQL's COPY text, passed on untouched
                values, last, cut = first_batch(s, query, limit, spec.batch_bytes)
                count = values.rows if values is not None else 0
            else:
                rows, cut = fetch_batch(s, query, limit, spec.batch_bytes)
                count = len(rows)
            final = not cut and count < limit
            if final:  # the last read: the rows it cannot see, counted in its transaction
                nulls = s.execute(count_null_cursor(src.table, spec.cursor)).scalar_one()
        if auto is not None and clock is not None:
            auto.last = clock
        if not count:
            break
        if not unique:  # a key the source does not declare unique: ask about these rows
            _require_unique(ctx, values.decoded() if through else rows)
        if through:
            key = key_of(last, order, key_plans)
        else:
            key = tuple(plan.key(rows[-1][i]) for plan, i in zip(key_plans, order))
            values = convert(rows)
        save = key if auto is None or clock is None else auto.checkpoint(key, clock)
        with ctx.writing_on(conn, durable=False):
            inserted, updated = writer_for(conn, target).upsert(values)
            if save is not None and _ahead(save, best):
                save_checkpoint(conn, Checkpoint(spec.job, "incremental", cursor=save[0],
                                                 position=save[1:] or None))
                best = save
        progress.rows_read += count
        progress.rows_inserted += inserted
        progress.rows_updated += updated
        progress.cursor = best[0] if best else None
        progress.done = final and spec.deletes != "reconcile"
        ctx.report()
        after = key
        if final:
            break
        if cut:  # wide rows: ask for about as many rows as fit in batch_bytes next time
            limit = max(1, count)
        else:
            limit = min(spec.batch_size, limit * 2)
    progress.warn(
        f'rows with a NULL cursor "{spec.cursor}" are not picked up by incremental runs '
        "(a full refresh loads them)", int(nulls or 0))
    if best is not None:
        progress.cursor = best[0]
    if auto is not None:
        progress.lookback = auto.record()
        held = auto.warning()
        if held:
            progress.warn(held)


def _require_unique(ctx: SyncContext, rows: list[Any]) -> None:
    """ConfigError if a row of the batch shares its key with another source row."""
    index = [ctx.src.columns.index(name) for name in ctx.src.primary_key]
    keys = {tuple(row[i] for i in index) for row in rows}
    require_unique_batch(ctx.spec, ctx.source, ctx.src, list(keys))


def _start(ctx: SyncContext, cursor: Any, position: tuple[Any, ...] | None,
           fixed_lookback: bool = True) -> tuple[tuple[Any, ...] | None, Any]:
    """Where the first batch starts: strictly after (cursor, pk), or at cursor - lookback.

    ``fixed_lookback`` False (``lookback = "auto"``): the checkpoint is already final.
    """
    if cursor is None:
        return None, None
    lookback = ctx.spec.lookback if fixed_lookback else timedelta(0)
    moment = cursor
    if isinstance(cursor, str):  # a SQLite date-time, as stored
        try:
            moment = datetime.fromisoformat(cursor)
        except ValueError:
            moment = None
    if isinstance(moment, (datetime, date)) and lookback.total_seconds() > 0:
        return None, moment - lookback
    if position is None:
        return None, cursor
    return (cursor, *position), None


def _ahead(key: tuple[Any, ...], best: tuple[Any, ...] | None) -> bool:
    """True if ``key`` is past the checkpoint ``best`` (a bare cursor counts as inclusive)."""
    if best is None:
        return True
    try:
        if len(best) == 1:
            return bool(key[0] >= best[0])
        return bool(key > best)
    except TypeError:
        return True
