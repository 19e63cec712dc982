"""Checking a job against its source before anything runs, with every answer sorted out.

``syncd check`` and ``syncd run`` must end with a one-line message and the right exit
code, never a traceback, whatever the jobs file says: a source that cannot be reached
is ``SourceUnavailable``; one that refuses the connection (login, database name) is
``SourceRefused``; a URL whose options cannot make a connection, or a table the source
rejects (a name it does not allow, an unknown schema) is ``ConfigError``, naming the field.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from syncd.engine.connect import connect_source, explained, from_driver, is_transient
from syncd.engine.errors import (
    ConfigError,
    SourceRefused,
    SourceUnavailable,
    SyncError,
    cut,
    shown,
)
from syncd.engine.keys import require_unique_key
from syncd.engine.schema import SourceTable, check_reflected, reflect_source
from syncd.engine.spec import TableSync


def _said(error: BaseException) -> str:
    if isinstance(error, SyncError):
        return str(error)
    return f"{type(error).__name__}: {cut(str(error))}"


def open_source(url: str) -> Engine:
    """An engine on the source; ConfigError if the URL's settings cannot make one."""
    try:
        return connect_source(url)
    except Exception as exc:  # noqa: BLE001  (SQLAlchemy and drivers raise many kinds)
        raise ConfigError(f'field "url": {_said(exc)}') from exc


def reach(source: Engine) -> None:
    """Connect once: SourceUnavailable when unreachable, SourceRefused when the database
    refuses the login or the database name, ConfigError when the URL's options are wrong."""
    try:
        with source.connect():
            return
    except Exception as exc:  # noqa: BLE001  (drivers raise many kinds)
        if isinstance(exc, (DBAPIError, OSError)) or from_driver(exc):
            if is_transient(exc):
                raise SourceUnavailable(f"unreachable: {explained(exc)}") from exc
            # every driver calls what a server says when it refuses a login OperationalError
            if type(getattr(exc, "orig", exc)).__name__ == "OperationalError":
                raise SourceRefused(f"refused the connection: {explained(exc)}") from exc
        raise ConfigError(f'field "url": the connection could not be set up: {_said(exc)}'
                          ) from exc


def check_job(spec: TableSync, source: Engine, local: str | None = None,
              unique_key: bool = True, seen: list[SourceTable] | None = None) -> list[str]:
    """Check the job's table, key and cursor at the source, and (given the ``local``
    database's dialect) that the type map takes every column; returns warnings.

    ``unique_key`` False: a key the source does not declare unique is not checked
    here (a run checks the rows it reads: see ``engine.keys``). ``seen``: the source
    table as reflected is added to it when the job passes."""
    try:
        src = reflect_source(spec, source)
        warnings = check_reflected(spec, src, local)
        if unique_key:
            require_unique_key(spec, source, src)
        if seen is not None:
            seen.append(src)
    except (ConfigError, SourceUnavailable):
        raise
    except SyncError as exc:  # the source rejected the table's name
        raise ConfigError(f'field "table": {exc}') from exc
    except Exception as exc:  # noqa: BLE001  (what the source answered about the table)
        raise ConfigError(f'field "table": table {shown(spec.qualified_table)} could not be '
                          f"checked: {_said(exc)}") from exc
    return warnings
