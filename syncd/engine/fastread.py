"""The optional fast MySQL reader (``pip install 'syncd[fast]'``): asyncmy, Cython-built.

It reads exactly what PyMySQL reads on the raw path: MySQL's text protocol with no
value conversion (``conv={}``), so every value is the text MySQL sent, or bytes for
binary columns; the two drivers decide text or bytes by the same column-type rules.
asyncmy speaks asyncio only: the reader runs it on an event loop of its own, in
whatever thread drives the iterator (a full load's reader thread). It is used for
the one long streaming read of a full load, where parsing is the limit.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError

READERS = ("auto", "pymysql", "asyncmy")


def available() -> bool:
    """True if asyncmy is installed."""
    return importlib.util.find_spec("asyncmy") is not None


def choose(setting: str) -> str:
    """The MySQL reader a run uses: "asyncmy" or "pymysql" ("auto": asyncmy if installed)."""
    if setting == "pymysql" or (setting == "auto" and not available()):
        return "pymysql"
    if setting not in READERS:
        raise ValueError(f"unknown MySQL reader {setting!r} (one of {', '.join(READERS)})")
    return "asyncmy"


def connect_params(raw: Any) -> dict[str, Any]:
    """asyncmy's connection arguments, taken from an open PyMySQL connection to the source."""
    params: dict[str, Any] = {
        "host": raw.host, "port": raw.port, "user": raw.user, "password": raw.password,
        "database": raw.db, "charset": raw.charset, "unix_socket": raw.unix_socket,
        "init_command": raw.init_command, "connect_timeout": raw.connect_timeout,
    }
    ssl_capability = 2048  # CLIENT_SSL: TLS is used when both sides offer it
    if getattr(raw, "ssl", False) and raw.server_capabilities & ssl_capability:
        params["ssl"] = raw.ctx
    return params


def stream(params: dict[str, Any], sql: str, args: Any,
           cut: Callable[[Callable[[int], Sequence[Any]]], Iterator[list[Any]]],
           ) -> Iterator[list[Any]]:
    """Run ``sql`` on an unbuffered asyncmy cursor; ``cut`` turns fetches into batches."""
    import asyncmy  # optional: imported only when chosen
    from asyncmy.cursors import SSCursor
    from asyncmy.errors import MySQLError

    loop = asyncio.new_event_loop()
    conn = None
    finished = False
    try:
        conn = loop.run_until_complete(asyncmy.connect(conv={}, **params))
        cursor = conn.cursor(SSCursor)
        loop.run_until_complete(cursor.execute(sql, args or None))

        def fetch(size: int) -> Sequence[Any]:
            return loop.run_until_complete(cursor.fetchmany(size))  # type: ignore[no-any-return]

        yield from cut(fetch)
        finished = True
    except MySQLError as exc:  # as SQLAlchemy wraps PyMySQL's errors, for translated_errors
        raise DBAPIError(sql, None, exc) from exc  # type: ignore[arg-type]
    finally:
        if conn is not None:
            if finished:
                loop.run_until_complete(conn.ensure_closed())
            else:  # stopped early: drop the connection instead of draining the result
                conn.close()
        loop.close()
