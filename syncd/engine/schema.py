"""Source reflection, checks against it, and the local table made from it.

Table and column names from the jobs file are never pasted into SQL: they are
looked up in the reflected source schema and quoted by SQLAlchemy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    inspect,
)
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import mysql, postgresql

from syncd.engine.connect import translated_errors
from syncd.engine.errors import ConfigError, SchemaConflict
from syncd.engine.spec import TableSync


@dataclass(frozen=True)
class SourceTable:
    """The reflected source table, restricted to the job's columns."""

    table: Table  # reflected, with every column of the source
    columns: tuple[str, ...]  # the columns the job copies, in source order
    primary_key: tuple[str, ...]
    cursor: str | None

    def cols(self) -> list[Column[object]]:
        """The copied columns as Column objects."""
        return [self.table.c[name] for name in self.columns]


def reflect_source(spec: TableSync, source: Engine) -> SourceTable:
    """Reflect the job's source table and check the job's names against it."""
    where = f"source table {spec.qualified_table}"
    with translated_errors(where), source.connect() as conn:
        insp = inspect(conn)
        if not insp.has_table(spec.table, schema=spec.schema):
            names = sorted(insp.get_table_names(schema=spec.schema))
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise ConfigError(
                f'field "table": table {spec.qualified_table} not found at the source '
                f"(tables: {shown or 'none'})"
            )
        table = Table(spec.table, MetaData(), schema=spec.schema, autoload_with=conn)
    available = [c.name for c in table.columns]
    listing = ", ".join(available)

    def need(name: str, field: str) -> None:
        if name not in table.c:
            raise ConfigError(
                f'field "{field}": column "{name}" not in source table {spec.qualified_table} '
                f"(columns: {listing})"
            )

    if spec.primary_key:
        for name in spec.primary_key:
            need(name, "primary_key")
        pk = tuple(spec.primary_key)
    else:
        pk = tuple(c.name for c in table.primary_key.columns)
        if not pk:
            raise ConfigError(
                f"source table {spec.qualified_table} has no primary key: "
                'set "primary_key" to columns that identify a row'
            )
    if spec.cursor:
        need(spec.cursor, "cursor")
    if spec.columns:
        for name in spec.columns:
            need(name, "columns")
        wanted = set(spec.columns) | set(pk) | ({spec.cursor} if spec.cursor else set())
        columns = tuple(name for name in available if name in wanted)
    else:
        columns = tuple(available)
    return SourceTable(table=table, columns=columns, primary_key=pk, cursor=spec.cursor)


def check_table(spec: TableSync, source: Engine) -> list[str]:
    """Raise ConfigError if the job's table, key or cursor is wrong; return warnings."""
    src = reflect_source(spec, source)
    warnings = []
    if src.cursor:
        with translated_errors(f"source table {spec.qualified_table}"), source.connect() as conn:
            indexes = inspect(conn).get_indexes(spec.table, schema=spec.schema)
        leading = {idx["column_names"][0] for idx in indexes if idx.get("column_names")}
        leading |= {src.primary_key[0]} if src.primary_key[0] == src.cursor else set()
        if src.cursor not in leading:
            warnings.append(
                f'cursor column "{src.cursor}" of {spec.qualified_table} has no index: every '
                f"incremental run scans the table (create an index on ({src.cursor}, "
                f"{', '.join(src.primary_key)}))"
            )
    return warnings


def local_type(type_: sqltypes.TypeEngine[Any], local: str) -> sqltypes.TypeEngine[Any]:
    """Portable type of a source column in the ``local`` dialect (postgresql/mysql/sqlite)."""
    unsigned = bool(getattr(type_, "unsigned", False))
    if isinstance(type_, sqltypes.Boolean):
        return sqltypes.Boolean()
    if isinstance(type_, sqltypes.BigInteger):
        return sqltypes.Numeric(20, 0) if unsigned and local != "mysql" else (
            mysql.BIGINT(unsigned=True) if unsigned else sqltypes.BigInteger()
        )
    if isinstance(type_, (mysql.YEAR,)):
        return sqltypes.Integer()
    if isinstance(type_, sqltypes.SmallInteger) or isinstance(type_, mysql.TINYINT):
        return sqltypes.Integer() if unsigned else sqltypes.SmallInteger()
    if isinstance(type_, sqltypes.Integer):
        return sqltypes.BigInteger() if unsigned else sqltypes.Integer()
    if isinstance(type_, sqltypes.Float):
        return sqltypes.Double() if local != "mysql" else mysql.DOUBLE()
    if isinstance(type_, sqltypes.Numeric):
        precision, scale = type_.precision, type_.scale
        if precision is None:
            return sqltypes.Numeric() if local != "mysql" else sqltypes.Numeric(65, 30)
        return sqltypes.Numeric(precision, scale or 0)
    if isinstance(type_, sqltypes.DateTime):
        aware = bool(getattr(type_, "timezone", False))
        if local == "postgresql":
            return postgresql.TIMESTAMP(timezone=aware, precision=6)
        if local == "mysql":
            return mysql.DATETIME(fsp=6)
        return sqltypes.DateTime()
    if isinstance(type_, sqltypes.Date):
        return sqltypes.Date()
    if isinstance(type_, sqltypes.Time):
        return mysql.TIME(fsp=6) if local == "mysql" else sqltypes.Time()
    if isinstance(type_, sqltypes.Interval):
        return postgresql.INTERVAL() if local == "postgresql" else sqltypes.Text()
    if isinstance(type_, sqltypes.JSON):
        if local == "postgresql" and isinstance(type_, postgresql.JSONB):
            return postgresql.JSONB()
        return sqltypes.JSON()
    if isinstance(type_, sqltypes.ARRAY):
        return sqltypes.JSON() if local != "postgresql" else type_
    if isinstance(type_, sqltypes.Uuid):
        return sqltypes.Uuid() if local == "postgresql" else sqltypes.String(36)
    if isinstance(type_, sqltypes.Enum):
        longest = max((len(e) for e in type_.enums), default=32)
        return sqltypes.String(max(longest, 1))
    if isinstance(type_, sqltypes.Text) or isinstance(type_, (mysql.SET,)):
        return mysql.LONGTEXT() if local == "mysql" else sqltypes.Text()
    if isinstance(type_, sqltypes.String):
        length = type_.length
        if length is None or (local == "mysql" and length > 16000):
            return mysql.LONGTEXT() if local == "mysql" else sqltypes.Text()
        return sqltypes.String(length)
    if isinstance(type_, (sqltypes.LargeBinary, sqltypes._Binary)):
        return mysql.LONGBLOB() if local == "mysql" else sqltypes.LargeBinary()
    return mysql.LONGTEXT() if local == "mysql" else sqltypes.Text()


def pk_name(table_name: str) -> str:
    """Name of the primary-key constraint of a local table (short, unique per table)."""
    return "syncd_pk_" + hashlib.sha256(table_name.encode()).hexdigest()[:16]


def local_table(src: SourceTable, name: str, local: str, extra: list[Column[object]] | None = None,
                ) -> Table:
    """A Table of the local database mirroring the source (PK constraint named after it)."""
    columns = []
    for col in src.cols():
        columns.append(Column(col.name, local_type(col.type, local),
                              nullable=col.name not in src.primary_key))
    for col in extra or []:
        columns.append(Column(col.name, col.type, nullable=True))
    return Table(
        name, MetaData(), *columns,
        PrimaryKeyConstraint(*src.primary_key, name=pk_name(name)),
    )


def reflect_local(conn: Connection, name: str) -> Table | None:
    """The local table, reflected, or None if it does not exist."""
    if not inspect(conn).has_table(name):
        return None
    return Table(name, MetaData(), autoload_with=conn)


def local_target(conn: Connection, src: SourceTable, spec: TableSync) -> Table:
    """The local table as syncd writes it, after adding new source columns (or failing).

    Built from the source definition (the way syncd created it) instead of reflecting
    the local table in full: one catalog query instead of a dozen, on every run.
    """
    present = {col["name"] for col in inspect(conn).get_columns(spec.target)}
    missing = [c for c in src.cols() if c.name not in present]
    if missing:
        names = ", ".join(c.name for c in missing)
        if spec.on_schema_change == "fail":
            raise SchemaConflict(
                f"source table {spec.qualified_table} has new column(s) {names} that local "
                f'table {spec.target} lacks, and on_schema_change = "fail": add them locally '
                'or set on_schema_change = "evolve"'
            )
        dialect = conn.dialect
        quote = dialect.identifier_preparer.quote
        for col in missing:
            type_sql = local_type(col.type, dialect.name).compile(dialect=dialect)
            conn.exec_driver_sql(
                f"ALTER TABLE {quote(spec.target)} ADD COLUMN {quote(col.name)} {type_sql}"
            )
    return local_table(src, spec.target, conn.dialect.name)
