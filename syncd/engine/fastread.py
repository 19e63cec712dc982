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


class Reader:
    """An asyncmy connection on an event loop of its own, reading in one snapshot.

    Each query's result is read whole (the caller bounds it with LIMIT): asyncmy's
    unbuffered cursor parses whatever the server has sent so far into Python rows,
    which for a fast server is most of the table.
    """

    def __init__(self, params: dict[str, Any]) -> None:
        import asyncmy  # optional: imported only when chosen
        from asyncmy.converters import conversions

        # Encoders (keys are Python types) for the parameters; no decoders (keys are MySQL
        # field types): values stay the text MySQL sent.
        encoders = {k: v for k, v in conversions.items() if not isinstance(k, int)}
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None
        self.pending: asyncio.Task[list[Any]] | None = None  # a query sent, rows not read
        try:
            self.conn = self._run(asyncmy.connect(conv=encoders, **params))
            self._run(self._execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"))
        except BaseException:
            self.close()
            raise

    def _run(self, coroutine: Any) -> Any:
        from asyncmy.errors import MySQLError

        try:
            return self.loop.run_until_complete(coroutine)
        except MySQLError as exc:  # as SQLAlchemy wraps PyMySQL's, for translated_errors
            raise DBAPIError("asyncmy", None, exc) from exc  # type: ignore[arg-type]

    async def _execute(self, sql: str, args: Any = None) -> list[Any]:
        async with self.conn.cursor() as cursor:
            await cursor.execute(sql, args or None)
            return list(await cursor.fetchall())

    def rows(self, sql: str, args: Any) -> list[Any]:
        """All rows of ``sql``, as MySQL's text (bytes for binary columns)."""
        return self._run(self._execute(sql, args))  # type: ignore[no-any-return]

    def send(self, sql: str, args: Any) -> None:
        """Send ``sql`` now and return: the source runs it and sends its rows (into the
        socket's buffers) while the caller works; ``received()`` reads them."""
        self.pending = self.loop.create_task(self._execute(sql, args))
        self.loop.run_until_complete(asyncio.sleep(0))  # the task runs until it waits

    def received(self) -> list[Any]:
        """All rows of the query ``send()`` sent, as ``rows()`` returns them."""
        task, self.pending = self.pending, None
        assert task is not None
        return self._run(task)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Quit the connection (ending its snapshot) and the event loop."""
        if self.pending is not None:  # a result not read: the connection is closed unread
            self.pending.cancel()
            try:
                self.loop.run_until_complete(self.pending)
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110  (closed anyway)
                pass
            self.pending = None
        if self.conn is not None:
            try:
                self.loop.run_until_complete(self.conn.ensure_closed())
            except Exception:  # noqa: BLE001  (a lost connection: drop the socket)
                self.conn.close()
                self.loop.run_until_complete(asyncio.sleep(0))  # let the transport close
            self.conn = None
        self.loop.close()
