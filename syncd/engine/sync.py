"""One sync of one table: choose full load or incremental pass, then reconcile deletes."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine

from syncd.engine import fastread
from syncd.engine.checkpoint import Checkpoint, clear_checkpoint, load_checkpoint
from syncd.engine.connect import is_mysql, translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.full import full_load, staging_name
from syncd.engine.incremental import incremental_pass
from syncd.engine.keys import require_unique_key
from syncd.engine.reconcile import reconcile_deletes
from syncd.engine.schema import (
    SourceTable,
    local_shape,
    local_target,
    plan_columns,
    reflect_local,
    reflect_source,
)
from syncd.engine.spec import Progress, ProgressCallback, SyncResult, TableSync

KEYLESS = "no primary key: loaded in full, without resume"


def sync_table(
    spec: TableSync, source: Engine, local: Engine, *, full_refresh: bool = False,
    progress: Progress | None = None, on_progress: ProgressCallback | None = None,
    guard: Callable[[Connection], None] | None = None, mysql_reader: str = "auto",
    key_checked: bool = False, reflected: SourceTable | None = None,
) -> SyncResult:
    """Bring the local table in step with the source table and return what was done.

    ``progress`` is updated in place after every committed batch, so a caller still
    knows the counts of a run that failed half-way. ``guard`` runs first in every local
    transaction that writes (the job-lock fence) and raises to stop the run.
    ``mysql_reader``: "auto" (the fast reader when installed), "pymysql" or "asyncmy";
    the reader used is named in ``progress.reader``. ``key_checked``: the caller has
    just checked the whole source table for a shared key (see ``engine.keys``).
    ``reflected``: the source table as the caller reflected it a moment ago.
    """
    progress = progress or Progress()
    src = reflected or reflect_source(spec, source)
    plans = plan_columns(src, local.dialect.name, spec)
    ctx = SyncContext(spec, source, local, src, progress, plans, on_progress, guard)
    keyless = not src.primary_key  # allowed by spec.keyless_full: full, never resumed
    if is_mysql(source) and not keyless:  # the fast reader pages by key
        ctx.reader = fastread.choose(mysql_reader)
    if (full_refresh or spec.mode == "full") and not key_checked:
        require_unique_key(spec, source, src)  # before anything is reset
    if keyless:
        progress.warn(KEYLESS)
    with translated_errors("local database"):
        with local.connect() as conn:  # an incremental pass goes on on this connection
            point, ready = _prepare(ctx, conn, full_refresh or keyless)
            before = point.cursor if point and point.phase == "incremental" else None
            progress.cursor_before = ctx.decode(before, spec.cursor) if spec.cursor else None
            progress.cursor = progress.cursor_before
            if ready and point is not None:
                incremental_pass(ctx, point, conn)
        did_full = not ready
        if did_full:
            if not (full_refresh or spec.mode == "full" or key_checked):
                require_unique_key(spec, source, src)  # a load that creates the table
            full_load(ctx, point)
        elif spec.deletes == "reconcile":
            reconcile_deletes(ctx)
    return SyncResult(
        rows_read=progress.rows_read, rows_inserted=progress.rows_inserted,
        rows_updated=progress.rows_updated, rows_deleted=progress.rows_deleted,
        cursor_before=progress.cursor_before,
        cursor_after=ctx.decode(progress.cursor, spec.cursor) if spec.cursor else None,
        full_load=did_full, resumed=bool(point and point.phase == "full"),
        warnings=dict(progress.warnings),
    )


def _prepare(ctx: SyncContext, conn: Connection, full_refresh: bool,
             ) -> tuple[Checkpoint | None, bool]:
    """The job's checkpoint, and whether the run is incremental; one local transaction.

    A full refresh forgets the checkpoint and drops a half-done staging table. An
    incremental run finds its local table there and brings its columns in line with
    the source (``local_target``) in the same transaction.
    """
    spec = ctx.spec
    with ctx.writing_on(conn, durable=full_refresh):
        if full_refresh:
            clear_checkpoint(conn, spec.job)
            stale = reflect_local(conn, staging_name(spec.target))
            if stale is not None:
                stale.drop(conn)
            return None, False
        point = load_checkpoint(conn, spec.job)
        if spec.mode == "full" or point is None or point.phase != "incremental":
            return point, False
        shape = local_shape(conn, spec.target)
        if shape is None:  # the local table is gone: load it again
            return point, False
        local_target(conn, ctx.src, spec, ctx.plans, shape)
        return point, True
