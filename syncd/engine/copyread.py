"""PostgreSQL -> PostgreSQL: batches moved as PostgreSQL's own COPY text, untouched.

Used when the type map needs no converter for any column (``plan.convert is None``):
the select list is the same as on the row path (``readers.select_list``), run as
``COPY (SELECT ...) TO STDOUT``; each batch goes into ``COPY ... FROM STDIN`` as it
came. PostgreSQL escapes the text on the way out and unescapes it on the way in, so
every value is the same text the row path reads. Only the last row of each batch is
decoded, for its key (the checkpoint).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Sequence
from typing import Any

from sqlalchemy import Connection, Select

from syncd.engine.load import CopyData, decode_copy_line
from syncd.engine.readers import compile_query


class _Stop(Exception):
    """Raised into psycopg2's COPY by the sink: the consumer stopped reading."""


class _Sink:
    """The file psycopg2 writes COPY rows into; hands out batches through a queue."""

    def __init__(self, slots: queue.Queue[Any], batch_size: int, max_bytes: int | None,
                 stop: threading.Event) -> None:
        self.slots, self.batch_size, self.max_bytes, self.stop = slots, batch_size, \
            max_bytes, stop
        self.lines: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        if self.stop.is_set():
            raise _Stop()
        self.lines.append(data)
        self.size += len(data)
        if len(self.lines) >= self.batch_size or (self.max_bytes and
                                                  self.size >= self.max_bytes):
            self.flush_batch(last=False)
        return len(data)

    def flush_batch(self, last: bool) -> None:
        if self.lines:
            cut = not last and len(self.lines) < self.batch_size
            item = (CopyData(b"".join(self.lines), "text", len(self.lines)), self.lines[-1],
                    cut)
            self.lines, self.size = [], 0
            while not self.stop.is_set():
                try:
                    self.slots.put(item, timeout=0.5)
                    return
                except queue.Full:
                    continue
            raise _Stop()


def copy_batches(conn: Connection, query: Select[Any], batch_size: int,
                 max_bytes: int | None,
                 ) -> Generator[tuple[CopyData, list[str | None], bool], None, None]:
    """Yield (batch as COPY text, its last row's values as text, ended at max_bytes).

    A thread runs the COPY; stopping early aborts it and drops the connection.
    """
    sql, args = compile_query(conn, query)
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor()
    statement = f"COPY ({cursor.mogrify(sql, args).decode()}) TO STDOUT"
    slots: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    done = object()
    sink = _Sink(slots, batch_size, max_bytes, stop)

    def produce() -> None:
        try:
            cursor.copy_expert(statement, sink, size=1 << 20)
            sink.flush_batch(last=True)
            slots.put(done)
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer)
            slots.put(exc)

    thread = threading.Thread(target=produce, name="syncd-copy-out", daemon=True)
    thread.start()
    finished = False
    try:
        while True:
            item = slots.get()
            if item is done:
                finished = True
                return
            if isinstance(item, BaseException):
                finished = True
                raise item
            data, last, cut = item
            yield data, decode_copy_line(last), cut
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get(timeout=0.1)
            except queue.Empty:
                pass
        cursor.close()
        if not finished:  # the COPY was aborted half-way: the connection is not reusable
            conn.invalidate()


def first_batch(conn: Connection, query: Select[Any], limit: int, max_bytes: int | None,
                ) -> tuple[CopyData | None, list[str | None], bool]:
    """The first batch of ``query`` (an incremental batch): data, last row, cut by bytes."""
    batches = copy_batches(conn, query, limit, max_bytes)
    try:
        for data, last, cut in batches:
            return data, last, cut
        return None, [], False
    finally:
        batches.close()


def key_of(last: Sequence[str | None], index: Sequence[int], plans: Sequence[Any]) -> tuple[
        Any, ...]:
    """The typed key (checkpoint) of a row given as COPY text values."""
    return tuple(plan.key(last[i]) for plan, i in zip(plans, index))
