"""Source type changes, checked at the start of every run against what the local table holds.

The source type each local column was made from is kept in ``syncd_column_types``.
A change that widens (INT -> BIGINT, VARCHAR(50) -> VARCHAR(200), DECIMAL(10,2) ->
DECIMAL(12,2), FLOAT -> DOUBLE) is applied to the local column under
``on_schema_change = "evolve"``; a change that could lose data, or any change under
``"fail"``, fails the run naming the column, the old and the new type.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, String, Table, Text, delete, insert, select
from sqlalchemy import update as sa_update

from syncd.engine.catalog import SourceColumn
from syncd.engine.checkpoint import metadata
from syncd.engine.errors import SchemaConflict
from syncd.engine.spec import TableSync
from syncd.engine.typemap import ColumnPlan, family

column_types = Table(
    "syncd_column_types",
    metadata,
    Column("job", String(100), primary_key=True),
    Column("column_name", String(128), primary_key=True),
    Column("source_type", Text, nullable=False),  # JSON: the source column's type
    Column("local_type", Text, nullable=False),  # the local column type syncd wrote
)

_SIGNATURE = ("kind", "spelling", "precision", "scale", "length", "unsigned", "builtin",
              "dialect")


def signature(col: SourceColumn) -> str:
    """A source column's type as stored in syncd_column_types."""
    return json.dumps({name: getattr(col, name) for name in _SIGNATURE}, sort_keys=True)


def record_columns(conn: Connection, job: str, plans: Sequence[ColumnPlan]) -> None:
    """Forget what was recorded for the job and record ``plans`` (a new local table)."""
    conn.execute(delete(column_types).where(column_types.c.job == job))
    if plans:
        conn.execute(insert(column_types), [
            {"job": job, "column_name": p.name, "source_type": signature(p.source),
             "local_type": p.ddl} for p in plans])


def apply_drift(conn: Connection, spec: TableSync, plans: Sequence[ColumnPlan],
                primary_key: Sequence[str], added: set[str], local_key: Sequence[str]) -> None:
    """Apply (or refuse) the source's type changes to the local table; record the new types.

    ``local_key``: the local table's primary-key columns (empty: it has none)."""
    _check_key(spec, primary_key, local_key)
    stored = {row.column_name: row for row in conn.execute(
        select(column_types).where(column_types.c.job == spec.job))}
    for plan in plans:
        now = signature(plan.source)
        old = stored.get(plan.name)
        if old is None or plan.name in added:
            _store(conn, spec.job, plan, now, exists=old is not None)
            continue
        if old.source_type == now:
            continue
        before = SourceColumn(name=plan.name, **json.loads(old.source_type))
        change = (f'column "{plan.name}" of source table {spec.qualified_table} changed type '
                  f"from {before.spelling} to {plan.source.spelling}")
        if old.local_type != plan.ddl:
            if spec.on_schema_change == "fail":
                raise SchemaConflict(
                    f'{change}, and on_schema_change = "fail": change local column '
                    f'{spec.target}.{plan.name} ({old.local_type}) yourself, or set '
                    'on_schema_change = "evolve"')
            if not widens(before, plan.source):
                raise SchemaConflict(
                    f"{change}: the local column {spec.target}.{plan.name} ({old.local_type}) "
                    f"would have to become {plan.ddl}, which can lose data; nothing was changed. "
                    "Run a full refresh to rebuild the local table with the new type")
            _alter(conn, spec.target, plan, nullable=plan.name not in primary_key)
        _store(conn, spec.job, plan, now, exists=True)


def _check_key(spec: TableSync, primary_key: Sequence[str], local: Sequence[str]) -> None:
    if local and list(local) != list(primary_key):
        raise SchemaConflict(
            f"the primary key of {spec.qualified_table} is now ({', '.join(primary_key)}) but "
            f"local table {spec.target} is keyed on ({', '.join(local)}): the key column was "
            "renamed or dropped at the source. Run a full refresh to rebuild the local table")


def _store(conn: Connection, job: str, plan: ColumnPlan, now: str, exists: bool) -> None:
    values = {"source_type": now, "local_type": plan.ddl}
    if exists:
        conn.execute(sa_update(column_types).where(
            column_types.c.job == job, column_types.c.column_name == plan.name).values(**values))
    else:
        conn.execute(insert(column_types).values(job=job, column_name=plan.name, **values))


def _alter(conn: Connection, table: str, plan: ColumnPlan, nullable: bool) -> None:
    quote = conn.dialect.identifier_preparer.quote
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(plan.name)} TYPE {plan.ddl}")
    elif name in ("mysql", "mariadb"):
        conn.exec_driver_sql(
            f"ALTER TABLE {quote(table)} MODIFY COLUMN {quote(plan.name)} {plan.ddl} "
            f"{'NULL' if nullable else 'NOT NULL'}")
    # SQLite does not enforce column types: the values fit as they are.


def widens(old: SourceColumn, new: SourceColumn) -> bool:
    """True if every value of ``old``'s type is a value of ``new``'s type."""
    old_family, new_family = family(old), family(new)
    if (old_family, new_family) == ("float4", "float8"):
        return True
    if old_family != new_family:
        return False
    check = _WIDENS.get(old_family)
    return bool(check and check(old, new))


def _int_range(col: SourceColumn) -> tuple[int, int]:
    from syncd.engine.typemap import MYSQL_INT, PG_INT

    bits = MYSQL_INT.get(col.kind) or PG_INT.get(col.kind) or 64
    return (0, 2**bits - 1) if col.unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _ints(old: SourceColumn, new: SourceColumn) -> bool:
    (lo, hi), (new_lo, new_hi) = _int_range(old), _int_range(new)
    return new_lo <= lo and hi <= new_hi


def _strings(old: SourceColumn, new: SourceColumn) -> bool:
    if new.length is None or new.kind in ("text", "longtext", "mediumtext"):
        return True
    return old.length is not None and new.length >= old.length and old.kind not in (
        "text", "longtext", "mediumtext")


def _decimals(old: SourceColumn, new: SourceColumn) -> bool:
    if new.precision is None:
        return True
    if old.precision is None:
        return False
    old_scale, new_scale = old.scale or 0, new.scale or 0
    return new_scale >= old_scale and new.precision - new_scale >= old.precision - old_scale


def _precision(old: SourceColumn, new: SourceColumn) -> bool:
    return (new.precision or 0) >= (old.precision or 0)


def _members(old: SourceColumn, new: SourceColumn) -> bool:
    return new.spelling.startswith(old.spelling[:-1])  # members added at the end


_WIDENS: dict[str, Any] = {
    "int": _ints, "string": _strings, "decimal": _decimals, "datetime": _precision,
    "timestamp_utc": _precision, "time": _precision, "enum": _members, "set": _members,
    "binary": _strings,
}
