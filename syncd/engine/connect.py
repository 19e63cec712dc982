"""Connections to source databases, and which errors are worth a retry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from syncd.engine.errors import ConfigError, SourceUnavailable, SyncError
from syncd.engine.urls import database_url

# MySQL client/server codes of a lost or refused connection, a lock timeout, a deadlock.
MYSQL_TRANSIENT = {1040, 1053, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055}
# Drivers whose own exceptions may reach syncd unwrapped (raw cursors of the fast paths).
DRIVER_MODULES = ("pymysql", "psycopg2", "sqlite3")
# What a PostgreSQL server answers when it refuses a connection (libpq reports no SQLSTATE).
PG_REFUSALS = re.compile(r"password authentication failed|no password supplied|"
                         r"database \S+ does not exist|role \S+ does not exist|"
                         r"no pg_hba\.conf entry|authentication failed")


def connect_source(url: str) -> Engine:
    """An engine on a source database (created lazily: nothing connects yet).

    A small pool keeps one connection for the run's batches; each batch still ends
    its read transaction when the connection goes back to the pool (rollback).
    """
    parsed = database_url(url)
    kwargs: dict[str, object] = {"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True}
    backend = parsed.get_backend_name()
    if backend == "mysql":
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(query=query)
        # TIMESTAMP values are read in UTC (naive DATETIME values in the source's time zone).
        kwargs["connect_args"] = {"connect_timeout": 10, "read_timeout": 3600,
                                  "init_command": "SET time_zone = '+00:00'"}
    elif backend == "postgresql":
        # The text form of every value is fixed: ISO dates, PostgreSQL-style intervals,
        # timestamptz in UTC, floats exact and shortest, bytea as hex.
        kwargs["connect_args"] = {
            "connect_timeout": 10, "application_name": "syncd",
            "options": "-c DateStyle=ISO,YMD -c IntervalStyle=postgres -c TimeZone=UTC "
                       "-c extra_float_digits=1 -c bytea_output=hex",
        }
    elif backend == "sqlite":
        kwargs = {"poolclass": NullPool, "connect_args": {"timeout": 60}}
    return create_engine(parsed, **kwargs)


def is_mysql(engine: Engine) -> bool:
    """True for a MySQL or MariaDB database."""
    return engine.dialect.name in ("mysql", "mariadb")


def is_transient(error: BaseException) -> bool:
    """True for a refused or lost connection, a lock timeout or a deadlock."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    orig = getattr(error, "orig", error)
    code = orig.args[0] if getattr(orig, "args", None) else None
    module = type(orig).__module__
    if module.startswith(("pymysql", "asyncmy")):
        return isinstance(code, int) and code in MYSQL_TRANSIENT
    if module.startswith("psycopg2"):
        pgcode = getattr(orig, "pgcode", None)
        if pgcode is None:  # raised by the client: connect failed, server closed the connection
            if PG_REFUSALS.search(str(orig)):  # the server answered: no retry changes that
                return False
            return type(orig).__name__ in ("OperationalError", "InterfaceError")
        return pgcode.startswith(("08", "57P", "40001", "40P01", "53"))
    if module.startswith("sqlite3"):  # "unable to open database file": a missing mount, too
        return any(word in str(orig) for word in ("locked", "busy", "unable to open"))
    return isinstance(orig, (ConnectionError, TimeoutError))


@contextmanager
def translated_errors(where: str) -> Iterator[None]:
    """Re-raise database errors as SourceUnavailable (transient) or SyncError."""
    try:
        yield
    except SyncError:
        raise
    except sa_exc.NoSuchTableError as exc:
        raise ConfigError(f"{where}: table {exc} does not exist") from exc
    except Exception as exc:
        if not isinstance(exc, (sa_exc.DBAPIError, OSError)) and not from_driver(exc):
            raise
        if is_transient(exc):
            raise SourceUnavailable(f"{where}: {short(exc)}") from exc
        raise SyncError(f"{where}: {short(exc)}") from exc


def from_driver(error: BaseException) -> bool:
    """True for an error raised by a database driver itself (not wrapped by SQLAlchemy)."""
    return type(error).__module__.startswith(DRIVER_MODULES)


_HINTS = (  # (words of a driver's message, what to check)
    (re.compile(r"access denied|authentication failed|no password supplied", re.I),
     "check the user name and password in the URL (or the ${VAR} they come from)"),
    (re.compile(r"unknown database|database \S+ does not exist", re.I),
     "check the database name at the end of the URL"),
    (re.compile(r"connection refused", re.I),
     "is the server running and listening on that host and port?"),
    (re.compile(r"translate host name|name or service not known|unknown mysql server host|"
                r"name resolution", re.I), "check the host name in the URL"),
    (re.compile(r"timed out|timeout expired", re.I),
     "is the host reachable from here (firewall, network)?"),
    (re.compile(r"unable to open database file", re.I),
     "check that the file's directory exists and is readable"),
)


def cause(error: BaseException) -> str:
    """What a database driver said, in its own words, on one line (no SQL, no links).

    PyMySQL's ``(1045, "Access denied ...")`` reads ``Access denied ... (MySQL error 1045)``;
    psycopg2's ``FATAL:  ...`` loses its prefix.
    """
    orig = getattr(error, "orig", None) or error
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    if type(orig).__module__.startswith("pymysql") and len(args) >= 2 and \
            isinstance(args[0], int):
        return f"{_first_line(str(args[1]))} (MySQL error {args[0]})"
    text = _first_line(str(orig)) or type(orig).__name__
    return re.sub(r"\b(FATAL|ERROR):\s+", "", text)


def hint(error: BaseException) -> str | None:
    """What to check for an error seen when connecting, or None."""
    text = cause(error)
    return next((words for pattern, words in _HINTS if pattern.search(text)), None)


def explained(error: BaseException) -> str:
    """The driver's words with a hint where one helps: one line for an operator."""
    if isinstance(error, SyncError):
        return str(error)
    said, tip = cause(error), hint(error)
    return f"{said}; {tip}" if tip else said


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def short(error: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's SQL and links."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return f"{type(orig).__name__}: {text}"
