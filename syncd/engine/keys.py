"""The job's primary key must identify one source row.

A ``primary_key`` set in the jobs file that is neither the source table's declared
primary key nor covered by one of its unique indexes or constraints is checked at the
source (one grouped query, at the start of every run and by ``syncd check``): rows
that share a key would otherwise overwrite each other in the local table. Declaring
a unique index on those columns at the source makes the check free.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table, UniqueConstraint, func, select

from syncd.engine.connect import translated_errors
from syncd.engine.errors import ConfigError, shown
from syncd.engine.schema import SourceTable
from syncd.engine.spec import TableSync


def declared_unique(table: Table, key: tuple[str, ...]) -> bool:
    """True if the source declares ``key`` (or a part of it) unique."""
    columns = set(key)
    groups = [{c.name for c in table.primary_key.columns}]
    groups += [{c.name for c in index.columns} for index in table.indexes if index.unique]
    groups += [{c.name for c in constraint.columns} for constraint in table.constraints
               if isinstance(constraint, UniqueConstraint)]
    return any(group and group <= columns for group in groups)


def duplicate_key_query(table: Table, key: tuple[str, ...]) -> Any:
    """One key value shared by more than one row, with how many rows share it."""
    cols = [table.c[name] for name in key]
    return select(*cols, func.count()).group_by(*cols).having(func.count() > 1).limit(1)


def require_unique_key(spec: TableSync, source: Engine, src: SourceTable) -> None:
    """ConfigError if the job's key is not unique at the source (checked only when the
    source does not declare it unique)."""
    key = src.primary_key
    if not key or declared_unique(src.table, key):  # no key: loaded in full, nothing keyed
        return
    with translated_errors(f"source table {spec.qualified_table}"), source.connect() as conn:
        found = conn.execute(duplicate_key_query(src.table, key)).first()
    if found is None:
        return
    *values, rows = found
    where = " and ".join(f"{name} = {shown(value)}" for name, value in zip(key, values))
    raise ConfigError(
        f'field "primary_key": ({", ".join(key)}) does not identify a row of source table '
        f"{shown(spec.qualified_table)}: {rows} rows have {where}; set primary_key to "
        "columns that are unique (a unique index on them at the source also makes this "
        "check free)"
    )
