"""Deletes: local rows whose primary key is gone from the source.

Walks the local keys in sorted batches and looks each batch up at the source,
so memory is bounded by the batch. A first pass counts (keeping up to KEEP_KEYS of
the keys it found gone); if more than max_delete_ratio of the local table would go,
the run fails and nothing is deleted. Otherwise the kept keys are deleted, or, when
there were more, a second pass deletes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete

from syncd.engine.connect import translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.errors import DeleteLimitExceeded
from syncd.engine.queries import count_keys, existing_keys, key_batch, keys_in, row_count
from syncd.engine.readers import fetch_rows, select_list
from syncd.engine.schema import local_table
from syncd.engine.values import Unrepresentable, ZeroDate, canonical

KEEP_KEYS = 100_000  # keys the counting pass keeps for the deleting pass


def reconcile_deletes(ctx: SyncContext) -> None:
    """Delete local rows that no longer exist at the source (bounded by max_delete_ratio)."""
    spec, progress = ctx.spec, ctx.progress
    progress.phase = "reconcile"
    target = local_table(spec.target, ctx.key_plans(), ctx.src.primary_key)
    with ctx.local.connect() as conn:
        total = conn.execute(row_count(target)).scalar_one()
    gone, found = _walk(ctx, target, delete_them=False)
    if gone == 0:
        return
    if gone > spec.max_delete_ratio * total:
        raise DeleteLimitExceeded(
            f"reconcile would delete {gone} of {total} local rows of {spec.target} "
            f"({gone / total:.0%}), more than max_delete_ratio = {spec.max_delete_ratio}; "
            "nothing was deleted. If the source really lost these rows, raise max_delete_ratio "
            "for one run or run a full refresh"
        )
    if found is not None:  # the first pass kept the keys: delete them, no second walk
        with ctx.writing() as conn:
            for start in range(0, len(found), ctx.spec.batch_size):
                chunk = found[start:start + ctx.spec.batch_size]
                conn.execute(delete(target).where(keys_in(target, ctx.src.primary_key, chunk)))
        progress.rows_deleted += gone
        return
    progress.rows_deleted += _walk(ctx, target, delete_them=True)[0]


def _walk(ctx: SyncContext, target: Table, delete_them: bool,
          ) -> tuple[int, list[tuple[Any, ...]] | None]:
    """Walk the local keys in order; count (and delete) those the source no longer has.

    Returns the count and, while they are at most KEEP_KEYS, the keys themselves (None
    beyond). Keys of both databases are compared in the type map's canonical form (a
    local SQLite decimal is text, the source's is a number; both are the same key).
    Integer keys are first counted at the source (``COUNT(*) ... IN``): a batch whose
    keys are all there is not read back.
    """
    pk = list(ctx.src.primary_key)
    plans = ctx.key_plans()
    canon = [canonical(p.family) for p in plans]
    from_source = [p.convert for p in plans]
    read = select_list([ctx.src.table.c[name] for name in pk], plans)
    after: tuple[Any, ...] | None = None
    gone = 0
    kept: list[tuple[Any, ...]] | None = []
    counted = all(p.family == "int" for p in plans)  # equal by IN means the same key
    where = f"source table {ctx.spec.qualified_table}"
    while True:
        with ctx.local.connect() as conn:
            keys = [tuple(r) for r in fetch_rows(
                conn, key_batch(target, pk, after, ctx.spec.batch_size), ctx.spec.batch_size)]
        if not keys:
            return gone, kept
        missing: list[tuple[Any, ...]] = []
        with translated_errors(where), ctx.source.connect() as s:
            present = s.execute(count_keys(ctx.src.table, pk, keys)).scalar_one() \
                if counted else -1
            if present != len(keys):
                rows = fetch_rows(s, existing_keys(ctx.src.table, pk, keys, read), len(keys))
                found = {_canonical_key(row, canon, from_source) for row in rows}
                missing = [k for k in keys if _canonical_key(k, canon, None) not in found]
        if kept is not None:
            kept = kept + missing if len(kept) + len(missing) <= KEEP_KEYS else None
        if missing and delete_them:
            with ctx.writing() as conn:
                conn.execute(delete(target).where(keys_in(target, pk, missing)))
        gone += len(missing)
        after = keys[-1]
        ctx.report()
        if len(keys) < ctx.spec.batch_size:
            return gone, kept


def _canonical_key(row: Any, canon: list[Any], convert: list[Any] | None) -> tuple[Any, ...]:
    out = []
    for i, value in enumerate(row):
        if value is not None and convert is not None and convert[i] is not None:
            try:
                value = convert[i](value)
            except (Unrepresentable, ZeroDate):
                pass
        out.append(None if value is None else canon[i](value))
    return tuple(out)
