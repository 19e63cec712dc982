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

from collections.abc import Generator, Iterator, Sequence
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


def read_batches(conn: Connection, query: Select[Any], batch_size: int,
                 stream: bool = False) -> Generator[list[Any], None, None]:
    """Run ``query`` on the DBAPI cursor and yield its rows in lists of ``batch_size``.

    ``stream``: a server-side cursor (a full load reads the table in one query).
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    args: Any = [params[name] for name in compiled.positiontup or ()] \
        if compiled.positional else params
    args = _bind(compiled, args)
    raw: Any = conn.connection.dbapi_connection
    name = conn.dialect.name
    if name in ("mysql", "mariadb"):
        yield from _mysql(raw, conn, str(compiled), args, batch_size, stream)
        return
    if name == "postgresql" and stream:
        cursor = raw.cursor(name="syncd_read")
        cursor.itersize = batch_size
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(str(compiled), args)
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield rows
    finally:
        _close(cursor)


def fetch_rows(conn: Connection, query: Select[Any], limit: int) -> list[Any]:
    """All rows of a query known to return at most ``limit`` rows (an incremental batch)."""
    batches = read_batches(conn, query, max(limit, 1))
    try:
        return next(batches, [])
    finally:
        batches.close()


def _mysql(raw: Any, conn: Connection, sql: str, args: Any, batch_size: int,
           stream: bool) -> Iterator[list[Any]]:
    cursors = conn.dialect.loaded_dbapi.cursors
    cursor = raw.cursor(cursors.SSCursor if stream else cursors.Cursor)
    saved = raw.decoders
    raw.decoders = {}  # no conversion: values stay the text MySQL sent
    try:
        cursor.execute(sql, args)
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield list(rows)
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
