"""Writing batches into the local database, one fast path per dialect.

Values arrive converted by the type map (``convert.RowConverter``): text,
numbers, bytes or None, written as they are, with no SQLAlchemy type processing.

- PostgreSQL: COPY (CSV) into the table (full loads) or into a temporary table,
  then one ``INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM``.
- MySQL/MariaDB: batched multi-row ``INSERT ... ON DUPLICATE KEY UPDATE``, strict mode.
- SQLite: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS NOT``.

Unchanged rows are never rewritten; ``upsert`` returns (inserted, updated). A
value the local database refuses fails the batch naming the column and the row.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, repeat
from operator import countOf
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from syncd.engine.errors import ValueUnrepresentable

Row = Sequence[Any]
_NONE = type(None)


@dataclass(frozen=True)
class Target:
    """The local table a writer fills: its name, columns (in row order) and key."""

    job: str
    table: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    text_compared: frozenset[str] = frozenset()  # PostgreSQL: compare these as text


class Writer:
    """Writes batches of rows (in ``target.columns`` order) into one local table."""

    def __init__(self, conn: Connection, target: Target) -> None:
        self.conn = conn
        self.target = target
        self.quote = conn.dialect.identifier_preparer.quote
        self.columns = list(target.columns)
        self.pk = list(target.primary_key)
        self.pk_index = [self.columns.index(name) for name in self.pk]

    def insert(self, rows: list[Row]) -> None:
        """Append rows known to be new (a staging table)."""
        raise NotImplementedError

    def upsert(self, rows: list[Row]) -> tuple[int, int]:
        """Insert new rows, update changed ones, leave equal ones alone."""
        raise NotImplementedError

    def _names(self, names: Sequence[str]) -> str:
        return ", ".join(self.quote(name) for name in names)

    def _refused(self, rows: list[Row], column: str | None, line: int | None,
                 error: BaseException) -> ValueUnrepresentable:
        """The error of a value the local database refused, naming column and row."""
        where = f'column "{column}"' if column else "a column"
        if line is not None and 0 < line <= len(rows):
            row = rows[line - 1]
            key = ", ".join(f"{n}={_short(row[i])}" for n, i in zip(self.pk, self.pk_index))
            where += f", row with {key}"
        orig = getattr(error, "orig", error)
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        return ValueUnrepresentable(
            f'job "{self.target.job}": {where}: the local database refused the value: '
            f"{_short(first, 300)}")


class _ExecutemanyWriter(Writer):
    """Shared by MySQL and SQLite: DBAPI executemany, values as they are."""

    placeholder = "?"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        marks = ", ".join([self.placeholder] * len(self.columns))
        self.insert_sql = (
            f"INSERT INTO {self.quote(self.target.table)} ({self._names(self.columns)}) "
            f"VALUES ({marks})"
        )

    def _executemany(self, sql: str, rows: list[Row]) -> int:
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(sql, rows)
            return int(cursor.rowcount)
        except self.conn.dialect.loaded_dbapi.Error as exc:
            raise self._classify(exc, rows) from exc
        finally:
            cursor.close()

    def _classify(self, exc: BaseException, rows: list[Row]) -> BaseException:
        return exc

    def _existing(self, rows: list[Row]) -> int:
        """How many of the rows' keys the table already holds."""
        keys = [tuple(row[i] for i in self.pk_index) for row in rows]
        cols = self._names(self.pk)
        one = "(" + ", ".join([self.placeholder] * len(self.pk)) + ")"
        found = 0
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                test = f"({cols})" if len(self.pk) > 1 else cols
                marks = ", ".join([one if len(self.pk) > 1 else self.placeholder] * len(chunk))
                cursor.execute(
                    f"SELECT COUNT(*) FROM {self.quote(self.target.table)} "
                    f"WHERE {test} IN ({marks})", [v for key in chunk for v in key])
                row = cursor.fetchone()
                found += int(row[0]) if row else 0
        finally:
            cursor.close()
        return found

    def insert(self, rows: list[Row]) -> None:
        if rows:
            self._executemany(self.insert_sql, rows)


_MYSQL_SPECIAL = ("\\", "'", '"', "\x00", "\n", "\r", "\x1a")  # what PyMySQL escapes
STATEMENT_BYTES = 4 * 1024 * 1024  # below MySQL's default max_allowed_packet (16 MB)
_MYSQL_VALUE_ERRORS = {1264, 1265, 1366, 1292, 1406, 1690, 3140, 4038, 4025}


def _mysql_literals(column: Sequence[Any], raw: Any) -> list[str]:
    """A column's values as MySQL literals, exactly as PyMySQL writes them: text without
    a character to escape is quoted as it is, an integer is its digits (both in C for
    a whole column); every other value is escaped by PyMySQL (``connection.escape``)."""
    types = set(map(type, column))
    if types <= {str, _NONE}:
        joined = "".join(filter(None, column))
        if not any(c in joined for c in _MYSQL_SPECIAL):
            if _NONE not in types:
                return list(map("'{}'".format, column))
            return ["NULL" if v is None else f"'{v}'" for v in column]
    elif types <= {int, _NONE}:
        if _NONE not in types:
            return list(map(str, column))
        return ["NULL" if v is None else str(v) for v in column]
    return [raw.escape(v) for v in column]


class MySQLWriter(_ExecutemanyWriter):
    placeholder = "%s"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # Strict mode: a value MySQL would truncate or clip is an error, never a warning.
        self.conn.exec_driver_sql(
            "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_ALL_TABLES')")

    def _classify(self, exc: BaseException, rows: list[Row]) -> BaseException:
        code = exc.args[0] if exc.args else None
        if code not in _MYSQL_VALUE_ERRORS:
            return exc
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        column = re.search(r"column `?'?([^`'\s]+)`?'?", text)
        line = re.search(r"at row (\d+)", text)
        return self._refused(rows, column.group(1) if column else None,
                             int(line.group(1)) if line else None, exc)

    def insert(self, rows: list[Row]) -> None:
        if rows:
            self._insert_values(rows, "")

    def _insert_values(self, rows: list[Row], suffix: str) -> int:
        """Multi-row INSERTs of at most STATEMENT_BYTES each; returns the affected rows.

        Text without a character that needs escaping is quoted as it is, a column at a
        time; every other value is escaped by PyMySQL itself (``connection.escape``), so
        the statement is exactly the one PyMySQL's executemany would send, built faster.
        """
        raw: Any = self.conn.connection.dbapi_connection
        head = (f"INSERT INTO {self.quote(self.target.table)} ({self._names(self.columns)}) "
                "VALUES ")
        tuples = list(map(",".join, zip(*(_mysql_literals(c, raw) for c in zip(*rows)))))
        # Row i ends statement j when the statement's rows reach STATEMENT_BYTES.
        ends = list(accumulate(map(len, tuples)))
        affected, first = 0, 0
        cursor = raw.cursor()
        try:
            while first < len(tuples):
                base = (ends[first - 1] + 3 * first) if first else 0
                last = min(len(tuples) - 1, bisect_left(
                    range(len(tuples)), base + STATEMENT_BYTES, lo=first,
                    key=lambda i: ends[i] + 3 * (i + 1)))
                sql = head + "(" + "),(".join(tuples[first:last + 1]) + ")" + suffix
                try:
                    affected += cursor.execute(sql)
                except self.conn.dialect.loaded_dbapi.Error as exc:
                    raise self._classify(exc, rows[first:last + 1]) from exc
                first = last + 1
        finally:
            cursor.close()
        return affected

    def upsert(self, rows: list[Row]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        existing = self._existing(rows)
        others = [c for c in self.columns if c not in self.pk] or self.pk[:1]
        update = ", ".join(f"{self.quote(c)} = VALUES({self.quote(c)})" for c in others)
        affected = self._insert_values(rows, f" ON DUPLICATE KEY UPDATE {update}")
        inserted = len(rows) - existing
        # Affected rows: 1 per insert, 2 per update, 0 per unchanged row (1 with FOUND_ROWS).
        found_rows = self.conn.dialect.loaded_dbapi.constants.CLIENT.FOUND_ROWS
        raw = self.conn.connection.dbapi_connection
        if getattr(raw, "client_flag", 0) & found_rows:
            updated = affected - len(rows)
        else:
            updated = (affected - inserted) // 2
        return inserted, max(updated, 0)


@dataclass(frozen=True)
class ColumnBatch:
    """A batch as its columns, each a sequence of ``rows`` values (SQLite full loads)."""

    columns: list[Sequence[Any]]
    rows: int


ROWS_PER_INSERT = 1000  # SQLite: rows of one multi-row INSERT (fewer if too many values)


class SQLiteWriter(_ExecutemanyWriter):
    def insert(self, rows: list[Row] | ColumnBatch) -> None:  # type: ignore[override]
        """A ColumnBatch goes in as multi-row INSERTs: SQLite inserts each statement's
        rows without the GIL (executemany takes it back after every row)."""
        if not isinstance(rows, ColumnBatch):
            super().insert(rows)
            return
        width, count = len(self.columns), rows.rows
        values: list[Any] = [None] * (count * width)
        for i, column in enumerate(rows.columns):
            values[i::width] = column
        raw: Any = self.conn.connection.dbapi_connection
        most = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width
        step = max(1, min(ROWS_PER_INSERT, most))
        head = (f"INSERT INTO {self.quote(self.target.table)} ({self._names(self.columns)}) "
                "VALUES ")
        marks = "(" + ", ".join(["?"] * width) + ")"
        cursor = raw.cursor()
        try:
            for first in range(0, count, step):
                n = min(step, count - first)
                cursor.execute(head + ", ".join([marks] * n),
                               values[first * width:(first + n) * width])
        finally:
            cursor.close()

    def upsert(self, rows: list[Row]) -> tuple[int, int]:
        if not rows:
            return 0, 0
        existing = self._existing(rows)
        target = self.quote(self.target.table)
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


class _CsvNull(int):
    """Written by csv as an unquoted \\N: the NULL marker of our COPY CSV (strings are quoted)."""

    def __str__(self) -> str:
        return "\\N"


CSV_NULL = _CsvNull(0)
_TEXT_SPECIAL = ("\\", "\t", "\n", "\r")


@dataclass(frozen=True)
class CopyData:
    """A batch encoded for PostgreSQL's COPY: its text, format ("text" or "csv"), row count."""

    data: str | bytes  # bytes: PostgreSQL's own COPY output, passed on as it came
    format: str
    rows: int

    def decoded(self) -> list[Row]:
        """The rows back from the text (to name a refused value's row)."""
        text = self.data.decode() if isinstance(self.data, bytes) else self.data
        if self.format == "csv":
            return [[None if v == "\\N" else v for v in row]
                    for row in csv.reader(io.StringIO(text))]
        return [decode_copy_line(line) for line in text.split("\n")[:self.rows]]


def decode_copy_line(line: str | bytes) -> list[str | None]:
    """One line of COPY text format as its values (NULL as None)."""
    text = line.decode() if isinstance(line, bytes) else line
    return [_unescape(v) for v in text.rstrip("\n").split("\t")]


def encode_copy(rows: Sequence[Row]) -> CopyData:
    """Rows as COPY input: the text format when every value is text or NULL (joined in C,
    escaped only in columns that need it), else CSV written by the csv module."""
    text = _plain_copy_text(rows)
    if text is None:
        text = _copy_text(rows)
    if text is not None:
        return CopyData(text, "text", len(rows))
    return CopyData(copy_csv(list(rows)).getvalue(), "csv", len(rows))


_NULL_TEXT = {None: "\\N"}.get  # (value, value): \N for NULL, else the value itself


def _plain_copy_text(rows: Sequence[Row]) -> str | None:
    """The COPY text of rows of text and NULLs none of which needs escaping, built in C
    with no Python code per row or value; None when some value is not text or needs
    escaping (counted in the text: a tab, newline, carriage return or backslash more
    than the separators and the NULLs put there)."""
    if not rows:
        return ""
    width = len(rows[0])
    if len(set(map(len, rows))) != 1:  # (the counts below assume rows of one width)
        return None
    try:
        nulls = countOf(chain.from_iterable(rows), None)
        lines = map(map, repeat(_NULL_TEXT), rows, rows) if nulls else rows
        text = "\n".join(map("\t".join, lines))
    except TypeError:  # a value that is not text (or not hashable)
        return None
    if (text.count("\t") != len(rows) * (width - 1) or text.count("\n") != len(rows) - 1
            or text.count("\\") != nulls or "\r" in text):
        return None
    return text + "\n"


def _copy_text(rows: Sequence[Row]) -> str | None:
    if not rows:
        return ""
    columns: list[Sequence[Any]] = list(zip(*rows))
    changed = False
    for i, column in enumerate(columns):
        types = set(map(type, column))
        if not types <= {str, _NONE}:
            return None
        joined = "".join(filter(None, column))
        if any(special in joined for special in _TEXT_SPECIAL):
            columns[i] = column = [None if v is None else _escape(v) for v in column]
            changed = True
        if _NONE in types:
            columns[i] = ["\\N" if v is None else v for v in column]
            changed = True
    lines: Any = zip(*columns) if changed else rows
    return "\n".join(map("\t".join, lines)) + "\n"


def _escape(value: str) -> str:
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


_UNESCAPE = re.compile(r"\\(.)")


def _unescape(value: str) -> str | None:
    if value == "\\N":
        return None
    return _UNESCAPE.sub(lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m[1], m[1]), value)


def copy_csv(rows: list[Row]) -> io.StringIO:
    """Rows as a COPY CSV buffer, written by the csv module (in C).

    Every string is quoted; NULL is an unquoted \\N, so NULL, an empty string and
    the text "\\N" stay apart.
    """
    out = [row if None not in row else [CSV_NULL if v is None else v for v in row]
           for row in rows]
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(out)
    buffer.seek(0)
    return buffer


COPY_CHUNK = 4 * 1024 * 1024


class _TextReader:
    """A file over a string that hands out slices (no copy of the whole text)."""

    def __init__(self, text: str | bytes) -> None:
        self.text = text
        self.pos = 0

    def read(self, size: int = -1) -> str | bytes:
        end = len(self.text) if size < 0 else self.pos + size
        chunk = self.text[self.pos:end]
        self.pos += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> str | bytes:
        return self.read(size)


_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:]+))?")


class PostgresWriter(Writer):
    def _copy(self, table_name: str, batch: list[Row] | CopyData) -> None:
        raw = self.conn.connection.dbapi_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        data = batch if isinstance(batch, CopyData) else encode_copy(batch)
        options = "WITH (FORMAT csv, NULL '\\N')" if data.format == "csv" else ""
        try:
            # Few large read()s: every read() needs the GIL back, which a reader thread
            # may hold for a whole switch interval; 4 MB keeps the encoded copy small.
            cursor.copy_expert(
                f"COPY {self.quote(table_name)} ({self._names(self.columns)}) FROM STDIN "
                f"{options}", _TextReader(data.data), size=COPY_CHUNK,
            )
        except self.conn.dialect.loaded_dbapi.DataError as exc:
            context = getattr(getattr(exc, "diag", None), "context", None) or ""
            match = _COPY_CONTEXT.search(context)
            raise self._refused(data.decoded(), match.group(2) if match else None,
                                int(match.group(1)) if match else None, exc) from exc
        finally:
            cursor.close()

    def insert(self, rows: list[Row] | CopyData) -> None:  # type: ignore[override]
        if isinstance(rows, CopyData) and rows.rows or not isinstance(rows, CopyData) and rows:
            self._copy(self.target.table, rows)

    def _compared(self, table: str, names: Sequence[str]) -> str:
        parts = []
        for name in names:
            col = f"{table}.{self.quote(name)}"
            parts.append(f"{col}::text" if name in self.target.text_compared else col)
        return ", ".join(parts)

    def upsert(self, rows: list[Row] | CopyData) -> tuple[int, int]:  # type: ignore[override]
        if not (rows.rows if isinstance(rows, CopyData) else rows):
            return 0, 0
        target = self.quote(self.target.table)
        batch = "syncd_batch"
        self.conn.exec_driver_sql(  # one round trip
            f"DROP TABLE IF EXISTS pg_temp.{batch}; "
            f"CREATE TEMP TABLE {batch} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        self._copy(batch, rows)
        cols = self._names(self.columns)
        others = [c for c in self.columns if c not in self.pk]
        if others:
            sets = ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in others)
            old, new = self._compared(target, others), self._compared("EXCLUDED", others)
            action = f"DO UPDATE SET {sets} WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
        else:
            action = "DO NOTHING"
        sql = (
            f"WITH up AS (INSERT INTO {target} ({cols}) SELECT {cols} FROM {batch} "
            f"ON CONFLICT ({self._names(self.pk)}) {action} RETURNING (xmax = 0) AS ins) "
            "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up"
        )
        try:
            inserted, updated = self.conn.exec_driver_sql(sql).one()
        except sa_exc.IntegrityError as exc:
            raise _duplicate_key(self.target, exc) from exc
        return int(inserted), int(updated)


def _duplicate_key(target: Target, exc: BaseException) -> BaseException:
    if "ON CONFLICT DO UPDATE command cannot affect row a second time" not in str(exc):
        return exc
    return ValueUnrepresentable(
        f'job "{target.job}": one batch holds two rows with the same primary key '
        f"({', '.join(target.primary_key)}): the key is not unique at the source")


def writer_for(conn: Connection, target: Target) -> Writer:
    """The fastest writer for the local database's dialect."""
    name = conn.dialect.name
    if name == "postgresql" and conn.dialect.driver == "psycopg2":
        return PostgresWriter(conn, target)
    if name in ("mysql", "mariadb") and conn.dialect.driver == "pymysql":
        return MySQLWriter(conn, target)
    if name == "sqlite":
        return SQLiteWriter(conn, target)
    raise NotImplementedError(f"local database {name}+{conn.dialect.driver} is not supported")


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
