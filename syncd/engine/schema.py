"""Source reflection, checks against it, and the local table made from it.

Table and column names from the jobs file are never pasted into SQL: they are
looked up in the reflected source schema and quoted by SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
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
    text,
)
from sqlalchemy.exc import SAWarning

from syncd.engine.catalog import SourceColumn, describe_columns
from syncd.engine.connect import translated_errors
from syncd.engine.drift import apply_drift
from syncd.engine.errors import ConfigError, SchemaConflict
from syncd.engine.spec import TableSync
from syncd.engine.typemap import ColumnPlan, Verbatim, plan_column


@dataclass(frozen=True)
class SourceTable:
    """The reflected source table, restricted to the job's columns."""

    table: Table  # reflected, with every column of the source
    columns: tuple[str, ...]  # the columns the job copies, in source order
    primary_key: tuple[str, ...]
    cursor: str | None
    catalog: dict[str, SourceColumn]  # the source's own description of each column's type

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
        with warnings.catch_warnings():  # types SQLAlchemy does not know: the map reads
            warnings.filterwarnings("ignore", "Did not recognize type", SAWarning)  # the catalog
            table = Table(spec.table, MetaData(), schema=spec.schema, autoload_with=conn)
        catalog = describe_columns(conn, spec.table, spec.schema)
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
        if not pk and not spec.keyless_full:
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
    return SourceTable(table=table, columns=columns, primary_key=pk, cursor=spec.cursor,
                       catalog=catalog)


def plan_columns(src: SourceTable, local: str, spec: TableSync) -> list[ColumnPlan]:
    """The type map's rule for every copied column (ConfigError for a type it cannot map)."""
    keys = set(src.primary_key)
    return [plan_column(src.catalog[name], local, spec.source_timezone, name in keys)
            for name in src.columns]


def check_table(spec: TableSync, source: Engine, local: str | None = None) -> list[str]:
    """Raise ConfigError if the job's table, key, cursor or a column type is wrong.

    ``local``: the local database's dialect name; every column must map into it.
    Returns warnings.
    """
    return check_reflected(spec, reflect_source(spec, source), local)


def check_reflected(spec: TableSync, src: SourceTable,
                    local: str | None = None) -> list[str]:
    """``check_table`` of a source table already reflected."""
    if local is not None:
        plan_columns(src, local, spec)
    warnings = []
    if src.cursor and src.primary_key:  # without a key, every run is a full load
        # the indexes as reflected with the table
        leading = {next(iter(idx.columns)).name for idx in src.table.indexes if idx.columns}
        leading |= {src.primary_key[0]} if src.primary_key[0] == src.cursor else set()
        if src.cursor not in leading:
            warnings.append(
                f'cursor column "{src.cursor}" of {spec.qualified_table} has no index: every '
                f"incremental run scans the table (create an index on ({src.cursor}, "
                f"{', '.join(src.primary_key)}))"
            )
    return warnings


def pk_name(table_name: str) -> str:
    """Name of the primary-key constraint of a local table (short, unique per table)."""
    return "syncd_pk_" + hashlib.sha256(table_name.encode()).hexdigest()[:16]


def local_table(name: str, plans: Sequence[ColumnPlan], primary_key: Sequence[str],
                extra: Sequence[Column[Any]] = ()) -> Table:
    """A Table of the local database mirroring the source (PK constraint named after it)."""
    columns: list[Column[Any]] = [
        Column(p.name, Verbatim(p.ddl), nullable=p.name not in primary_key) for p in plans]
    for col in extra:
        columns.append(Column(col.name, col.type, nullable=True))
    if not primary_key:  # a keyless table (loaded in full at every run)
        return Table(name, MetaData(), *columns)
    return Table(name, MetaData(), *columns, PrimaryKeyConstraint(*primary_key,
                                                                    name=pk_name(name)))


def create_local_table(conn: Connection, table: Table, plans: Sequence[ColumnPlan]) -> None:
    """CREATE TABLE, after the PostgreSQL enum types its columns need."""
    for plan in plans:
        if plan.enum is not None:
            ensure_enum(conn, *plan.enum)
    table.create(conn)


def ensure_enum(conn: Connection, name: str, members: Sequence[str]) -> None:
    """Create a PostgreSQL enum type, or check that the existing one has the same labels."""
    found = conn.execute(text(
        "SELECT e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
        "WHERE t.oid = to_regtype(:name) ORDER BY e.enumsortorder"), {"name": name}).scalars()
    labels = list(found)
    if not labels:
        quoted = ", ".join("'" + m.replace("'", "''") + "'" for m in members)
        conn.exec_driver_sql(f"CREATE TYPE {name} AS ENUM ({quoted})")
    elif labels != list(members):
        raise SchemaConflict(
            f"local enum type {name} has labels {labels}, the source's has {list(members)}")


def reflect_local(conn: Connection, name: str) -> Table | None:
    """The local table, reflected, or None if it does not exist."""
    if not inspect(conn).has_table(name):
        return None
    return Table(name, MetaData(), autoload_with=conn)


@dataclass(frozen=True)
class LocalShape:
    """What a run needs to know of an existing local table: its columns and its key."""

    columns: tuple[str, ...]  # in table order
    primary_key: tuple[str, ...]  # in key order; empty when it has none


_PG_SHAPE = """
SELECT a.attname, array_position(i.indkey::int2[], a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relname = :table AND n.nspname = current_schema()
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum
"""


def local_shape(conn: Connection, name: str) -> LocalShape | None:
    """The local table's columns and primary key, or None if it does not exist.

    One catalog query on PostgreSQL and SQLite (two on MySQL) instead of reflecting
    the table: this runs at the start of every incremental run.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":
        rows = conn.execute(text(_PG_SHAPE), {"table": name}).all()
        if not rows:
            return None
        columns = tuple(str(col) for col, _ in rows if col is not None)
        keyed = sorted((pos, str(col)) for col, pos in rows if col is not None and pos is not None)
        return LocalShape(columns, tuple(col for _, col in keyed))
    if dialect in ("mysql", "mariadb"):
        found = conn.execute(text(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = :table ORDER BY ORDINAL_POSITION"), {"table": name}).scalars()
        columns = tuple(str(col) for col in found)
        if not columns:  # a MySQL table has at least one column
            return None
        pk = conn.execute(text(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
            "DATABASE() AND TABLE_NAME = :table AND INDEX_NAME = 'PRIMARY' "
            "ORDER BY SEQ_IN_INDEX"), {"table": name}).scalars()
        return LocalShape(columns, tuple(str(col) for col in pk))
    if dialect == "sqlite":
        quoted = conn.dialect.identifier_preparer.quote(name)
        info = conn.exec_driver_sql(f"PRAGMA main.table_info({quoted})").all()
        if not info:  # a SQLite table has at least one column
            return None
        keyed = sorted((row[5], str(row[1])) for row in info if row[5])
        return LocalShape(tuple(str(row[1]) for row in info), tuple(col for _, col in keyed))
    raise NotImplementedError(f"local database {dialect} is not supported")


def local_target(conn: Connection, src: SourceTable, spec: TableSync,
                 plans: Sequence[ColumnPlan], shape: LocalShape | None = None) -> None:
    """Bring the local table's columns in line with the source: add new columns, widen
    changed types (``evolve``), or fail with what changed. ``shape``: the local table's
    ``local_shape``, when the caller has it."""
    shape = shape or local_shape(conn, spec.target) or LocalShape((), ())
    present = set(shape.columns)
    missing = [p for p in plans if p.name not in present]
    if missing and spec.on_schema_change == "fail":
        names = ", ".join(p.name for p in missing)
        raise SchemaConflict(
            f"source table {spec.qualified_table} has new column(s) {names} that local "
            f'table {spec.target} lacks, and on_schema_change = "fail": add them locally '
            'or set on_schema_change = "evolve"'
        )
    quote = conn.dialect.identifier_preparer.quote
    for plan in missing:
        if plan.enum is not None:
            ensure_enum(conn, *plan.enum)
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(spec.target)} ADD COLUMN {quote(plan.name)} {plan.ddl}")
    apply_drift(conn, spec, plans, src.primary_key, added={p.name for p in missing},
                local_key=shape.primary_key)
