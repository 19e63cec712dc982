"""A full load split into key ranges, loaded by several processes into one staging table.

The job's checkpoint says ``phase = "split"`` with the staging table and the cursor
where incremental runs take over; each range's row in ``syncd_split_ranges`` holds
its own checkpoint (the last key committed), written in the transaction of the batch
it describes. A crashed range resumes from its key; the others are not redone. When
every range is done, the staging table is counted and swapped in once, as a full
load's is (``syncd.engine.full``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, inspect, select, update

from syncd.engine import fastread
from syncd.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from syncd.engine.connect import is_mysql, translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.full import (
    _create_staging,
    _start_cursor,
    _swap,
    load_batches,
    staging_name,
)
from syncd.engine.keys import require_unique_key
from syncd.engine.ranges import (
    KeyRange,
    decode_key,
    encode_key,
    estimate_rows,
    plan_ranges,
    range_count,
    split_ranges,
)
from syncd.engine.readers import select_list
from syncd.engine.schema import SourceTable, plan_columns, reflect_local, reflect_source
from syncd.engine.spec import Progress, ProgressCallback, TableSync
from syncd.engine.typemap import ColumnPlan

SPLIT = "split"  # the job checkpoint's phase while a split load is under way


@dataclass(frozen=True)
class SplitPlan:
    """The ranges of a split load; ``resumed``: an earlier run's plan, taken over."""

    ranges: list[KeyRange]
    estimate: int | None
    resumed: bool


def now() -> datetime:
    """Now, naive UTC (as the ranges table stores it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def open_context(spec: TableSync, source: Engine, local: Engine, progress: Progress,
                 guard: Callable[[Connection], None] | None,
                 on_progress: ProgressCallback | None = None,
                 mysql_reader: str = "auto",
                 known: tuple[SourceTable, list[ColumnPlan]] | None = None) -> SyncContext:
    """What a range load or the swap needs: the reflected source table and its type map
    (``known``: as an earlier range of the same run in this process found them)."""
    if known is not None:
        src, plans = known
    else:
        src = reflect_source(spec, source)
        require_unique_key(spec, source, src)
        plans = plan_columns(src, local.dialect.name, spec)
    ctx = SyncContext(spec, source, local, src, progress, plans, on_progress, guard)
    if is_mysql(source):
        ctx.reader = fastread.choose(mysql_reader)
    return ctx


def prepare(ctx: SyncContext, full_refresh: bool) -> Checkpoint | None:
    """The job's checkpoint; a full refresh forgets it, its staging table and its ranges."""
    with ctx.writing() as conn:
        if not full_refresh:
            return load_checkpoint(conn, ctx.spec.job)
        from syncd.engine.checkpoint import clear_checkpoint

        clear_checkpoint(conn, ctx.spec.job)
        conn.execute(delete(split_ranges).where(split_ranges.c.job == ctx.spec.job))
        stale = reflect_local(conn, staging_name(ctx.spec.target))
        if stale is not None:
            stale.drop(conn)
        return None


def needs_full_load(ctx: SyncContext, point: Checkpoint | None) -> bool:
    """As ``sync_table`` decides: a full job, a first load, or a load under way."""
    if ctx.spec.mode == "full" or point is None or point.phase != "incremental":
        return True
    with ctx.local.connect() as conn:
        return not inspect(conn).has_table(ctx.spec.target)


def plan(ctx: SyncContext, point: Checkpoint | None, split_rows: int) -> SplitPlan | None:
    """The ranges of this full load, or None when one reader does it (a small table, a
    source without an estimate, a single-reader load to resume)."""
    staging = staging_name(ctx.spec.target)
    if point is not None and point.phase == SPLIT and point.staging == staging:
        with ctx.local.connect() as conn:
            kept = conn.execute(select(func.count()).select_from(split_ranges)
                                .where(split_ranges.c.job == ctx.spec.job)).scalar_one()
            if kept and inspect(conn).has_table(staging):
                return SplitPlan([], None, resumed=True)
    if point is not None and point.phase == "full":
        return None  # a single-reader load is under way: it resumes as it started
    src = ctx.src
    key_plans = ctx.key_plans()
    reads = select_list([src.table.c[name] for name in src.primary_key], key_plans)
    with translated_errors(f"source table {ctx.spec.qualified_table}"), \
            ctx.source.connect() as conn:
        estimate = estimate_rows(conn, src.table)
        if estimate is None or estimate <= split_rows:
            return None
        ranges = plan_ranges(conn, src.table, src.primary_key,
                             range_count(estimate, split_rows), reads)
    if len(ranges) < 2:
        return None

    def typed(key: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        return None if key is None else tuple(p.key(v) for p, v in zip(key_plans, key))

    return SplitPlan([KeyRange(typed(r.lo), typed(r.hi)) for r in ranges], estimate, False)


def start(ctx: SyncContext, split: SplitPlan, run_id: int, dispatch: str) -> list[int]:
    """Create the staging table and the ranges (or take over an earlier run's); the
    indexes of the ranges left to load. ``dispatch``: "celery" or "local"."""
    job, staging = ctx.spec.job, staging_name(ctx.spec.target)
    if not split.resumed:
        load_cursor = _start_cursor(ctx)
        _create_staging(ctx, staging, load_cursor)
        with ctx.writing() as conn:
            save_checkpoint(conn, Checkpoint(job, SPLIT, load_cursor=load_cursor,
                                             staging=staging))
            conn.execute(delete(split_ranges).where(split_ranges.c.job == job))
            conn.execute(insert(split_ranges), [
                {"job": job, "idx": i, "run_id": run_id, "lo": encode_key(r.lo),
                 "hi": encode_key(r.hi), "position": None, "status": "pending",
                 "rows_read": 0, "attempts": 0}
                for i, r in enumerate(split.ranges)])
    with ctx.writing() as conn:
        conn.execute(update(split_ranges).where(split_ranges.c.job == job).values(
            run_id=run_id, dispatch=dispatch))
        conn.execute(update(split_ranges).where(
            split_ranges.c.job == job, split_ranges.c.status != "done").values(
            status="pending", error=None, worker=None))
        return list(conn.execute(select(split_ranges.c.idx).where(
            split_ranges.c.job == job, split_ranges.c.status != "done")
            .order_by(split_ranges.c.idx)).scalars())


def load_range(ctx: SyncContext, idx: int) -> None:
    """Load range ``idx`` from its checkpoint (or its start) to its end into the staging
    table; each batch moves the range's checkpoint in the batch's transaction."""
    job = ctx.spec.job
    with ctx.local.connect() as conn:
        row = conn.execute(select(split_ranges).where(
            split_ranges.c.job == job, split_ranges.c.idx == idx)).one()
        point = load_checkpoint(conn, job)
    assert point is not None and point.staging is not None
    ctx.progress.phase = "full"
    if is_mysql(ctx.source):
        ctx.progress.reader = ctx.reader
    ctx.upto = _typed(ctx, decode_key(row.hi))
    start_at = _typed(ctx, decode_key(row.position if row.position is not None else row.lo))

    def checkpoint(conn: Connection, key: tuple[Any, ...], rows: int) -> None:
        conn.execute(update(split_ranges).where(
            split_ranges.c.job == job, split_ranges.c.idx == idx).values(
            position=encode_key(key), rows_read=split_ranges.c.rows_read + rows,
            heartbeat_at=now()))

    load_batches(ctx, point.staging, start_at, checkpoint)


def finish(ctx: SyncContext) -> None:
    """Every range is loaded: count what changed, swap the staging table in (the ranges
    stay, for the run's page, until the next split load of the job)."""
    with ctx.local.connect() as conn:
        point = load_checkpoint(conn, ctx.spec.job)
    if point is None or point.phase != SPLIT or point.staging is None:
        raise RuntimeError(f"job {ctx.spec.job}: no split load to finish")
    ctx.progress.phase = "full"
    _swap(ctx, point.staging, point.load_cursor)


def _typed(ctx: SyncContext, key: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    if key is None:
        return None
    return tuple(ctx.decode(v, name) for v, name in zip(key, ctx.src.primary_key))
