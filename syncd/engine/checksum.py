"""Checksums computed inside each database: the canonical text of ``canonical.py`` in SQL.

For every column, ``column_sql`` writes the SQL that gives the column's
canonical text in MySQL/MariaDB or PostgreSQL, chosen by the column's own type
on that side (a value shows differently in ``numeric(10,2)``, ``decimal(65,30)``
and a SQLite ``TEXT``). A row's text is the columns' texts joined by "|" (free
text preceded by its length as a field of its own, NULL as "N"); a date-time is
written with six decimals (both databases' cheapest exact form of it). A key range's
checksum is the MD5 of its rows' texts joined in key order (``digest_sql``); a hash
segment's is the sum of its rows' hashes (the first 64 bits of each row's MD5) modulo
2**64. Both come with a count.

SQLite has no MD5: ``register_functions`` puts ``canonical.row_text`` and the
hashes on the DBAPI connection syncd opened, as SQL functions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from syncd.engine.canonical import NULL_MARK, Rule, canonical_text, row_text
from syncd.engine.catalog import SourceColumn
from syncd.engine.values import Converter

MOD = 2**64
KEY_BITS = 32  # the key hash that places rows in hash segments


@dataclass(frozen=True)
class Column:
    """One compared column as one side holds it."""

    name: str  # quoted, ready for SQL
    side: SourceColumn  # this side's own description of the column's type
    rule: Rule
    source_tz: str | None = None  # source DATETIME read in this zone (None: UTC)
    key: bool = False  # a primary-key column: never NULL
    same_type: bool = False  # both sides hold the same type of the same database
    charset: str | None = None  # MySQL: the column's character set


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


_DATE_FORMAT = "%Y-%m-%d %H:%i:%s.%f"


def _padded(c: str, fsp: int | None) -> str:
    """A MySQL DATETIME/TIME with ``fsp`` decimals, padded to six (NULL stays NULL)."""
    digits = fsp or 0
    if digits >= 6:
        return c
    return f"CONCAT({c}, '{'.' if digits == 0 else ''}{'0' * (6 - digits)}')"


def mysql_text(col: Column) -> str:
    """The canonical text of a MySQL/MariaDB column, in SQL.

    Values are left to CONCAT_WS to convert (it writes them as CAST(... AS CHAR)
    does, at a fraction of CAST's cost in MariaDB).
    """
    c, kind, rule = col.name, col.side.kind, col.rule.name
    if rule == "uint" or (rule == "int" and kind in ("bit", "year")):
        return f"({c} + 0)"
    if rule == "bits":
        return f"LPAD(BIN({c} + 0), {col.rule.width}, '0')" if kind == "bit" else _chars(col)
    if rule == "decimal" and col.rule.scale is None:
        return (f"CASE WHEN {c} = 0 THEN '0' WHEN INSTR({c}, '.') > 0 THEN "
                f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {c})) ELSE {c} END")
    if rule in ("float8", "float4"):
        return f"({c} + 0e0)" if kind == "float" else c
    if rule == "binary":
        return f"LOWER(HEX({c}))"
    if rule == "uuid":
        return f"LOWER({c})"
    if rule == "date":
        return f"NULLIF({c}, '0000-00-00')"
    if rule == "datetime":
        if col.source_tz:
            moment = f"CONVERT_TZ({c}, {_lit(col.source_tz)}, '+00:00')"
            return (f"CASE WHEN CAST({c} AS CHAR) LIKE '0000-00-00%' THEN NULL ELSE "
                    f"DATE_FORMAT({moment}, {_lit(_DATE_FORMAT)}) END")
        # A zero date is NULL; one with a zero month or day differs: compared row by row.
        return _padded(f"NULLIF({c}, '0000-00-00 00:00:00')", col.side.precision)
    if rule == "time":
        return _padded(c, col.side.precision)
    if rule in ("text", "json") and kind not in ("enum", "set", "inet6", "inet4", "uuid"):
        return _chars(col)
    return c


def _chars(col: Column) -> str:
    if col.charset in (None, "utf8mb4") or col.side.kind in ("json",):
        return col.name
    return f"CONVERT({col.name} USING utf8mb4)"


def postgres_text(col: Column) -> str:
    """The canonical text of a PostgreSQL column, in SQL."""
    c, kind, rule = col.name, col.side.kind, col.rule.name
    if kind in ("bpchar", "inet"):  # the type's own output: char(n) keeps its padding
        return f"CASE WHEN {c} IS NOT NULL THEN concat({c}) END"
    if col.same_type:  # the same type on both sides: its own text, exact
        return f"({c})::text"
    if kind == "bool":
        return f"CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"
    if rule == "uint" and kind == "bit":
        n = f"({c})::bigint"
        return f"(({n})::numeric + CASE WHEN {n} < 0 THEN {MOD} ELSE 0 END)::text"
    if rule in ("int", "uint", "decimal"):
        if kind in ("numeric", "money"):
            n = f"({c})::numeric"
            if col.rule.scale is not None:
                return f"({n})::text"
            return f"CASE WHEN {n} = 0 THEN '0' ELSE trim_scale({n})::text END"
        return f"({c})::text"
    if rule in ("float8", "float4"):
        value = f"({c})::float8" if kind == "float4" else c
        return f"replace(({value})::text, 'e+', 'e')"
    if rule == "binary" and kind == "bytea":
        return f"encode({c}, 'hex')"
    if rule == "datetime" and kind in ("timestamp", "timestamptz"):
        moment = c
        if kind == "timestamptz":
            moment = f"({c} AT TIME ZONE 'UTC')"
        elif col.source_tz:
            moment = f"(({c} AT TIME ZONE {_lit(col.source_tz)}) AT TIME ZONE 'UTC')"
        # Six decimals; BC, infinite and five-digit years as PostgreSQL writes them.
        return (f"CASE WHEN {moment} BETWEEN '0001-01-01' AND '9999-12-31 23:59:59.999999' "
                f"THEN to_char({moment}, 'YYYY-MM-DD HH24:MI:SS.US') ELSE ({moment})::text END")
    if rule == "time" and kind == "time":
        return f"to_char({c}, 'HH24:MI:SS.US')"
    return f"({c})::text"


def column_sql(dialect: str, col: Column) -> str:
    """The canonical text of ``col`` in ``dialect``'s SQL."""
    return mysql_text(col) if dialect == "mysql" else postgres_text(col)


def row_text_sql(dialect: str, columns: Sequence[Column]) -> str:
    """SQL of a row's checksum text (``canonical.row_text``)."""
    parts = []
    for col in columns:
        text = column_sql(dialect, col)
        if col.rule.prefixed:  # its length, then itself (NULL: "N" alone, the text skipped)
            length = f"CHAR_LENGTH({text})" if dialect == "mysql" else f"length({text})::text"
            parts += [length if col.key else f"COALESCE({length}, '{NULL_MARK}')", text]
        else:
            parts.append(text if col.key else f"COALESCE({text}, '{NULL_MARK}')")
    if dialect == "mysql":
        return f"CONCAT_WS('|', {', '.join(parts)})"
    return f"concat_ws('|', {', '.join(parts)})"


def row_hash_sql(dialect: str, columns: Sequence[Column]) -> str:
    """SQL of a row's 64-bit hash (MySQL: unsigned; PostgreSQL: signed; equal modulo 2**64)."""
    row = row_text_sql(dialect, columns)
    if dialect == "mysql":
        return (f"CAST(CONV(SUBSTRING(MD5(CONVERT({row} USING utf8mb4)), 1, 16), 16, 10) "
                "AS UNSIGNED)")
    return f"('x' || substr(md5({row}), 1, 16))::bit(64)::bigint"


def digest_sql(dialect: str, columns: Sequence[Column], key: Column,
               clustered: bool = False, utf8: bool = False) -> str:
    """SQL of a key range's digest: the MD5 of its rows' texts joined in key order.

    One MD5 per segment instead of one per row: the cheapest checksum MariaDB can
    compute. Needs an order both databases agree on: a single integer key.
    MySQL's GROUP_CONCAT needs ``group_concat_max_len`` raised (``Side.reading``).
    ``clustered`` (InnoDB): a primary-key range is read in key order, no sort needed
    (were it ever read otherwise, the digests would differ and the rows be compared).
    ``utf8`` (MySQL): the row text is already in a UTF-8 character set, so its bytes are
    hashed as they are (a conversion costs MariaDB as much as a column).
    """
    if dialect == "sqlite":
        return f"syncd_digest({key.name}, {', '.join(c.name for c in columns)})"
    row = row_text_sql(dialect, columns)
    if dialect == "mysql":
        order = "" if clustered else f" ORDER BY {key.name}"
        joined = f"GROUP_CONCAT({row}{order} SEPARATOR '\\n')"
        return f"MD5({joined})" if utf8 else f"MD5(CONVERT({joined} USING utf8mb4))"
    return f"md5(string_agg({row}, E'\\n' ORDER BY {key.name}))"


def range_digest_sql(dialect: str, columns: Sequence[Column], key: Column, table: str,
                     clustered: bool = False, n: int = 0, utf8: bool = False) -> str:
    """SQL of ``n``, the count and the digest of the rows whose key is in ``[:lo<n>, :last<n>]``.

    PostgreSQL reads the range in key order in a subquery (an index range scan) and
    aggregates it as it comes, instead of sorting each range inside ``string_agg``
    (were the order ever another, the digests would differ and the rows be compared).
    """
    where = f"{key.name} >= :lo{n} AND {key.name} <= :last{n}"
    if dialect != "postgresql":
        return f"SELECT {n}, COUNT(*), {digest_sql(dialect, columns, key, clustered, utf8)} " \
               f"FROM {table} WHERE {where}"
    return (f"SELECT {n}, COUNT(*), md5(string_agg(syncd_row, E'\\n')) FROM (SELECT "
            f"{row_text_sql(dialect, columns)} AS syncd_row FROM {table} WHERE {where} "
            f"ORDER BY {key.name}) syncd_range")


def utf8_sql(columns: Sequence[Column], table: str) -> str:
    """MySQL: SQL of the character set of a row's text (one row, also for an empty table)."""
    row = row_text_sql("mysql", columns)
    return f"SELECT CHARSET(GROUP_CONCAT({row})) FROM {table} WHERE 1 = 0"


UTF8_CHARSETS = ("utf8mb4", "utf8mb3", "utf8", "ascii")  # their bytes are UTF-8 as they are


def row_width_sql(dialect: str, columns: Sequence[Column], table: str, rows: int) -> str:
    """SQL of the average length of the first ``rows`` rows' texts (to size segments)."""
    if dialect == "sqlite":
        return "SELECT NULL"
    length = "LENGTH" if dialect == "mysql" else "octet_length"
    return (f"SELECT AVG({length}({row_text_sql(dialect, columns)})) FROM "
            f"(SELECT * FROM {table} LIMIT {rows}) syncd_sample")


def key_hash_sql(dialect: str, columns: Sequence[Column]) -> str:
    """SQL of a row's key hash: the first 32 bits of the MD5 of its key's canonical text."""
    if dialect == "sqlite":
        return f"syncd_key_hash({', '.join(c.name for c in columns)})"
    parts = []
    for col in columns:
        text = column_sql(dialect, col)
        null = f"'{NULL_MARK}'"
        if dialect == "mysql":
            parts.append(f"COALESCE(CONCAT(CHAR_LENGTH({text}), ':', {text}), {null})")
        else:
            parts.append(f"coalesce(length({text})::text || ':' || {text}, {null})")
    if dialect == "mysql":
        row = f"CONVERT(CONCAT_WS('|', {', '.join(parts)}) USING utf8mb4)"
        return f"CAST(CONV(SUBSTRING(MD5({row}), 1, 8), 16, 10) AS UNSIGNED)"
    row = f"concat_ws('|', {', '.join(parts)})"
    return f"('x' || substr(md5({row}), 1, 8))::bit(32)::bigint"


def sum_sql(dialect: str, columns: Sequence[Column]) -> str:
    """SQL of a segment's checksum (compare modulo 2**64)."""
    if dialect == "sqlite":
        return f"syncd_row_sum({', '.join(c.name for c in columns)})"
    return f"SUM({row_hash_sql(dialect, columns)})"


def bucket_sql(dialect: str, hash_sql: str, width: int) -> str:
    """The hash segment of a row, for segments ``width`` hash values wide."""
    return f"(({hash_sql}) DIV {width})" if dialect == "mysql" else f"(({hash_sql}) / {width})"


# --- SQLite: the same texts and hashes, as Python functions on the connection ------------

@dataclass(frozen=True)
class PythonSide:
    """What SQLite's functions need to compute a side's texts like the other database."""

    rules: tuple[Rule, ...]
    key_rules: tuple[Rule, ...]
    style: str  # the other database's dialect: how it writes floats
    convert: tuple[Converter | None, ...] = ()  # a SQLite source: the type map's converters
    key_convert: tuple[Converter | None, ...] = ()  # the same, of the key columns


def md5_bits(text: str, bits: int) -> int:
    """The first ``bits`` bits of the MD5 of ``text`` (UTF-8), as an unsigned integer."""
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False)
    return int.from_bytes(digest.digest()[: bits // 8], "big")


def python_row_hash(side: PythonSide, values: Sequence[Any]) -> int:
    """A row's 64-bit hash, computed as the SQL of the other databases computes it."""
    values = _converted(side.convert, values)
    return md5_bits(row_text(list(side.rules), values, side.style), 64)


def python_key_hash(side: PythonSide, values: Sequence[Any]) -> int:
    """A row's key hash, as ``key_hash_sql`` computes it."""
    parts = []
    for rule, value in zip(side.key_rules, _converted(side.key_convert, values)):
        text = canonical_text(rule, value, side.style)
        parts.append(NULL_MARK if text is None else f"{len(text)}:{text}")
    return md5_bits("|".join(parts), KEY_BITS)


def _converted(converters: Sequence[Converter | None], values: Sequence[Any]) -> list[Any]:
    if not converters:
        return list(values)
    out = []
    for convert, value in zip(converters, values):
        if convert is not None and value is not None:
            try:
                value = convert(value)
            except Exception:  # noqa: BLE001  (a value the local type refuses never hashes equal)
                value = "\x00unrepresentable"
        out.append(value)
    return out


def register_functions(dbapi_connection: Any, side: PythonSide) -> None:
    """Put ``syncd_row_sum`` (aggregate) and ``syncd_key_hash`` on a SQLite connection."""

    class RowSum:
        def __init__(self) -> None:
            self.total = 0

        def step(self, *values: Any) -> None:
            self.total = (self.total + python_row_hash(side, values)) % MOD

        def finalize(self) -> str:
            return str(self.total)

    class Digest:
        def __init__(self) -> None:
            self.rows: list[tuple[Any, str]] = []

        def step(self, key: Any, *values: Any) -> None:
            self.rows.append((key, row_text(list(side.rules), _converted(side.convert, values),
                                            side.style)))

        def finalize(self) -> str | None:
            if not self.rows:
                return None
            self.rows.sort(key=lambda r: r[0])
            text = "\n".join(t for _, t in self.rows)
            return hashlib.md5(text.encode("utf-8", "surrogatepass"),
                               usedforsecurity=False).hexdigest()

    def key_hash(*values: Any) -> int:
        return python_key_hash(side, values)

    dbapi_connection.create_aggregate("syncd_row_sum", -1, RowSum)
    dbapi_connection.create_aggregate("syncd_digest", -1, Digest)
    dbapi_connection.create_function("syncd_key_hash", -1, key_hash, deterministic=True)
