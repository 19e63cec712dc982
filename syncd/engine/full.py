"""Full load: copy the whole source table into a staging table, then swap it in.

The source is read once, in primary-key order, as a stream; every batch is
written to the staging table together with its checkpoint (the last key), so a
crashed load resumes where it stopped. Readers of the local table see the old
table until the swap, then the new one; never a half-loaded table.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Table

from syncd.engine.checkpoint import Checkpoint, clear_checkpoint, decode_value, save_checkpoint
from syncd.engine.connect import is_mysql, translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.convert import RowConverter
from syncd.engine.load import writer_for
from syncd.engine.queries import diff_counts, full_scan, max_cursor, row_count
from syncd.engine.readers import (
    TextRowFixer,
    can_read_text,
    mysql_text_batches,
    text_to_value,
    typed_batches,
)
from syncd.engine.schema import local_table, pk_name, reflect_local


def staging_name(target: str) -> str:
    """The staging table of a local table."""
    return f"{target}__syncd_staging"


def full_load(ctx: SyncContext, point: Checkpoint | None) -> None:
    """Load the whole table (resuming a crashed load of the same job) and swap it in."""
    spec, src, progress = ctx.spec, ctx.src, ctx.progress
    staging = staging_name(spec.target)
    progress.phase = "full"
    with ctx.writing() as conn:
        resume = bool(point and point.phase == "full" and point.staging == staging
                      and reflect_local(conn, staging) is not None)
    if resume:
        assert point is not None
        position = _decode_key(ctx, point.position)
        load_cursor = point.load_cursor
    else:
        position, load_cursor = None, _start_cursor(ctx)
        _create_staging(ctx, staging, load_cursor)
    with translated_errors(f"source table {spec.qualified_table}"), ctx.source.connect() as s:
        progress.rows_total = s.execute(row_count(src.table)).scalar_one()
    with ctx.local.connect() as conn:
        stage = reflect_local(conn, staging)
    assert stage is not None
    raw_text = can_read_text(ctx.source, ctx.local, spec.source_timezone)
    if raw_text:
        convert: Any = TextRowFixer([(n, src.table.c[n].type) for n in src.columns], progress)
    else:
        convert = RowConverter(src, stage, spec.source_timezone, progress,
                               from_mysql=is_mysql(ctx.source))
    pk_index = [src.columns.index(name) for name in src.primary_key]
    key_casts = [text_to_value(src.table.c[n].type) if raw_text else _same
                 for n in src.primary_key]
    for rows in _prefetch(_read_source(ctx, position, raw_text)):
        last = rows[-1]
        key = tuple(cast(last[i]) for cast, i in zip(key_casts, pk_index))
        with ctx.writing() as conn:
            writer_for(conn, stage, src.primary_key, src.columns, raw_text).insert(convert(rows))
            save_checkpoint(conn, Checkpoint(spec.job, "full", position=key,
                                             load_cursor=load_cursor, staging=staging))
        progress.rows_read += len(rows)
        ctx.report()
    _swap(ctx, stage, load_cursor)


def _same(value: Any) -> Any:
    return value


def _decode_key(ctx: SyncContext, values: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    if values is None:
        return None
    types = [ctx.src.table.c[name].type for name in ctx.src.primary_key]
    return tuple(decode_value(v, t) for v, t in zip(values, types))


def _start_cursor(ctx: SyncContext) -> Any:
    """The highest cursor value before the load starts: where incremental runs take over."""
    if not ctx.spec.cursor or ctx.spec.mode != "incremental":
        return None
    with translated_errors(f"source table {ctx.spec.qualified_table}"), ctx.source.connect() as s:
        return s.execute(max_cursor(ctx.src.table, ctx.spec.cursor)).scalar()


def _create_staging(ctx: SyncContext, staging: str, load_cursor: Any) -> None:
    with ctx.writing() as conn:
        old = reflect_local(conn, staging)
        if old is not None:
            old.drop(conn)
        target = reflect_local(conn, ctx.spec.target)
        extra = [c for c in target.columns if c.name not in ctx.src.table.c] if target is not None \
            else []
        local_table(ctx.src, staging, conn.dialect.name, extra).create(conn)
        save_checkpoint(conn, Checkpoint(ctx.spec.job, "full", load_cursor=load_cursor,
                                         staging=staging))


def _read_source(ctx: SyncContext, position: tuple[Any, ...] | None,
                 raw_text: bool) -> Iterator[list[Any]]:
    """Stream the source in primary-key order, ``batch_size`` rows at a time."""
    spec, src = ctx.spec, ctx.src
    query = full_scan(src.table, src.columns, src.primary_key, position)
    read = mysql_text_batches if raw_text else typed_batches
    with translated_errors(f"source table {spec.qualified_table}"), ctx.source.connect() as s:
        yield from read(s, query, spec.batch_size)


def _prefetch(batches: Iterator[list[Any]], depth: int = 2) -> Iterator[list[Any]]:
    """Read the next batch in a thread while the current one is written."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        slots.put(batch, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            slots.put(done)
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer)
            slots.put(exc)

    thread = threading.Thread(target=produce, name="syncd-read", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get(timeout=0.1)
            except queue.Empty:
                pass
        if hasattr(batches, "close"):
            batches.close()


def _swap(ctx: SyncContext, stage: Table, load_cursor: Any) -> None:
    """Count what changed, then replace the local table by the staging table."""
    spec, progress = ctx.spec, ctx.progress
    target_name = spec.target
    with ctx.writing() as conn:
        target = reflect_local(conn, target_name)
        if target is None:
            progress.rows_inserted += conn.execute(row_count(stage)).scalar_one()
        else:
            ins, upd, dele = (conn.execute(q).scalar_one() for q in
                              diff_counts(stage, target, ctx.src.primary_key, ctx.src.columns))
            progress.rows_inserted += ins
            progress.rows_updated += upd
            progress.rows_deleted += dele
    dialect = ctx.local.dialect.name
    if dialect in ("mysql", "mariadb"):
        _swap_mysql(ctx, stage, target is not None)
    with ctx.writing() as conn:
        if dialect not in ("mysql", "mariadb"):
            _swap_transactional(conn, stage.name, target_name, target is not None)
        if spec.mode == "incremental":
            save_checkpoint(conn, Checkpoint(spec.job, "incremental", cursor=load_cursor))
            progress.cursor = load_cursor
        else:
            clear_checkpoint(conn, spec.job)


def _swap_transactional(conn: Connection, staging: str, target: str, exists: bool) -> None:
    """PostgreSQL and SQLite: DDL is transactional, so drop + rename is atomic."""
    quote = conn.dialect.identifier_preparer.quote
    if exists:
        conn.exec_driver_sql(f"DROP TABLE {quote(target)}")
    conn.exec_driver_sql(f"ALTER TABLE {quote(staging)} RENAME TO {quote(target)}")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(target)} RENAME CONSTRAINT {quote(pk_name(staging))} "
            f"TO {quote(pk_name(target))}"
        )


def _swap_mysql(ctx: SyncContext, stage: Table, exists: bool) -> None:
    """MySQL: one atomic RENAME TABLE of both tables, then drop the old one."""
    target = ctx.spec.target
    old = f"{target}__syncd_old"
    with ctx.local.connect() as conn:
        if ctx.guard is not None:  # MySQL DDL commits by itself: prove ownership just before
            ctx.guard(conn)
            conn.commit()
        quote = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(old)}")
        if exists:
            conn.exec_driver_sql(
                f"RENAME TABLE {quote(target)} TO {quote(old)}, {quote(stage.name)} TO "
                f"{quote(target)}"
            )
            conn.exec_driver_sql(f"DROP TABLE {quote(old)}")
        else:
            conn.exec_driver_sql(f"RENAME TABLE {quote(stage.name)} TO {quote(target)}")
        conn.commit()
