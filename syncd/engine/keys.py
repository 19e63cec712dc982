"""The job's primary key must identify one source row.

A ``primary_key`` set in the jobs file that is neither the source table's declared
primary key nor covered by one of its unique indexes or constraints is checked, since
rows that share a key would otherwise overwrite each other in the local table:
- ``syncd check``, and a full load (``syncd run`` checks before a run that creates the
  local table, and the run does not check again): one grouped query over the whole
  source table (keyset reads would skip a second row with the same key unseen); the
  staging table's primary key also refuses a second row with the same key;
- an incremental batch: the source is asked whether the batch's keys are shared.
Declaring a unique index on those columns at the source makes every check free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Table, UniqueConstraint, func, select

from syncd.engine.connect import translated_errors
from syncd.engine.errors import ConfigError, shown
from syncd.engine.queries import keys_in
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
    if found is not None:
        raise _not_unique(spec, key, found)


def require_unique_batch(spec: TableSync, source: Engine, src: SourceTable,
                         keys: Sequence[Sequence[Any]]) -> None:
    """ConfigError if one of ``keys`` (a batch's) is shared by two source rows."""
    key = src.primary_key
    if not keys or not key or declared_unique(src.table, key):
        return
    query = duplicate_key_query(src.table, key).where(keys_in(src.table, key, keys))
    with translated_errors(f"source table {spec.qualified_table}"), source.connect() as conn:
        found = conn.execute(query).first()
    if found is not None:
        raise _not_unique(spec, key, found)


def is_duplicate_key(error: BaseException, local: Engine) -> bool:
    """True if ``error`` is the local database refusing a row (a key it already holds)."""
    dbapi = local.dialect.loaded_dbapi
    return isinstance(getattr(error, "orig", error), dbapi.IntegrityError)


def _not_unique(spec: TableSync, key: tuple[str, ...], found: Any) -> ConfigError:
    *values, rows = found
    where = " and ".join(f"{name} = {shown(value)}" for name, value in zip(key, values))
    return ConfigError(
        f'field "primary_key": ({", ".join(key)}) does not identify a row of source table '
        f"{shown(spec.qualified_table)}: {rows} rows have {where}; set primary_key to "
        "columns that are unique (a unique index on them at the source also makes this "
        "check free)"
    )
