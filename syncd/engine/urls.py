"""Database URLs as syncd reads them: the drivers it ships, and what is wrong with a URL.

syncd ships psycopg2 and PyMySQL. A URL without a driver (``postgresql://``,
``mysql://``, ``mariadb://``) gets those, whatever SQLAlchemy would pick by
default (psycopg 3, MySQLdb); ``postgres://`` is read as ``postgresql://``, as
libpq does. Any other URL is refused with one sentence saying why, never an
ImportError from deep inside SQLAlchemy.
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from syncd.engine.errors import ConfigError, shown

# The database kinds syncd reads and writes, and the driver it ships for each.
DRIVERS = {"postgresql": "psycopg2", "mysql": "pymysql", "mariadb": "pymysql", "sqlite": "pysqlite"}
ALIASES = {"postgres": "postgresql"}
EXAMPLES = "postgresql://, mysql:// or sqlite:///"


class BadURL(ConfigError):
    """A database URL syncd cannot use: malformed, an unknown kind, a driver it lacks."""


def masked(url: str | URL) -> str:
    """The URL with its password shown as ``***`` (as written, also when it does not parse)."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=url.password is not None)
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError):  # e.g. a port that is not a number
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)
    return parsed.render_as_string(hide_password=parsed.password is not None)


def masked_if_parsed(url: str) -> str | None:
    """The masked URL, or None when it does not parse (a password may then hide anywhere)."""
    try:
        make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError):
        return None
    return masked(url)


def database_url(url: str | URL) -> URL:
    """``url`` with the driver syncd ships for its kind; BadURL if syncd cannot use it."""
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError) as exc:
        raise BadURL("not a database URL (write e.g. postgresql://user:password@host/database, "
                     "mysql://user:password@host/database or sqlite:///path/to/file.sqlite)"
                     ) from exc
    backend, _, driver = parsed.drivername.partition("+")
    backend = ALIASES.get(backend, backend)
    if backend not in DRIVERS:
        raise BadURL(_unknown_kind(backend, parsed))
    wanted = DRIVERS[backend]
    if driver and driver != wanted:
        raise BadURL(
            f"syncd reads {backend} databases with {wanted}, which it ships, not with "
            f"{shown(driver)} (write {backend}:// or {backend}+{wanted}://)")
    parsed = parsed.set(drivername=f"{backend}+{wanted}")
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:  # a broken installation: the driver syncd depends on is gone
        raise BadURL(f"the driver {wanted} of {backend}:// is not installed "
                     "(reinstall syncd: pip install -e .)") from exc
    return parsed


def _unknown_kind(backend: str, parsed: URL) -> str:
    try:
        parsed.get_dialect()
    except (sa_exc.ArgumentError, ImportError):
        hint = " (did you mean postgresql://?)" if backend.startswith("postgr") else ""
        return f"unknown database kind {shown(backend)}{hint}: syncd works with {EXAMPLES}"
    return (f"syncd does not work with {shown(backend)} databases, only with PostgreSQL, "
            f"MySQL/MariaDB and SQLite ({EXAMPLES})")
