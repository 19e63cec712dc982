"""Full load: copy the whole source table into a staging table, then swap it in.

The source is read once, in primary-key order, as a stream; every batch is
written to the staging table together with its checkpoint (the last key), so a
crashed load resumes where it stopped. Readers of the local table see the old
table until the swap, then the new one; never a half-loaded table.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, Table, inspect, literal_column, select

from syncd.engine import copylines, fastread
from syncd.engine.catalog import describe_columns
from syncd.engine.checkpoint import Checkpoint, clear_checkpoint, save_checkpoint
from syncd.engine.connect import is_mysql, translated_errors
from syncd.engine.context import SyncContext
from syncd.engine.convert import RowConverter
from syncd.engine.copyread import copy_batches, copy_select_list, key_of
from syncd.engine.drift import record_columns
from syncd.engine.keys import is_duplicate_key, require_unique_key
from syncd.engine.load import ColumnBatch, CopyData, Target, encode_copy, writer_for
from syncd.engine.lookback import read_clock, start_auto
from syncd.engine.memory import LARGE_VALUES, map_large_allocations
from syncd.engine.queries import (
    diff_counts,
    full_scan,
    max_cursor,
    mysql_row_width,
    row_count,
)
from syncd.engine.ranges import catalog_rows
from syncd.engine.readers import (
    FIRST_FETCH,
    compile_query,
    fetch_rows,
    read_batches,
    row_bytes,
    select_list,
)
from syncd.engine.schema import SourceTable, create_local_table, local_table, pk_name
from syncd.engine.typemap import Verbatim
from syncd.engine.values import no_nul


def staging_name(target: str) -> str:
    """The staging table of a local table."""
    return f"{target}__syncd_staging"


def full_load(ctx: SyncContext, point: Checkpoint | None) -> None:
    """Load the whole table (resuming a crashed load of the same job) and swap it in."""
    spec, src, progress = ctx.spec, ctx.src, ctx.progress
    staging = staging_name(spec.target)
    progress.phase = "full"
    if any((plan.source.dialect, plan.source.kind) in LARGE_VALUES for plan in ctx.plans):
        map_large_allocations()  # memory: a batch's large values go back when freed
    if is_mysql(ctx.source):
        progress.reader = ctx.reader
    with ctx.writing() as conn:
        resume = bool(point and point.phase == "full" and point.staging == staging
                      and inspect(conn).has_table(staging))
    if resume:
        assert point is not None
        position = _decode_key(ctx, point.position)
        load_cursor = point.load_cursor
    else:
        position, load_cursor = None, _start_cursor(ctx)
        _create_staging(ctx, staging, load_cursor)
    with translated_errors(f"source table {spec.qualified_table}"), ctx.source.connect() as s:
        # For the progress bar: the catalog's estimate (MySQL's; PostgreSQL's of a table
        # analyzed at least once), else a count (a view, SQLite).
        estimate = catalog_rows(s, src.table)
        progress.rows_total = estimate if estimate is not None else \
            s.execute(row_count(src.table)).scalar_one()

    written = [0]  # rows this load put in the staging table it created (not resumed)

    def checkpoint(conn: Connection, key: tuple[Any, ...], rows: int) -> None:
        save_checkpoint(conn, Checkpoint(spec.job, "full", position=key,
                                         load_cursor=load_cursor, staging=staging))
        written[0] += rows

    try:
        load_batches(ctx, staging, position, checkpoint)
        _swap(ctx, staging, load_cursor, loaded=None if resume else written[0])
    except Exception as exc:
        if is_duplicate_key(exc, ctx.local):  # the staging table's key refused a row
            require_unique_key(spec, ctx.source, src)  # raises, naming the shared key
        raise


def load_batches(ctx: SyncContext, staging: str, position: tuple[Any, ...] | None,
                 checkpoint: Callable[[Connection, tuple[Any, ...], int], None]) -> None:
    """Copy the source's rows after ``position`` (and up to ``ctx.upto``) into ``staging``;
    ``checkpoint(conn, last key, rows)`` records each batch in the batch's transaction."""
    target = ctx.target(staging)
    postgres = ctx.local.dialect.name == "postgresql"
    # The reader thread reads, converts and encodes the next batches while this one is
    # written: Python's work overlaps the local database's.
    batches: Generator[tuple[int, tuple[Any, ...], Any], None, None]
    if copy_through(ctx):
        batches = _prefetch(_copied(ctx, position), name="syncd-copy")
    elif ctx.local.dialect.name == "sqlite":
        # No reader thread: SQLite gives up and retakes the GIL for every statement, and a
        # busy reader thread makes each retake wait (measured: 3x slower with executemany,
        # still 1.8x with multi-row INSERTs). The fast reader sends the next query ahead.
        batches = _prepared(ctx, _read_source(ctx, position))
    elif postgres and is_mysql(ctx.source):
        # Three stages: a thread reads (its waits on the source let the others run, so
        # the source works on the next batch meanwhile), a thread converts and encodes,
        # this one writes. Where it can, the source writes each row's COPY line.
        lines = copylines.lines_possible(ctx.plans) and _narrow(ctx)
        batches = _prefetch(_prepared(ctx, _prefetch(_read_source(ctx, position, lines),
                                                     name="syncd-fetch"), lines))
    else:
        batches = _prefetch(_prepared(ctx, _read_source(ctx, position)))
    try:
        _write_batches(ctx, batches, target, checkpoint)
    finally:
        batches.close()


def _write_batches(ctx: SyncContext,
                   batches: Iterator[tuple[int, tuple[Any, ...], Any]],
                   target: Target,
                   checkpoint: Callable[[Connection, tuple[Any, ...], int], None]) -> None:
    progress, postgres = ctx.progress, ctx.local.dialect.name == "postgresql"
    # One connection for the whole load: a batch costs no pool check-out and ping.
    with ctx.local.connect() as conn, _asynchronous_commit(conn, postgres), \
            _older_objects_frozen(ctx.local.dialect.name == "sqlite"):
        for count, key, values in batches:
            with ctx.writing_on(conn):
                writer_for(conn, target).insert(values)
                checkpoint(conn, key, count)
            values = None  # not held while the next batch is awaited (memory: batch_bytes)
            progress.rows_read += count
            ctx.report()


def _narrow(ctx: SyncContext) -> bool:
    """Rows narrow enough to be read as COPY lines: MySQL's escaping of long texts costs
    more than Python's work on a few wide values. A view (no statistics) and a small table
    (whose average counts its pages' free space) are read as lines."""
    with translated_errors(f"source table {ctx.spec.qualified_table}"), \
            ctx.source.connect() as s:
        stats = s.execute(mysql_row_width(ctx.src.table)).first()
    if stats is None or stats[0] is None or stats[1] is None or int(stats[0]) < 10_000:
        return True
    return int(stats[1]) <= copylines.WIDEST_LINE


@contextmanager
def _older_objects_frozen(freeze: bool) -> Iterator[None]:
    """The objects that exist before the load are left out of the cyclic garbage
    collector's runs until it ends (``gc.freeze``): a batch's rows made it run through
    all of them every few batches (a sixth of a load into SQLite, measured)."""
    if not freeze:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _asynchronous_commit(conn: Connection, postgres: bool) -> Iterator[None]:
    """PostgreSQL: the load's commits do not wait for the disk (a batch lost in a crash is
    lost with its checkpoint: reloaded); the setting ends with the load."""
    if not postgres:
        yield
        return
    conn.exec_driver_sql("SET synchronous_commit = off")
    conn.commit()
    try:
        yield
    finally:
        try:
            conn.rollback()
            conn.exec_driver_sql("RESET synchronous_commit")
            conn.commit()
        except Exception:  # noqa: BLE001  (a broken connection: never pooled again)
            conn.invalidate()


def copy_through(ctx: SyncContext) -> bool:
    """PostgreSQL into PostgreSQL with no converter in the type map: COPY text passes on."""
    return (ctx.source.dialect.name == "postgresql" and ctx.local.dialect.name == "postgresql"
            and all(plan.convert is None for plan in ctx.plans))


def _copied(ctx: SyncContext, position: tuple[Any, ...] | None,
            ) -> Iterator[tuple[int, tuple[Any, ...], Any]]:
    """Each batch as (rows, last key, COPY text), read by COPY (SELECT ...) TO STDOUT."""
    spec, src = ctx.spec, ctx.src
    query = full_scan(src.table, src.columns, src.primary_key, position,
                      copy_select_list(src.cols(), ctx.plans), upto=ctx.upto)
    pk_index = [src.columns.index(name) for name in src.primary_key]
    key_plans = ctx.key_plans()
    with translated_errors(f"source table {spec.qualified_table}"), ctx.source.connect() as s:
        for data, last, _cut in copy_batches(s, query, spec.batch_size, spec.batch_bytes):
            yield data.rows, key_of(last, pk_index, key_plans), data


def _prepared(ctx: SyncContext, batches: Iterator[list[Any]], lines: bool = False,
              ) -> Generator[tuple[int, tuple[Any, ...], Any], None, None]:
    """Each batch as (rows, last key, values for the writer), converted by the type map.

    ``lines``: each row is its COPY line, written by the source (``copylines``)."""
    src = ctx.src
    convert = RowConverter(ctx.spec.job, ctx.plans, src.primary_key, ctx.progress,
                           ctx.spec.on_unrepresentable)
    pk_index = [src.columns.index(name) for name in src.primary_key]
    key_plans = ctx.key_plans()
    local = ctx.local.dialect.name
    trusted = (no_nul,) if is_mysql(ctx.source) else ()
    try:
        for rows in batches:
            item: tuple[int, tuple[Any, ...], Any]
            if isinstance(rows, copylines.Grouped):  # the source's lines, in one value
                grouped = rows.text + "\n"
                item = rows.rows, rows.key, copylines.copy_data(grouped, rows.rows) \
                    if copylines.MARK not in grouped else \
                    _encoded(convert, copylines.batch_values(rows.line_rows()), ())
                del grouped
            elif lines:
                key = copylines.key_of_line(rows[-1][0], pk_index, key_plans)
                text = copylines.batch_text(rows)
                item = len(rows), key, copylines.copy_data(text, len(rows)) \
                    if text is not None else _encoded(convert, copylines.batch_values(rows), ())
            else:
                last = rows[-1]
                key = tuple(plan.key(last[i]) for plan, i in zip(key_plans, pk_index))
                values: Any
                if local == "postgresql":
                    values = _encoded(convert, rows, trusted)
                elif local == "sqlite":
                    values = ColumnBatch(convert.columns(rows), len(rows))
                else:
                    values = convert(rows)
                item = len(rows), key, values
                del last, values
            del rows  # only the encoded batch waits in the queue
            yield item
            del item
    finally:  # a value refused ends the read now: the source's cursor must not linger
        if hasattr(batches, "close"):
            batches.close()


def _encoded(convert: RowConverter, rows: list[Any], trusted: tuple[Any, ...]) -> CopyData:
    """The batch as COPY input. From MySQL (every value text) the text columns are checked
    for NUL characters in the encoded text (one scan) instead of column by column; if it
    holds one, or is not all text, the type map's checks run on every column and decide,
    value by value (an error, or NULL with a warning)."""
    if trusted:
        warned = dict(convert.progress.warnings)
        data = encode_copy(convert(rows, trusted=trusted))
        if data.format == "text" and "\x00" not in data.data:
            return data
        convert.progress.warnings.clear()  # counted again below
        convert.progress.warnings.update(warned)
    return encode_copy(convert(rows))


def _decode_key(ctx: SyncContext, values: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    if values is None:
        return None
    return tuple(ctx.decode(v, name) for v, name in zip(values, ctx.src.primary_key))


def _start_cursor(ctx: SyncContext) -> Any:
    """The highest cursor value before the load starts: where incremental runs take over."""
    if not ctx.spec.cursor or ctx.spec.mode != "incremental":
        return None
    plan = next(p for p in ctx.plans if p.name == ctx.spec.cursor)
    auto = start_auto(ctx)  # lookback = "auto": not past the oldest open transaction
    with translated_errors(f"source table {ctx.spec.qualified_table}"), ctx.source.connect() as s:
        clock = read_clock(s) if auto is not None else None
        rows = fetch_rows(s, max_cursor(ctx.src.table, ctx.spec.cursor), 1)
    value = rows[0][0] if rows else None
    if value is None:
        return None
    if auto is None or clock is None:
        return plan.key(value)
    start = auto.load_start(plan.key(value), clock)
    ctx.progress.lookback = auto.record()
    return start


def _kept_columns(conn: Connection, target: str, src: SourceTable) -> list[Column[Any]]:
    """Columns of the local table that the source no longer has (kept, as DESIGN says)."""
    if not inspect(conn).has_table(target):
        return []
    local = describe_columns(conn, target, None)
    return [Column(name, Verbatim(col.spelling)) for name, col in local.items()
            if name not in src.table.c]


def _create_staging(ctx: SyncContext, staging: str, load_cursor: Any) -> None:
    with ctx.writing() as conn:
        if inspect(conn).has_table(staging):
            conn.exec_driver_sql(f"DROP TABLE {conn.dialect.identifier_preparer.quote(staging)}")
        extra = _kept_columns(conn, ctx.spec.target, ctx.src)
        table = local_table(staging, ctx.plans, ctx.src.primary_key, extra)
        create_local_table(conn, table, ctx.plans)
        if copy_through(ctx) and ctx.src.primary_key:
            # PostgreSQL's own COPY text: the index is built once, after the load (rows
            # converted in Python: kept during the load, which overlaps the Python work)
            quote = conn.dialect.identifier_preparer.quote
            conn.exec_driver_sql(f"ALTER TABLE {quote(staging)} DROP CONSTRAINT "
                                 f"{quote(pk_name(staging))}")
        save_checkpoint(conn, Checkpoint(ctx.spec.job, "full", load_cursor=load_cursor,
                                         staging=staging))


def _read_source(ctx: SyncContext, position: tuple[Any, ...] | None, lines: bool = False,
                 ) -> Iterator[list[Any]]:
    """Stream the source in primary-key order, ``batch_size`` rows at a time (``lines``:
    each row as its COPY line, see ``copylines``)."""
    spec, src = ctx.spec, ctx.src
    with translated_errors(f"source table {spec.qualified_table}"), ctx.source.connect() as s:
        raw: Any = s.connection.dbapi_connection
        read = [copylines.line_column(src.cols(), ctx.plans, raw.charset)] \
            if lines else select_list(src.cols(), ctx.plans)
        query = full_scan(src.table, src.columns, src.primary_key, position, read,
                          upto=ctx.upto)
        if lines and copylines.ranges_possible(ctx.plans, src.primary_key):
            yield from _read_grouped(ctx, s, position, read[0])
        elif ctx.reader == "asyncmy":
            yield from _read_fast(ctx, s, position, read, lines)
        else:
            yield from read_batches(s, query, spec.batch_size, stream=True,
                                    max_bytes=spec.batch_bytes)


def _read_grouped(ctx: SyncContext, conn: Connection, position: tuple[Any, ...] | None,
                  line: Any) -> Iterator[Any]:
    """Batches as key ranges whose lines the source groups into one value each (see
    ``copylines.read_ranges``), all in one snapshot, by the run's MySQL reader."""
    spec, src = ctx.spec, ctx.src
    reader: fastread.Reader | None = None
    if ctx.reader == "asyncmy":
        params = fastread.connect_params(conn.connection.dbapi_connection)
        conn.invalidate()  # closed, not pooled: the reader's connection is the run's only one
        reader = fastread.Reader(params)

        def run(query: Any) -> list[Any]:
            assert reader is not None
            return reader.rows(*compile_query(conn, query)) if not isinstance(query, str) \
                else reader.rows(query, None)
    else:
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

        def run(query: Any) -> list[Any]:
            # Through SQLAlchemy (a grouped value is text, counts and keys numbers): a lost
            # connection is recognised as one, and said so, not hidden by the rollback.
            if isinstance(query, str):
                conn.exec_driver_sql(query)
                return []
            return list(conn.execute(query).all())
    try:
        packet = int(run(select(literal_column("@@max_allowed_packet")))[0][0])
        largest = max(4096, min(spec.batch_bytes, packet - 1024))  # a batch's bytes
        run(f"SET SESSION group_concat_max_len = {largest}")
        yield from copylines.read_ranges(
            run, src.table, src.primary_key[0], line,
            position[0] if position else None, ctx.upto[0] if ctx.upto else None,
            spec.batch_size, largest)
    finally:
        if reader is not None:
            reader.close()


def _read_fast(ctx: SyncContext, conn: Connection, position: tuple[Any, ...] | None,
               read: list[Any], lines: bool) -> Iterator[list[Any]]:
    """The fast reader: one keyset query per batch, all in one snapshot of the source.

    A batch's LIMIT is ``batch_size`` or as many rows as fit in ``batch_bytes`` (the first
    batch is small, to learn how wide the rows are). Into SQLite (no reader thread), the
    next batch's query is sent before a batch is handed on: the source runs it while the
    batch is written.
    """
    spec, src = ctx.spec, ctx.src
    pk_index = [src.columns.index(name) for name in src.primary_key]
    key_plans = ctx.key_plans()
    params = fastread.connect_params(conn.connection.dbapi_connection)
    conn.invalidate()  # closed, not pooled: the reader's connection is the run's only one
    ahead = ctx.local.dialect.name == "sqlite"

    def scan(position: tuple[Any, ...] | None, limit: int) -> tuple[str, Any]:
        query = full_scan(src.table, src.columns, src.primary_key, position, read,
                          upto=ctx.upto)
        return compile_query(conn, query.limit(limit))

    reader = fastread.Reader(params)
    try:
        limit = min(spec.batch_size, FIRST_FETCH)
        if ahead:
            reader.send(*scan(position, limit))
        while True:
            rows = reader.received() if ahead else reader.rows(*scan(position, limit))
            more = len(rows) >= limit
            if more:
                last = rows[-1]
                position = copylines.key_of_line(last[0], pk_index, key_plans) if lines else \
                    tuple(plan.key(last[i]) for plan, i in zip(key_plans, pk_index))
                width = max(1, row_bytes(rows) // len(rows))
                limit = max(1, min(spec.batch_size, spec.batch_bytes // width))
                if ahead:
                    reader.send(*scan(position, limit))
            if rows:
                yield rows
            if not more:
                return
    finally:
        reader.close()


def _prefetch(batches: Iterator[Any], depth: int = 1, name: str = "syncd-read",
              ) -> Generator[Any, None, None]:
    """Batches read by a thread while the consumer works on the last one.

    At most ``depth`` batches are ahead of the consumer, the one being read included: the
    thread reads the next batch only once the consumer has taken the last one (a batch
    read and waiting for a slot would be one more batch in memory).
    """
    slots: queue.Queue[Any] = queue.Queue()
    room = threading.Semaphore(depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            items = iter(batches)
            while True:
                while not room.acquire(timeout=0.5):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                batch = next(items, done)
                slots.put(batch)
                if batch is done:
                    return
                batch = None  # held by the queue alone while the next one is read
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer)
            slots.put(exc)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            room.release()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            item = None
    finally:
        stop.set()
        room.release()
        thread.join()
        if hasattr(batches, "close"):
            batches.close()


def _swap(ctx: SyncContext, staging: str, load_cursor: Any, loaded: int | None = None,
          ) -> None:
    """Count what changed, then replace the local table by the staging table.

    ``loaded``: the rows of a staging table filled by this load alone (not counted again)."""
    spec, progress, src = ctx.spec, ctx.progress, ctx.src
    target_name = spec.target
    stage = local_table(staging, ctx.plans, src.primary_key)
    with ctx.writing() as conn:
        exists = inspect(conn).has_table(target_name)
        if not exists or not src.primary_key:  # without a key, rows are replaced, not matched
            progress.rows_inserted += loaded if loaded is not None else \
                conn.execute(row_count(stage)).scalar_one()
            if exists:
                progress.rows_deleted += conn.execute(
                    row_count(local_table(target_name, [], ()))).scalar_one()
        else:
            present = {c["name"] for c in inspect(conn).get_columns(target_name)}
            target = local_table(target_name, [p for p in ctx.plans if p.name in present],
                                 src.primary_key)
            as_text = {p.name for p in ctx.plans if p.compare_as_text}
            new, old, matched, changed = conn.execute(diff_counts(
                stage, target, src.primary_key, src.columns, as_text)).one()
            ins, upd, dele = new - matched, int(changed), old - matched
            progress.rows_inserted += ins
            progress.rows_updated += upd
            progress.rows_deleted += dele
    dialect = ctx.local.dialect.name
    if dialect in ("mysql", "mariadb"):
        _swap_mysql(ctx, stage, exists)
    with ctx.writing() as conn:
        if dialect not in ("mysql", "mariadb"):
            _swap_transactional(conn, stage.name, target_name, exists, src.primary_key)
        record_columns(conn, spec.job, ctx.plans)
        if spec.mode == "incremental":
            save_checkpoint(conn, Checkpoint(spec.job, "incremental", cursor=load_cursor))
            progress.cursor = load_cursor
        else:
            clear_checkpoint(conn, spec.job)


def _swap_transactional(conn: Connection, staging: str, target: str, exists: bool,
                        key: tuple[str, ...]) -> None:
    """PostgreSQL and SQLite: DDL is transactional, so drop + rename is atomic.

    A PostgreSQL staging table without its primary key gets it here (one sorted index
    build); a table without a key (``keyless_full``) has none."""
    quote = conn.dialect.identifier_preparer.quote
    keyed = bool(key)
    if conn.dialect.name == "postgresql" and keyed and not conn.exec_driver_sql(
            "SELECT 1 FROM pg_index WHERE indrelid = to_regclass(%s) AND indisprimary",
            (quote(staging),)).first():
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(staging)} ADD CONSTRAINT {quote(pk_name(staging))} "
            f"PRIMARY KEY ({', '.join(quote(name) for name in key)})")
    if exists:
        conn.exec_driver_sql(f"DROP TABLE {quote(target)}")
    conn.exec_driver_sql(f"ALTER TABLE {quote(staging)} RENAME TO {quote(target)}")
    if conn.dialect.name == "postgresql" and keyed:
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
