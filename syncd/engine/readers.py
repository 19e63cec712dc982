"""Reading source rows in batches, every value as the source itself writes it.

There is one read path for full loads, incremental runs and reconcile. The
query is compiled by SQLAlchemy and run on the DBAPI cursor, so no SQLAlchemy
type processing touches the values:
- MySQL: PyMySQL with no value conversion: the text MySQL sent (bytes for
  binary columns). Converting to Decimal or datetime and back to text would
  cost more than the read itself, and loses nothing only if done perfectly.
- PostgreSQL: columns are selected as ``::text`` (see ``select_list``): the
  server's own text keeps infinity, BC dates, NaN, intervals and JSON as they are.
- SQLite: the values as stored.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Double, Select, Text, cast, literal_column
from sqlalchemy.dialects import postgresql

from syncd.engine.typemap import ColumnPlan


def select_list(columns: Sequence[Column[Any]], plans: Sequence[ColumnPlan],
                ) -> list[ColumnElement[Any]]:
    """What to select for each column so that its value arrives in the plan's form."""
    out: list[ColumnElement[Any]] = []
    for col, plan in zip(columns, plans):
        if plan.read == "text":
            out.append(cast(col, Text).label(col.name))
        elif plan.read == "money":
            out.append(cast(cast(col, postgresql.NUMERIC()), Text).label(col.name))
        elif plan.read == "double" and plan.source.dialect == "postgresql":
            out.append(cast(cast(col, Double()), Text).label(col.name))
        elif plan.read == "double":  # MySQL FLOAT: its text has 6 digits, a DOUBLE's is exact
            out.append((col + literal_column("0e0")).label(col.name))
        else:
            out.append(col)
    return out


FETCH_ROWS = 2000  # rows per driver fetch (fewer when rows are wide)
FIRST_FETCH = 16


class Batcher:
    """Cuts a driver's fetches into batches of ``batch_size`` rows or ``max_bytes`` bytes.

    The size of a fetch is estimated from a sample of its rows (the length of each
    text or binary value, 8 bytes for other values), so the cost stays far below
    that of reading the rows.
    """

    def __init__(self, batch_size: int, max_bytes: int | None = None) -> None:
        self.batch_size = batch_size
        self.max_bytes = max_bytes
        self.cut_by_bytes = False  # the last batch ended at max_bytes, not at batch_size

    def __call__(self, fetch: Callable[[int], Sequence[Any]]) -> Iterator[list[Any]]:
        # The first fetch is small: how wide the rows are is not known yet.
        step = min(self.batch_size, FIRST_FETCH if self.max_bytes else FETCH_ROWS)
        batch: list[Any] = []
        size = 0
        while True:
            rows = fetch(max(1, min(step, self.batch_size - len(batch))))
            if not rows:
                break
            batch.extend(rows)
            if self.max_bytes:
                got = row_bytes(rows)
                size += got
                # One fetch holds at most about an eighth of a batch's bytes.
                step = max(1, min(FETCH_ROWS, self.max_bytes * len(rows) // (8 * got or 1)))
            self.cut_by_bytes = bool(self.max_bytes and size >= self.max_bytes)
            if len(batch) >= self.batch_size or self.cut_by_bytes:
                yield batch
                batch, size = [], 0
        self.cut_by_bytes = False
        if batch:
            yield batch


def row_bytes(rows: Sequence[Sequence[Any]]) -> int:
    """About how many bytes the values of ``rows`` take (from a sample of at most 32 rows)."""
    if not rows:
        return 0
    every = max(1, len(rows) // 32)
    sample = rows[::every]
    total = sum(len(v) if type(v) in (str, bytes) else 8
                for row in sample for v in row if v is not None)
    return total * len(rows) // len(sample)


def compile_query(conn: Connection, query: Select[Any]) -> tuple[str, Any]:
    """The query's SQL for the DBAPI cursor and its parameters (bind processors applied)."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args: Any = [params[name] for name in compiled.positiontup or ()] \
        if compiled.positional else params
    return str(compiled), _bind(compiled, args)


def read_batches(conn: Connection, query: Select[Any], batch_size: int,
                 stream: bool = False, max_bytes: int | None = None,
                 batcher: Batcher | None = None) -> Generator[list[Any], None, None]:
    """Run ``query`` on the DBAPI cursor and yield its rows in lists of ``batch_size``
    (or fewer: a batch also ends at ``max_bytes``).

    ``stream``: an unbuffered (server-side) cursor, for a result that may be large.
    """
    sql, args = compile_query(conn, query)
    cut = batcher or Batcher(batch_size, max_bytes)
    raw: Any = conn.connection.dbapi_connection
    name = conn.dialect.name
    if name in ("mysql", "mariadb"):
        yield from _mysql(raw, conn, sql, args, cut, stream)
        return
    if name == "postgresql" and stream:
        cursor = raw.cursor(name="syncd_read")
        cursor.itersize = batch_size
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql, args)
        yield from cut(cursor.fetchmany)
    finally:
        _close(cursor)


def fetch_rows(conn: Connection, query: Select[Any], limit: int) -> list[Any]:
    """All rows of a query known to return at most ``limit`` rows (an incremental batch)."""
    batches = read_batches(conn, query, max(limit, 1))
    try:
        return next(batches, [])
    finally:
        batches.close()


def fetch_batch(conn: Connection, query: Select[Any], limit: int,
                max_bytes: int | None) -> tuple[list[Any], bool]:
    """The first rows of ``query`` (at most ``limit``), stopping at ``max_bytes``.

    Returns the rows and whether they ended at ``max_bytes`` (more rows may follow).
    Read unbuffered, so a result of wide rows never sits whole in memory.
    """
    cut = Batcher(max(limit, 1), max_bytes)
    batches = read_batches(conn, query, max(limit, 1), stream=True, batcher=cut)
    try:
        rows = next(batches, [])
        return rows, cut.cut_by_bytes
    finally:
        batches.close()


def _mysql(raw: Any, conn: Connection, sql: str, args: Any, cut: Batcher,
           stream: bool) -> Iterator[list[Any]]:
    cursors = conn.dialect.loaded_dbapi.cursors
    cursor = raw.cursor(cursors.SSCursor if stream else cursors.Cursor)
    saved = raw.decoders
    raw.decoders = {}  # no conversion: values stay the text MySQL sent
    try:
        cursor.execute(sql, args)
        yield from cut(cursor.fetchmany)
    finally:
        raw.decoders = saved
        _close(cursor)


def _close(cursor: Any) -> None:
    """Close a cursor; a connection lost under it must not hide the error that lost it.

    After a lost connection PyMySQL's ``close()`` of an unbuffered cursor raises
    AttributeError (and so would the result's ``__del__``) while draining rows from a
    socket that is gone; the read's own error (2013, lost connection) is what counts.
    """
    try:
        cursor.close()
    except Exception:  # noqa: BLE001  (the real error is already on its way up)
        result = getattr(cursor, "_result", None)
        if result is not None:
            result.unbuffered_active = False


def _bind(compiled: Any, args: Any) -> Any:
    """Apply the bind processors SQLAlchemy would apply (key values of the keyset)."""
    processors = compiled._bind_processors
    if not processors:
        return args

    def process(name: str, value: Any) -> Any:
        # An expanded IN list names its values name_1, name_2... after the list's name.
        proc = processors.get(name) or processors.get(name.rsplit("_", 1)[0])
        if proc is None or value is None or isinstance(value, str):
            return value  # a key as the source stored it (SQLite) is compared as it is
        return proc(value)

    if isinstance(args, dict):
        return {name: process(name, value) for name, value in args.items()}
    return [process(name, value) for name, value in zip(compiled.positiontup or (), args)]
