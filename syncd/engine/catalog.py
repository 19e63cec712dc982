"""What the source's own catalog says about each column's type.

SQLAlchemy's reflected types are not precise enough to copy values exactly
(MySQL DOUBLE comes back as a 10-place decimal, MariaDB JSON as LONGTEXT, a
PostgreSQL enum or range loses its name), so the type map works from the
catalog: ``information_schema`` on MySQL/MariaDB, ``pg_attribute``/``pg_type``
on PostgreSQL, ``PRAGMA table_info`` on SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class SourceColumn:
    """One source column's type, as the source database spells and classifies it."""

    name: str
    dialect: str  # "mysql" | "postgresql" | "sqlite"
    kind: str  # base type, lower case: "int", "numeric", "timestamptz", "enum", "array", ...
    spelling: str  # the full type as the source writes it: "decimal(12,4) unsigned", ...
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    unsigned: bool = False
    builtin: bool = True  # PostgreSQL: a type of pg_catalog (false: extension, composite)
    members: tuple[str, ...] = field(default=())  # PostgreSQL enum labels
    type_name: str | None = None  # PostgreSQL enum: its (schema-qualified) type name


def describe_columns(conn: Connection, table: str, schema: str | None) -> dict[str, SourceColumn]:
    """The source table's columns by name, in table order."""
    name = conn.dialect.name
    if name in ("mysql", "mariadb"):
        return _mysql(conn, table, schema)
    if name == "postgresql":
        return _postgres(conn, table, schema)
    if name == "sqlite":
        return _sqlite(conn, table, schema)
    raise NotImplementedError(f"source database {name} is not supported")


def _mysql(conn: Connection, table: str, schema: str | None) -> dict[str, SourceColumn]:
    rows = conn.execute(text(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, "
        "CHARACTER_MAXIMUM_LENGTH, DATETIME_PRECISION FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table "
        "ORDER BY ORDINAL_POSITION"), {"schema": schema, "table": table}).all()
    json_columns = _mariadb_json_columns(conn, table, schema)
    out = {}
    for col, data_type, column_type, precision, scale, length, fsp in rows:
        kind = str(data_type).lower()
        spelling = str(column_type).lower() if kind not in ("enum", "set") else str(column_type)
        if col in json_columns and kind in ("longtext", "text", "mediumtext"):
            kind, spelling = "json", "json"
        if kind in ("datetime", "timestamp", "time"):
            precision = fsp
        out[col] = SourceColumn(
            name=col, dialect="mysql", kind=kind, spelling=spelling,
            precision=_int(precision), scale=_int(scale), length=_int(length),
            unsigned="unsigned" in spelling.lower(),
        )
    return out


def _mariadb_json_columns(conn: Connection, table: str, schema: str | None) -> set[str]:
    """Columns of a MariaDB table declared JSON: LONGTEXT with CHECK (json_valid(col))."""
    if not getattr(conn.dialect, "is_mariadb", False):
        return set()  # MySQL has a real JSON type (and no TABLE_NAME in CHECK_CONSTRAINTS)
    rows = conn.execute(text(
        "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = COALESCE(:schema, DATABASE()) AND TABLE_NAME = :table"),
        {"schema": schema, "table": table}).scalars()
    found = set()
    for clause in rows:
        match = re.fullmatch(r"\s*json_valid\(`((?:[^`]|``)+)`\)\s*", str(clause))
        if match:
            found.add(match.group(1).replace("``", "`"))
    return found


_PG_COLUMNS = """
SELECT a.attname,
       format_type(b.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
       b.typname, b.typtype, bn.nspname, b.typcategory, b.oid,
       e.typname, e.typtype, en.nspname,
       information_schema._pg_numeric_precision(b.oid,
           CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
       information_schema._pg_numeric_scale(b.oid,
           CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
       information_schema._pg_char_max_length(b.oid,
           CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
JOIN pg_namespace bn ON bn.oid = b.typnamespace
LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
LEFT JOIN pg_namespace en ON en.oid = e.typnamespace
WHERE c.relname = :table AND n.nspname = COALESCE(:schema, current_schema())
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def _postgres(conn: Connection, table: str, schema: str | None) -> dict[str, SourceColumn]:
    out = {}
    for (col, spelling, typname, typtype, nsp, category, oid, _elem, elem_type, elem_nsp,
         precision, scale, length) in conn.execute(text(_PG_COLUMNS),
                                                   {"table": table, "schema": schema}):
        builtin = nsp == "pg_catalog"
        kind, members, type_name = str(typname), (), None
        if category == "A":
            kind = "array"
            builtin = elem_nsp == "pg_catalog" and elem_type in ("b", "r", "m")
        elif typtype == "e":
            kind, builtin = "enum", True
            members = tuple(conn.execute(text(
                "SELECT enumlabel FROM pg_enum WHERE enumtypid = :oid ORDER BY enumsortorder"),
                {"oid": oid}).scalars())
            type_name = str(spelling)
        elif typtype in ("r", "m"):
            kind = "range"
        elif typtype == "c" or not builtin:
            kind, builtin = "other", False
        out[col] = SourceColumn(
            name=col, dialect="postgresql", kind=kind, spelling=str(spelling),
            precision=_int(precision), scale=_int(scale), length=_int(length),
            builtin=builtin, members=members, type_name=type_name,
        )
    return out


def _sqlite(conn: Connection, table: str, schema: str | None) -> dict[str, SourceColumn]:
    quote = conn.dialect.identifier_preparer.quote
    prefix = f"{quote(schema)}." if schema else ""
    out = {}
    for row in conn.exec_driver_sql(f"PRAGMA {prefix}table_info({quote(table)})"):
        declared = str(row[2] or "")
        match = re.match(r"\s*([A-Za-z ]*[A-Za-z])\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?",
                         declared)
        base = match.group(1).lower() if match else ""
        out[row[1]] = SourceColumn(
            name=row[1], dialect="sqlite", kind=base, spelling=declared,
            precision=_int(match.group(2)) if match else None,
            scale=_int(match.group(3)) if match else None,
            length=_int(match.group(2)) if match else None,
        )
    return out


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))
