"""Checksums computed inside each database: the canonical text of ``canonical.py`` in SQL.

For every column, ``column_sql`` writes the SQL that gives the column's
canonical text in MySQL/MariaDB or PostgreSQL, chosen by the column's own type
on that side (a value shows differently in ``numeric(10,2)``, ``decimal(65,30)``
and a SQLite ``TEXT``). A row's text is the columns' texts joined by "|" (free
text length-prefixed, NULL as "N"); its hash is the first 64 bits of its MD5; a
segment's checksum is the sum of its rows' hashes modulo 2**64, with its count.

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


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def mysql_text(col: Column) -> str:
    """The canonical text of a MySQL/MariaDB column, in SQL."""
    c, kind, rule = col.name, col.side.kind, col.rule.name
    if rule == "uint" or (rule == "int" and kind in ("bit", "year")):
        return f"CAST({c} + 0 AS CHAR)"
    if rule == "bits":
        if kind == "bit":
            return f"LPAD(BIN({c} + 0), {col.rule.width}, '0')"
        return f"CONVERT({c} USING utf8mb4)"
    if rule == "int":
        return f"CAST({c} AS CHAR)"
    if rule == "decimal":
        t = f"CAST({c} AS CHAR)"
        return (f"CASE WHEN {c} = 0 THEN '0' WHEN INSTR({t}, '.') > 0 THEN "
                f"TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {t})) ELSE {t} END")
    if rule in ("float8", "float4"):
        return f"CAST({c} + 0e0 AS CHAR)" if kind == "float" else f"CAST({c} AS CHAR)"
    if rule == "binary":
        return f"LOWER(HEX({c}))"
    if rule == "uuid":
        return f"LOWER(CAST({c} AS CHAR))"
    if rule == "date":
        return f"NULLIF(CAST({c} AS CHAR), '0000-00-00')"
    if rule == "datetime":
        moment = c if not col.source_tz else f"CONVERT_TZ({c}, {_lit(col.source_tz)}, '+00:00')"
        return (f"CASE WHEN CAST({c} AS CHAR) LIKE '0000-00-00%' THEN NULL ELSE "
                f"DATE_FORMAT({moment}, '%Y-%m-%d %H:%i:%s.%f') END")
    if rule == "time":
        return f"TIME_FORMAT({c}, '%H:%i:%s.%f')"
    if kind in ("inet6", "inet4", "enum", "set", "uuid"):
        return f"CAST({c} AS CHAR)"
    return f"CONVERT({c} USING utf8mb4)"


def postgres_text(col: Column) -> str:
    """The canonical text of a PostgreSQL column, in SQL."""
    c, kind, rule = col.name, col.side.kind, col.rule.name
    if kind == "bool":
        return f"CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"
    if rule == "uint" and kind == "bit":
        n = f"({c})::bigint"
        return f"(({n})::numeric + CASE WHEN {n} < 0 THEN {MOD} ELSE 0 END)::text"
    if rule in ("int", "uint", "decimal"):
        if kind in ("numeric", "money"):
            n = f"({c})::numeric"
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
        return (f"CASE WHEN isfinite({c}) AND {moment} >= '0001-01-01' THEN "
                f"to_char({moment}, 'YYYY-MM-DD HH24:MI:SS.US') ELSE ({c})::text END")
    if rule == "time" and kind == "time":
        return f"to_char({c}, 'HH24:MI:SS.US')"
    if kind in ("bpchar", "inet"):  # the type's own output: char(n) keeps its padding
        return f"CASE WHEN {c} IS NOT NULL THEN concat({c}) END"
    return f"({c})::text"


def column_sql(dialect: str, col: Column) -> str:
    """The canonical text of ``col`` in ``dialect``'s SQL."""
    return mysql_text(col) if dialect == "mysql" else postgres_text(col)


def row_hash_sql(dialect: str, columns: Sequence[Column]) -> str:
    """SQL of a row's 64-bit hash (MySQL: unsigned; PostgreSQL: signed; equal modulo 2**64)."""
    parts = []
    for col in columns:
        text = column_sql(dialect, col)
        if dialect == "mysql":
            piece = f"CONCAT(CHAR_LENGTH({text}), ':', {text})" if col.rule.prefixed else text
            parts.append(f"COALESCE({piece}, '{NULL_MARK}')")
        else:
            piece = f"length({text})::text || ':' || {text}" if col.rule.prefixed else text
            parts.append(f"coalesce({piece}, '{NULL_MARK}')")
    if dialect == "mysql":
        row = f"CONVERT(CONCAT_WS('|', {', '.join(parts)}) USING utf8mb4)"
        return f"CAST(CONV(SUBSTRING(MD5({row}), 1, 16), 16, 10) AS UNSIGNED)"
    row = f"concat_ws('|', {', '.join(parts)})"
    return f"('x' || substr(md5({row}), 1, 16))::bit(64)::bigint"


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

    def key_hash(*values: Any) -> int:
        return python_key_hash(side, values)

    dbapi_connection.create_aggregate("syncd_row_sum", -1, RowSum)
    dbapi_connection.create_function("syncd_key_hash", -1, key_hash, deterministic=True)
