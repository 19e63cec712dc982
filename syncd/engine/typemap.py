"""The type map: for each source column and local database, the local type and how values travel.

One rule per (source type family, local dialect) decides
- the local column type (DDL, as the local database spells it),
- how the value is read from the source (its own text, see ``read``),
- how it is turned into what the local writer takes, and which values the local
  type cannot hold exactly (``values.Unrepresentable``),
- the typed value used for keyset parameters and checkpoints.
Full loads, incremental runs and reconcile all use it; the README's type table
is this module written out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.types import UserDefinedType

from syncd.engine import values as v
from syncd.engine.catalog import SourceColumn
from syncd.engine.errors import ConfigError

MYSQL_INT = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32,
             "bigint": 64}
PG_INT = {"int2": 16, "int4": 32, "int8": 64}
PG_AS_TEXT_ELSEWHERE = {"interval", "timetz", "xml", "range", "array", "other", "tsvector",
                        "tsquery", "point", "line", "lseg", "box", "path", "polygon", "circle",
                        "pg_lsn", "oid", "name", "txid_snapshot", "pg_snapshot"}
PG_COMPARE_AS_TEXT = {"json", "xml", "point", "line", "lseg", "box", "path", "polygon",
                      "circle", "other"}
MYSQL_KEY_TEXT = 768  # the longest utf8mb4 VARCHAR an InnoDB index takes whole


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is copied into one local database."""

    name: str
    source: SourceColumn
    family: str  # "int", "decimal", "float8", "string", "datetime", ... (see family())
    ddl: str  # the local column type
    read: str  # "raw" | "text" (PostgreSQL ::text) | "double" | "money"
    convert: v.Converter | None  # source value -> local writer value (None: as it is)
    key: v.Converter  # source value -> typed value for keyset parameters and checkpoints
    compare_as_text: bool = False  # PostgreSQL local: no equality operator for the type
    enum: tuple[str, tuple[str, ...]] | None = None  # PostgreSQL enum type to create locally


class Verbatim(UserDefinedType[Any]):
    """A column type written into DDL exactly as the type map spells it."""

    cache_ok = True

    def __init__(self, spelling: str) -> None:
        self.spelling = spelling

    def get_col_spec(self, **kw: Any) -> str:
        return self.spelling


def family(col: SourceColumn) -> str:
    """The family of a source column's type, which picks its rule."""
    kind = col.kind
    if col.dialect == "mysql":
        return _MYSQL_FAMILY.get(kind) or ("int" if kind in MYSQL_INT else "unsupported")
    if col.dialect == "postgresql":
        if kind in PG_INT:
            return "int"
        if kind in PG_AS_TEXT_ELSEWHERE or not col.builtin:
            return "pgtext"
        return _PG_FAMILY.get(kind, "pgtext")
    return _sqlite_family(kind)


_MYSQL_FAMILY = {
    "decimal": "decimal", "numeric": "decimal", "double": "float8", "real": "float8",
    "float": "float4", "bit": "bit", "date": "date", "datetime": "datetime",
    "timestamp": "timestamp_utc", "time": "time", "year": "year",
    "char": "string", "varchar": "string", "tinytext": "string", "text": "string",
    "mediumtext": "string", "longtext": "string", "binary": "binary", "varbinary": "binary",
    "tinyblob": "binary", "blob": "binary", "mediumblob": "binary", "longblob": "binary",
    "enum": "enum", "set": "set", "json": "json", "uuid": "uuid", "inet6": "inet",
    "inet4": "inet",
}
_PG_FAMILY = {
    "numeric": "decimal", "float8": "float8", "float4": "float4", "money": "money",
    "bool": "bool", "text": "string", "varchar": "string", "bpchar": "string",
    "citext": "string", "bytea": "binary", "date": "date", "timestamp": "datetime",
    "timestamptz": "timestamptz", "time": "pgtime", "json": "json", "jsonb": "jsonb",
    "uuid": "uuid", "inet": "inet", "cidr": "inet", "macaddr": "inet", "macaddr8": "inet",
    "bit": "bit", "varbit": "varbit", "enum": "enum",
}


def _sqlite_family(kind: str) -> str:
    """SQLite: by declared type, as SQLite's own affinity rules read it."""
    if kind in ("boolean", "bool"):
        return "bool"
    if "int" in kind:
        return "int"
    if any(word in kind for word in ("char", "clob", "text")):
        return "string"
    if kind in ("blob", "binary", "varbinary"):
        return "binary"
    if any(word in kind for word in ("real", "floa", "doub")):
        return "float8"
    if kind in ("numeric", "decimal"):
        return "decimal"
    if kind in ("datetime", "timestamp"):
        return "datetime"
    return {"date": "date", "time": "pgtime", "json": "json"}.get(kind, "any")


def plan_column(col: SourceColumn, local: str, source_timezone: str = "UTC",
                key_column: bool = False) -> ColumnPlan:
    """The rule for ``col`` copied into a ``local`` ("postgresql", "mysql", "sqlite") table."""
    fam = family(col)
    local = "mysql" if local == "mariadb" else local
    if col.dialect == local:
        rule = _same_dialect(col, fam)
    else:
        builder = _RULES.get(fam)
        if builder is None:
            raise ConfigError(
                f'column "{col.name}": type {col.spelling} cannot be copied into a '
                f"{_LOCAL_WORDS[local]} local database")
        rule = builder(col, local)
    ddl, convert = rule
    if local == "mysql" and key_column and ddl in ("longtext", "longblob"):
        if ddl == "longtext":
            ddl, convert = f"varchar({MYSQL_KEY_TEXT})", v.chain(convert,
                                                                 v.max_chars(MYSQL_KEY_TEXT))
        else:
            ddl = "varbinary(3072)"
    if fam == "datetime" and source_timezone != "UTC":
        convert = v.chain(convert, v.shift_to_utc(source_timezone))
    read = "raw"
    if col.dialect == "postgresql":
        # ::text, except where the cast's text differs from the type's own output:
        # char(n) loses its padding, inet gains a /32 or /128 netmask.
        read = {"string": "raw" if col.kind == "bpchar" else "text", "float4": "double",
                "money": "money", "inet": "raw" if col.kind == "inet" else "text",
                }.get(fam, "text")
    elif col.dialect == "mysql" and fam == "float4":
        read = "double"
    enum = None
    if local == "postgresql" and col.dialect == "postgresql" and fam == "enum":
        enum = (ddl, col.members)
    return ColumnPlan(
        name=col.name, source=col, family=fam, ddl=ddl, read=read, convert=convert,
        # SQLite compares keys as stored (a date-time is text in whatever form it was
        # written): parsing and re-formatting them would skip rows.
        key=v.same if col.dialect == "sqlite" else v.key_parser(_KEY_FAMILY.get(fam, fam)),
        compare_as_text=local == "postgresql" and (
            col.kind in PG_COMPARE_AS_TEXT or fam == "json" or not col.builtin),
        enum=enum,
    )


_LOCAL_WORDS = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "sqlite": "SQLite"}
_KEY_FAMILY = {"timestamp_utc": "datetime", "timestamptz": "datetime", "year": "int",
               "float4": "float", "float8": "float", "pgtime": "time"}
Rule = tuple[str, v.Converter | None]


def _same_dialect(col: SourceColumn, fam: str) -> Rule:
    """Same database on both sides: the source's own type, values as the source wrote them."""
    if col.dialect == "mysql":
        if fam in ("enum", "set") and "?" in col.spelling:
            # MariaDB's catalog shows 4-byte characters of ENUM/SET members as "?": the
            # definition cannot be copied, so the values are kept as their text.
            return f"varchar({len(col.spelling)})", None
        date_check = v.mysql_date if fam in ("date", "datetime", "timestamp_utc") else None
        return col.spelling, date_check
    if col.dialect == "postgresql":
        if fam == "enum":
            return _pg_enum_name(col), None
        return (col.spelling if col.builtin else "text"), None
    return col.spelling, None


def _pg_enum_name(col: SourceColumn) -> str:
    """The enum's name without its schema (the local table lives in the default schema)."""
    name = col.type_name or col.spelling
    if not name.endswith('"') and "." in name:
        return name.rsplit(".", 1)[1]
    if name.endswith('"') and '".' in name:
        return name[name.index('".') + 2:]
    return name


def _int(col: SourceColumn, local: str) -> Rule:
    bits = 64 if col.dialect == "sqlite" else MYSQL_INT.get(col.kind) or PG_INT.get(
        col.kind) or 64
    from_sqlite = col.dialect == "sqlite"
    if local == "sqlite":
        return "INTEGER", v.int64 if bits == 64 and col.unsigned else v.to_int
    check = v.is_int if from_sqlite else None
    if local == "postgresql":
        if col.unsigned:
            bits += 1
        spelling = ("smallint" if bits <= 16 else "integer" if bits <= 32 else "bigint"
                    if bits <= 64 else "numeric(20,0)")
        return spelling, check
    return {16: "smallint", 32: "int"}.get(bits, "bigint"), check


def _bool(col: SourceColumn, local: str) -> Rule:
    if local == "postgresql":
        return "boolean", v.pg_bool
    from_pg = col.dialect == "postgresql"
    if local == "mysql":
        return "tinyint(1)", v.bool_to_int if from_pg else v.is_int
    return "BOOLEAN", v.bool_to_int if from_pg else None


def _decimal(col: SourceColumn, local: str) -> Rule:
    p, s = col.precision, col.scale or 0
    if local == "sqlite":
        return "TEXT", v.number_text
    if local == "postgresql":
        spelling = f"numeric({p},{s})" if p else "numeric"
        return spelling, v.decimal_fits(p, s) if p and col.dialect == "sqlite" else (
            v.number_text if col.dialect == "sqlite" else None)
    if p is None or p > 65 or s > 30 or p - s > 35:
        p, s = 65, 30
    return f"decimal({p},{s})", v.decimal_fits(p, s)


def _float(col: SourceColumn, local: str, single: bool = False) -> Rule:
    if local == "postgresql":
        return ("real" if single else "double precision"), (
            v.pg_float if col.dialect == "sqlite" else None)
    if local == "mysql":
        return ("float" if single else "double"), v.finite_float
    return "REAL", v.sqlite_float


def _money(col: SourceColumn, local: str) -> Rule:
    if local == "mysql":
        return "decimal(19,2)", v.decimal_fits(19, 2)
    return "TEXT", None


def _string(col: SourceColumn, local: str) -> Rule:
    text_in = v.as_text if col.dialect == "sqlite" else None
    bounded = col.length if col.dialect != "sqlite" and col.kind in (
        "char", "varchar", "bpchar") else None
    if local == "postgresql":
        return (f"varchar({bounded})" if bounded else "text"), v.chain(text_in, v.no_nul)
    if local == "mysql":
        return (f"varchar({bounded})" if bounded and bounded <= 16000 else "longtext"), text_in
    return "TEXT", text_in


def _binary(col: SourceColumn, local: str) -> Rule:
    if local == "postgresql":
        return "bytea", v.bytes_to_pg
    convert = v.pg_hex_to_bytes if col.dialect == "postgresql" else None
    return ("longblob" if local == "mysql" else "BLOB"), convert


def _date(col: SourceColumn, local: str) -> Rule:
    check = {"mysql": v.mysql_date, "postgresql": v.plain_date}.get(col.dialect)
    if local == "postgresql":
        return "date", check
    return ("date" if local == "mysql" else "DATE"), check


def _datetime(col: SourceColumn, local: str) -> Rule:
    check = {"mysql": v.mysql_date, "postgresql": v.plain_date}.get(col.dialect)
    if col.dialect == "postgresql" and col.kind == "timestamptz":
        check = v.utc_naive
    if local == "postgresql":
        return "timestamp(6) without time zone", check
    return ("datetime(6)" if local == "mysql" else "DATETIME"), check


def _timestamptz(col: SourceColumn, local: str) -> Rule:
    return _datetime(col, local)


def _mysql_time(col: SourceColumn, local: str) -> Rule:
    if local == "postgresql":
        return f"time({col.precision or 0}) without time zone", v.mysql_time_of_day
    return "TEXT", None


def _pg_time(col: SourceColumn, local: str) -> Rule:
    if local == "mysql":
        return "time(6)", None
    if local == "postgresql":  # a SQLite source
        return "time(6) without time zone", None
    return "TEXT", None


def _year(col: SourceColumn, local: str) -> Rule:
    return ("smallint", None) if local == "postgresql" else ("INTEGER", v.to_int)


def _json(col: SourceColumn, local: str, binary: bool = False) -> Rule:
    text_in = v.as_text if col.dialect == "sqlite" else None
    if local == "postgresql":
        return ("jsonb" if binary else "json"), v.chain(text_in, v.no_nul)
    return ("json" if local == "mysql" else "TEXT"), text_in


def _uuid(col: SourceColumn, local: str) -> Rule:
    if local == "postgresql":
        return "uuid", None
    return ("char(36)" if local == "mysql" else "TEXT"), None


def _inet(col: SourceColumn, local: str) -> Rule:
    if local == "postgresql":
        return "inet", None
    return ("varchar(64)" if local == "mysql" else "TEXT"), None


def _bit(col: SourceColumn, local: str) -> Rule:
    width = col.precision or col.length or 1
    if col.dialect == "mysql":
        if local == "postgresql":
            return f"bit({width})", v.bits_from_bytes(width)
        return "INTEGER", v.chain(v.int_from_bytes, v.int64)
    if local == "mysql" and width <= 64:
        return f"bit({width})", v.int_from_bits
    return ("longtext" if local == "mysql" else "TEXT"), None


def _text_elsewhere(col: SourceColumn, local: str) -> Rule:
    """A value kept as its source text (MySQL ENUM/SET, PostgreSQL interval, arrays, ...)."""
    if local == "postgresql":
        return "text", None
    if local == "mysql":
        if col.members:
            return f"varchar({max(len(m) for m in col.members)})", None
        return "longtext", None
    return "TEXT", None


def _any(col: SourceColumn, local: str) -> Rule:
    """A SQLite column without a recognised type: its values as text."""
    if local == "postgresql":
        return "text", v.chain(v.as_text, v.no_nul)
    return "longtext", v.as_text


_RULES: dict[str, Callable[[SourceColumn, str], Rule]] = {
    "int": _int, "bool": _bool, "decimal": _decimal, "float8": _float,
    "float4": lambda c, local: _float(c, local, single=True), "money": _money,
    "string": _string, "binary": _binary, "date": _date, "datetime": _datetime,
    "timestamp_utc": _datetime, "timestamptz": _timestamptz, "time": _mysql_time,
    "pgtime": _pg_time, "year": _year, "json": _json,
    "jsonb": lambda c, local: _json(c, local, binary=True), "uuid": _uuid, "inet": _inet,
    "bit": _bit, "varbit": _text_elsewhere, "enum": _text_elsewhere, "set": _text_elsewhere,
    "pgtext": _text_elsewhere, "any": _any,
}
