"""Checking a job against its source before anything runs, with every answer sorted out.

``syncd check`` and ``syncd run`` must end with a one-line message and the right exit
code, never a traceback, whatever the jobs file says: a source that cannot be reached
is ``SourceUnavailable``; a source that refuses the connection (login, database name,
driver option) or rejects the table (a name it does not allow, an unknown schema) is
``ConfigError``, naming the field.
"""

from __future__ import annotations

from sqlalchemy import Engine

from syncd.engine.connect import connect_source, translated_errors
from syncd.engine.errors import ConfigError, SourceUnavailable, SyncError, cut, shown
from syncd.engine.keys import require_unique_key
from syncd.engine.schema import check_table, reflect_source
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
    """Connect once: SourceUnavailable when unreachable, ConfigError when refused."""
    try:
        with translated_errors("source"), source.connect():
            return
    except SourceUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001  (a refusal: login, database name, options)
        raise ConfigError(f'field "url": the source refused the connection: {_said(exc)}'
                          ) from exc


def check_job(spec: TableSync, source: Engine, local: str | None = None) -> list[str]:
    """Check the job's table, key and cursor at the source, and (given the ``local``
    database's dialect) that the type map takes every column; returns warnings."""
    try:
        warnings = check_table(spec, source, local)
        require_unique_key(spec, source, reflect_source(spec, source))
    except (ConfigError, SourceUnavailable):
        raise
    except SyncError as exc:  # the source rejected the table's name
        raise ConfigError(f'field "table": {exc}') from exc
    except Exception as exc:  # noqa: BLE001  (what the source answered about the table)
        raise ConfigError(f'field "table": table {shown(spec.qualified_table)} could not be '
                          f"checked: {_said(exc)}") from exc
    return warnings
