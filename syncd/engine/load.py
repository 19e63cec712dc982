"""Writing batches into the local database, one fast path per dialect.

- PostgreSQL: COPY into the table (full loads) or into a temporary table, then
  one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM``.
- MySQL/MariaDB: batched multi-row ``INSERT ... ON DUPLICATE KEY UPDATE``.
- SQLite: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS NOT``.

Unchanged rows are never rewritten; ``upsert`` returns (inserted, updated).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy import types as sqltypes

from syncd.engine.queries import keys_in

Row = tuple[Any, ...]


class Writer:
    """Writes batches of rows (tuples in ``columns`` order) into one local table."""

    def __init__(self, conn: Connection, table: Table, pk: Sequence[str],
                 columns: Sequence[str]) -> None:
        self.conn = conn
        self.table = table
        self.pk = list(pk)
        self.columns = list(columns)
        self.quote = conn.dialect.identifier_preparer.quote
        self.pk_index = [self.columns.index(name) for name in self.pk]

    def insert(self, rows: list[Row]) -> None:
        """Append rows known to be new (a staging table)."""
        raise NotImplementedError

    def upsert(self, rows: list[Row]) -> tuple[int, int]:
        """Insert new rows, update changed ones, leave equal ones alone."""
        raise NotImplementedError

    def _existing(self, rows: list[Row]) -> int:
        keys = [tuple(row[i] for i in self.pk_index) for row in rows]
        found = 0
        for start in range(0, len(keys), 2000):
            chunk = keys[start:start + 2000]
            found += self.conn.execute(
                select(func.count()).select_from(self.table)
                .where(keys_in(self.table, self.pk, chunk))
            ).scalar_one()
        return found

    def _names(self, names: Sequence[str]) -> str:
        return ", ".join(self.quote(name) for name in names)


class _ExecutemanyWriter(Writer):
    """Shared by MySQL and SQLite: DBAPI executemany with SQLAlchemy's bind processors."""

    placeholder = "?"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        dialect = self.conn.dialect
        self.processors = [self.table.c[name].type.bind_processor(dialect)
                           for name in self.columns]
        marks = ", ".join([self.placeholder] * len(self.columns))
        self.insert_sql = (
            f"INSERT INTO {self.quote(self.table.name)} ({self._names(self.columns)}) "
            f"VALUES ({marks})"
        )

    def _params(self, rows: list[Row]) -> list[Row]:
        procs = self.processors
        if not any(procs):
            return rows
        return [tuple(p(v) if p is not None and v is not None else v
                      for p, v in zip(procs, row)) for row in rows]

    def _executemany(self, sql: str, rows: list[Row]) -> int:
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, self._params(rows))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def insert(self, rows: list[Row]) -> None:
        if rows:
            self._executemany(self.insert_sql, rows)


class MySQLWriter(_ExecutemanyWriter):
    placeholder = "%s"

    def upsert(self, rows: list[Row]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        existing = self._existing(rows)
        others = [c for c in self.columns if c not in self.pk] or self.pk[:1]
        update = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in others)
        affected = self._executemany(f"{self.insert_sql} ON DUPLICATE KEY UPDATE {update}", rows)
        inserted = len(rows) - existing
        # Affected rows: 1 per insert, 2 per update, 0 per unchanged row (1 with FOUND_ROWS).
        found_rows = self.conn.dialect.loaded_dbapi.constants.CLIENT.FOUND_ROWS
        raw = self.conn.connection.dbapi_connection
        if getattr(raw, "client_flag", 0) & found_rows:
            updated = affected - len(rows)
        else:
            updated = (affected - inserted) // 2
        return inserted, max(updated, 0)


class SQLiteWriter(_ExecutemanyWriter):
    def upsert(self, rows: list[Row]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        existing = self._existing(rows)
        target = self.quote(self.table.name)
        others = [c for c in self.columns if c not in self.pk]
        if others:
            sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in others)
            changed = " OR ".join(
                f"{target}.{self.quote(c)} IS NOT excluded.{self.quote(c)}" for c in others
            )
            action = f"DO UPDATE SET {sets} WHERE {changed}"
        else:
            action = "DO NOTHING"
        sql = f"{self.insert_sql} ON CONFLICT ({self._names(self.pk)}) {action}"
        written = self._executemany(sql, rows)
        inserted = len(rows) - existing
        return inserted, max(written - inserted, 0)


def _escape(text: str) -> str:
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def copy_value(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        return _escape(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is int or kind is Decimal or kind is float:
        return str(value)
    if kind is datetime or kind is date or kind is time:
        return value.isoformat()  # type: ignore[no-any-return]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, (dict, list)):
        return _escape(json.dumps(value))
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    return _escape(str(value))


def _copy_json(value: Any) -> str:
    return "\\N" if value is None else _escape(json.dumps(value))


def _copy_number(value: Any) -> str:
    return "\\N" if value is None else str(value)


def _copy_temporal(value: Any) -> str:
    if value is None:
        return "\\N"
    return value if type(value) is str else value.isoformat()  # type: ignore[no-any-return]


def _copy_string(value: Any) -> str:
    if value is None:
        return "\\N"
    return _escape(value) if type(value) is str else copy_value(value)


def copy_encoder(type_: Any) -> Callable[[Any], str]:
    """The COPY encoder for values of a local column type."""
    if isinstance(type_, sqltypes.JSON):
        return _copy_json
    if isinstance(type_, (sqltypes.Integer, sqltypes.Numeric)) and not isinstance(
            type_, sqltypes.Boolean):
        return _copy_number
    if isinstance(type_, (sqltypes.DateTime, sqltypes.Date, sqltypes.Time)):
        return _copy_temporal
    if isinstance(type_, sqltypes.String):
        return _copy_string
    return copy_value


def copy_text(rows: list[Row], encoders: list[Callable[[Any], str]]) -> io.StringIO:
    """Rows as a COPY text-format buffer."""
    lines = ["\t".join([enc(v) for enc, v in zip(encoders, row)]) for row in rows]
    lines.append("")
    return io.StringIO("\n".join(lines))


class _CsvNull(int):
    """Written by csv as an unquoted \\N: the NULL marker of our COPY CSV (strings are quoted)."""

    def __str__(self) -> str:
        return "\\N"


CSV_NULL = _CsvNull(0)


def copy_csv_raw(rows: list[Row], binary: list[int]) -> io.StringIO:
    """Raw-text rows as a COPY CSV buffer, written by the csv module (in C).

    Every string is quoted; NULL is an unquoted \\N, so NULL, an empty string and
    the text "\\N" stay apart. Binary values become bytea hex.
    """
    out: list[Any] = [row if None not in row else [CSV_NULL if v is None else v for v in row]
                      for row in rows]
    if binary:
        out = [list(row) for row in out]
        for row in out:
            for i in binary:
                value = row[i]
                if type(value) is bytes or type(value) is bytearray:
                    row[i] = "\\x" + bytes(value).hex()
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(out)
    buffer.seek(0)
    return buffer


_PLAIN_TEXT = (sqltypes.Integer, sqltypes.Numeric, sqltypes.DateTime, sqltypes.Date,
               sqltypes.Time, sqltypes.String, sqltypes.JSON, sqltypes.Boolean)


class PostgresWriter(Writer):
    def __init__(self, *args: Any, raw_text: bool = False) -> None:
        super().__init__(*args)
        types = [self.table.c[name].type for name in self.columns]
        self.raw_text = raw_text
        self.binary = [i for i, t in enumerate(types) if not isinstance(t, _PLAIN_TEXT)]
        self.encoders = [] if raw_text else [copy_encoder(t) for t in types]

    def _buffer(self, rows: list[Row]) -> io.StringIO:
        if self.raw_text:
            return copy_csv_raw(rows, self.binary)
        return copy_text(rows, self.encoders)

    def _copy(self, table_name: str, rows: list[Row]) -> None:
        raw = self.conn.connection.dbapi_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        buffer = self._buffer(rows)
        csv_format = " WITH (FORMAT csv, NULL '\\N')" if self.raw_text else ""
        try:
            # One read() for the whole batch: every read() needs the GIL back, which a
            # reader thread may hold for a whole switch interval.
            cursor.copy_expert(
                f"COPY {self.quote(table_name)} ({self._names(self.columns)}) FROM STDIN"
                f"{csv_format}", buffer, size=max(len(buffer.getvalue()), 8192),
            )
        finally:
            cursor.close()

    def insert(self, rows: list[Row]) -> None:
        if rows:
            self._copy(self.table.name, rows)

    def upsert(self, rows: list[Row]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        target = self.quote(self.table.name)
        batch = "syncd_batch"
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{batch}")
        self.conn.exec_driver_sql(
            f"CREATE TEMP TABLE {batch} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        self._copy(batch, rows)
        cols = self._names(self.columns)
        others = [c for c in self.columns if c not in self.pk]
        if others:
            sets = ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in others)
            old = ", ".join(f"{target}.{self.quote(c)}" for c in others)
            new = ", ".join(f"EXCLUDED.{self.quote(c)}" for c in others)
            action = f"DO UPDATE SET {sets} WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
        else:
            action = "DO NOTHING"
        sql = (
            f"WITH up AS (INSERT INTO {target} ({cols}) SELECT {cols} FROM {batch} "
            f"ON CONFLICT ({self._names(self.pk)}) {action} RETURNING (xmax = 0) AS ins) "
            "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up"
        )
        inserted, updated = self.conn.exec_driver_sql(sql).one()
        return int(inserted), int(updated)


def writer_for(conn: Connection, table: Table, pk: Sequence[str],
               columns: Sequence[str], raw_text: bool = False) -> Writer:
    """The fastest writer for the local database's dialect.

    ``raw_text``: values are the source's own text (see readers.mysql_text_batches);
    only the PostgreSQL writer takes them.
    """
    name = conn.dialect.name
    if name == "postgresql" and conn.dialect.driver == "psycopg2":
        return PostgresWriter(conn, table, pk, columns, raw_text=raw_text)
    if raw_text:
        raise ValueError("raw-text rows can only be written to PostgreSQL")
    if name in ("mysql", "mariadb") and conn.dialect.driver == "pymysql":
        return MySQLWriter(conn, table, pk, columns)
    if name == "sqlite":
        return SQLiteWriter(conn, table, pk, columns)
    raise NotImplementedError(f"local database {name}+{conn.dialect.driver} is not supported")
