"""Reading source rows in batches.

``typed_batches`` streams through SQLAlchemy (server-side cursor), values
converted to Python types. ``mysql_text_batches`` is the fast path from MySQL
into PostgreSQL: PyMySQL hands every value over as the text MySQL sent, which
COPY takes as it is; converting to Decimal or datetime and back to text costs
more than the read itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Select
from sqlalchemy import types as sqltypes

from syncd.engine.convert import ZERO_DATE_PREFIX
from syncd.engine.spec import Progress


def typed_batches(conn: Connection, query: Select[Any], batch_size: int) -> Iterator[list[Any]]:
    """Stream ``query`` in lists of ``batch_size`` rows."""
    result = conn.execution_options(stream_results=True, max_row_buffer=batch_size) \
        .execute(query)
    for partition in result.partitions(batch_size):
        yield list(partition)


def mysql_text_batches(conn: Connection, query: Select[Any], batch_size: int,
                       ) -> Iterator[list[Any]]:
    """Stream ``query`` from MySQL with every value as text (binary columns as bytes)."""
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args: Any = [params[name] for name in compiled.positiontup or ()] \
        if compiled.positional else params
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor(conn.dialect.loaded_dbapi.cursors.SSCursor)
    saved = raw.decoders
    raw.decoders = {}  # no conversion: values stay the text MySQL sent
    failed = False
    try:
        cursor.execute(str(compiled), args)
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield rows
    except Exception:
        failed = True
        raise
    finally:
        raw.decoders = saved
        if failed:
            _close_after_error(cursor)
        else:
            cursor.close()


def _close_after_error(cursor: Any) -> None:
    """Close a streaming cursor whose read failed, never hiding that error.

    After a lost connection PyMySQL's ``close()`` of an unbuffered cursor raises
    AttributeError (and so would the result's ``__del__``) while draining rows from a
    socket that is gone; the read's own error (2013, lost connection) is what counts.
    """
    try:
        cursor.close()
    except Exception:  # noqa: BLE001  (the connection is gone: nothing left to drain)
        result = getattr(cursor, "_result", None)
        if result is not None:
            result.unbuffered_active = False


def can_read_text(source: Engine, local: Engine, source_timezone: str) -> bool:
    """True when raw-text reads work: MySQL (PyMySQL) into PostgreSQL, times kept as they are."""
    return (source.dialect.name in ("mysql", "mariadb") and source.dialect.driver == "pymysql"
            and local.dialect.name == "postgresql" and local.dialect.driver == "psycopg2"
            and source_timezone == "UTC")


def text_to_value(type_: Any) -> Callable[[Any], Any]:
    """How to turn a key column's raw text back into its Python value (for checkpoints)."""
    if isinstance(type_, sqltypes.Integer):
        return lambda v: None if v is None else int(v)
    if isinstance(type_, sqltypes.Numeric) and not isinstance(type_, sqltypes.Float):
        return lambda v: None if v is None else Decimal(v)
    return lambda v: v


class TextRowFixer:
    """Raw-text rows: zero dates ("0000-00-00...") become NULL, counted as a warning."""

    def __init__(self, columns: list[tuple[str, Any]], progress: Progress) -> None:
        self.dates = [i for i, (_, type_) in enumerate(columns)
                      if isinstance(type_, (sqltypes.Date, sqltypes.DateTime))]
        self.names = [name for name, _ in columns]
        self.progress = progress

    def __call__(self, rows: list[Any]) -> list[Any]:
        if not self.dates:
            return rows
        out = rows
        for i in self.dates:
            if any(row[i] is not None and row[i].startswith(ZERO_DATE_PREFIX) for row in rows):
                if out is rows:
                    out = [list(row) for row in rows]
                zero = 0
                for row in out:
                    if row[i] is not None and row[i].startswith(ZERO_DATE_PREFIX):
                        row[i] = None
                        zero += 1
                self.progress.warn(f'zero dates in column "{self.names[i]}" stored as NULL', zero)
        return out
