"""PostgreSQL -> PostgreSQL: batches moved as PostgreSQL's own COPY text, untouched.

Used when the type map needs no converter for any column (``plan.convert is None``):
the select list is the same as on the row path (``readers.select_list``), run as
``COPY (SELECT ...) TO STDOUT``; each batch goes into ``COPY ... FROM STDIN`` as it
came. PostgreSQL escapes the text on the way out and unescapes it on the way in, so
every value is the same text the row path reads. Only the last row of each batch is
decoded, for its key (the checkpoint).
"""

from __future__ import annotations

import fcntl
import os
import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Select

from syncd.engine.load import CopyData, decode_copy_line
from syncd.engine.readers import compile_query, select_list
from syncd.engine.typemap import ColumnPlan

CHUNK = 1 << 20  # bytes moved through the pipe at a time
AHEAD = 2  # batches cut and waiting while one is written
_DONE = object()
# Types whose cast to text is their output function: COPY writes the same text as
# ``::text`` does, so a column of one of them copied into the same type is selected bare.
SAME_TEXT = frozenset({"int2", "int4", "int8", "numeric", "float4", "float8", "text",
                       "varchar", "date", "timestamp", "timestamptz", "uuid"})


def copy_select_list(columns: Sequence[Column[Any]], plans: Sequence[ColumnPlan],
                     ) -> list[ColumnElement[Any]]:
    """``readers.select_list`` for COPY: no cast where COPY writes that text anyway (the
    casts cost the source about a third of the COPY)."""
    listed = select_list(columns, plans)
    return [col if plan.read == "text" and plan.source.kind in SAME_TEXT
            and plan.ddl == plan.source.spelling and plan.convert is None else expr
            for col, plan, expr in zip(columns, plans, listed)]
_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class _Batcher:
    """Cuts a stream of COPY text into batches of whole lines: at most ``batch_size``
    rows, ending at the line that reaches ``max_bytes``."""

    def __init__(self, batch_size: int, max_bytes: int | None) -> None:
        self.batch_size, self.max_bytes = batch_size, max_bytes or 0
        self.parts: list[bytes] = []
        self.rows = self.size = 0
        self.tail = b""  # a line not yet complete

    def feed(self, chunk: bytes) -> Iterator[tuple[bytes, int, bool]]:
        """The batches completed by ``chunk``: (text, rows, ended at max_bytes)."""
        data = self.tail + chunk if self.tail else chunk
        end = data.rfind(b"\n") + 1
        self.tail = data[end:]
        pos = 0
        while pos < end:
            want = self.batch_size - self.rows
            stop, rows = end, data.count(b"\n", pos, end)
            if rows >= want:  # the batch's last row is in this chunk
                stop, rows = end - len(data[pos:end].split(b"\n", want)[-1]), want
            if self.max_bytes and self.size + stop - pos >= self.max_bytes:
                # the batch ends with the line that reaches max_bytes
                stop = data.find(b"\n", pos + max(self.max_bytes - self.size - 1, 0)) + 1
                rows = data.count(b"\n", pos, stop)
            self.parts.append(data[pos:stop])
            self.rows += rows
            self.size += stop - pos
            pos = stop
            if self.rows >= self.batch_size or self.max_bytes and self.size >= self.max_bytes:
                yield self.take(cut=self.rows < self.batch_size)

    def take(self, cut: bool) -> tuple[bytes, int, bool]:
        text, rows = b"".join(self.parts), self.rows
        self.parts, self.rows, self.size = [], 0, 0
        return text, rows, cut


def _last_line(text: bytes) -> bytes:
    return text[text.rfind(b"\n", 0, len(text) - 1) + 1:]


def copy_batches(conn: Connection, query: Select[Any], batch_size: int,
                 max_bytes: int | None,
                 ) -> Generator[tuple[CopyData, list[str | None], bool], None, None]:
    """Yield (batch as COPY text, its last row's values as text, ended at max_bytes).

    A thread runs the COPY into a pipe (psycopg2 writes each row to a C-level buffered
    file: no Python work per row); a second thread reads the pipe a megabyte at a time
    and cuts batches, AHEAD of them at most, so the source keeps sending while a batch
    is written and committed. Stopping early aborts the COPY and drops the connection.
    """
    sql, args = compile_query(conn, query)
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor()
    statement = f"COPY ({cursor.mogrify(sql, args).decode()}) TO STDOUT"
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, _SETPIPE_SZ, CHUNK)
    except OSError:  # a smaller pipe only means more switches
        pass
    sink = open(write_fd, "wb", buffering=CHUNK)  # noqa: SIM115  (closed by the thread)
    failed: list[BaseException] = []
    slots: queue.Queue[Any] = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            cursor.copy_expert(statement, sink, size=CHUNK)
            sink.flush()
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer)
            failed.append(exc)
        finally:
            try:
                sink.close()
            except OSError:  # the reader closed the pipe: what was buffered is not wanted
                pass

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def cut_batches() -> None:
        batcher = _Batcher(batch_size, max_bytes)
        try:
            while chunk := os.read(read_fd, CHUNK):
                for batch in batcher.feed(chunk):
                    if not put(batch):
                        return
            if batcher.rows:
                put(batcher.take(cut=False))
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer)
            put(exc)
        finally:
            os.close(read_fd)  # a COPY still writing fails on the closed pipe and ends

    threads = [threading.Thread(target=produce, name="syncd-copy-out", daemon=True),
               threading.Thread(target=cut_batches, name="syncd-copy-cut", daemon=True)]
    for thread in threads:
        thread.start()
    finished = False
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            text, rows, cut = item
            yield CopyData(text, "text", rows), decode_copy_line(_last_line(text)), cut
        threads[0].join()
        finished = True
        if failed:
            raise failed[0]
    finally:
        stop.set()
        while threads[1].is_alive():
            try:
                slots.get(timeout=0.1)
            except queue.Empty:
                pass
        threads[0].join()
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
