"""Repair: re-copy the rows verify found different or missing, delete the extra ones.

The source rows are read again by key (they may have changed since they were
compared), converted by the type map and upserted by the same writer as a sync;
local rows whose key the source does not have are deleted. Each batch is one
local transaction opened by ``SyncContext.writing()``, so the job-lock guard runs
first in it, as in every write of a sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, MetaData, Table, delete

from syncd.engine.compare import EXTRA, Difference
from syncd.engine.connect import translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.convert import RowConverter
from syncd.engine.load import writer_for
from syncd.engine.queries import existing_keys, keys_in
from syncd.engine.readers import fetch_rows, select_list


def repair_rows(ctx: SyncContext, differences: Sequence[Difference]) -> None:
    """Make the local rows of ``differences`` equal to the source's, in batches."""
    copy = [d.source_key for d in differences if d.kind != EXTRA and d.source_key is not None]
    gone = [d.local_key for d in differences if d.kind == EXTRA and d.local_key is not None]
    size = max(1, ctx.spec.batch_size)
    for start in range(0, len(copy), size):
        _copy(ctx, copy[start:start + size])
    for start in range(0, len(gone), size):
        _delete(ctx, gone[start:start + size])


def _copy(ctx: SyncContext, keys: list[Any]) -> None:
    src, spec, progress = ctx.src, ctx.spec, ctx.progress
    read = select_list(src.cols(), ctx.plans)
    with translated_errors(f"source table {spec.qualified_table}"), ctx.source.connect() as s:
        rows = fetch_rows(s, existing_keys(src.table, src.primary_key, keys, read), len(keys))
    convert = RowConverter(spec.job, ctx.plans, src.primary_key, progress,
                           spec.on_unrepresentable)
    values = convert(rows)
    with ctx.writing() as conn:
        inserted, updated = writer_for(conn, ctx.target()).upsert(values)
    progress.rows_inserted += inserted
    progress.rows_updated += updated


def _delete(ctx: SyncContext, keys: list[Any]) -> None:
    pk = list(ctx.src.primary_key)
    target = Table(ctx.spec.target, MetaData(), *(Column(name) for name in pk))
    with ctx.writing() as conn:
        done = conn.execute(delete(target).where(keys_in(target, pk, keys)))
    ctx.progress.rows_deleted += max(done.rowcount, 0)
