"""Holding a sync run at a known point from the test, however fast the load is.

A test never relies on how fast something runs: to catch a run in progress it
blocks the run. ``SourceGate`` puts a view over a source table that makes every
reader wait at one row while the test holds the gate. A full load streams one
query in key order, so it commits the batches before that row and then waits,
inside its read and holding the job's lock, until the test opens the gate. Only
the streamed read of all columns waits: the row count and the highest cursor
value that a load reads first do not touch the gated column.

    gate = SourceGate(source_url, at=1_001)     # creates the view "orders_gated"
    jobs = jobs_toml(source_url, **gate.job_fields())
    with gate:                                  # held: readers wait at row 1001
        ...start a run...
        gate.wait_until_reached()               # a run waits there: it cannot finish
    # opened: the run goes on

The rows just before the gate row may still sit in the source server's send
buffer (MariaDB: at most its 16 KiB net buffer) or in the batch the reader is
filling, so a run commits up to a few batches before the gate row, never past it.

PostgreSQL sources use an advisory lock, MySQL/MariaDB sources a named lock
(``GET_LOCK``); SQLite has no locks a view could wait on.
"""

from __future__ import annotations

import hashlib
import time
from types import TracebackType
from typing import Any

import pytest
import sqlalchemy as sa

GATE_FUNCTION = "syncd_test_gate"
MYSQL_GATE_WAIT_SECONDS = 600  # a gate held longer fails the read instead of opening


class SourceGate:
    """A view over ``table`` whose readers wait at the row ``key = at`` while the gate is held.

    Creating the gate creates the view ``<table>_gated`` (same columns, same rows)
    in the source database. The gate starts open; ``hold()`` (or ``with gate:``)
    closes it, ``open()`` opens it again. A job reads the view with ``job_fields()``:
    the view as its table, ``table`` as its local target, ``key`` as its primary key.
    """

    def __init__(self, url: str, at: int, table: str = "orders", key: str = "id",
                 column: str = "note") -> None:
        self.url = url
        self.at = at
        self.table = table
        self.key = key
        self.column = column
        self.view = f"{table}_gated"
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("postgresql", "mysql", "mariadb"):
            raise ValueError(f"no source gate for {self.dialect} (PostgreSQL or MySQL only)")
        database = self.engine.url.database or ""
        self.lock_name = f"syncd-test-gate:{database}"  # MySQL: one namespace per server
        self.lock_key = int.from_bytes(
            hashlib.sha256(self.lock_name.encode()).digest()[:8], "big", signed=True)
        self._holder: sa.Connection | None = None
        self._install()

    def job_fields(self) -> dict[str, Any]:
        """Fields of a job that reads the table through the gate into the local ``table``."""
        return {"table": self.view, "target": self.table, "primary_key": [self.key]}

    def hold(self) -> None:
        """Close the gate: from now on a reader that reaches row ``at`` waits there."""
        if self._holder is not None:
            return
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": self.lock_key})
            else:
                got = conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"),
                                   {"n": self.lock_name}).scalar()
                assert got == 1, f"the gate lock {self.lock_name} is held elsewhere"
        except BaseException:
            conn.close()
            raise
        self._holder = conn

    def open(self) -> None:
        """Open the gate: waiting readers go on, later ones pass without waiting."""
        if self._holder is None:
            return
        try:
            if self.dialect == "postgresql":
                self._holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                     {"k": self.lock_key})
            else:
                self._holder.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": self.lock_name})
        finally:
            self._holder.close()  # closing the session releases its lock in any case
            self._holder = None

    def waiting(self) -> int:
        """How many readers wait at the gate right now."""
        if self.dialect == "postgresql":
            query = ("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")
        else:
            query = ("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                     "WHERE DB = DATABASE() AND STATE = 'User lock'")
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(query).scalar_one())

    def wait_until_reached(self, timeout: float = 60) -> None:
        """Wait until a reader waits at the gate (fail after ``timeout`` s)."""
        assert self._holder is not None, "the gate is open: nothing can wait at it"
        deadline = time.monotonic() + timeout
        while not self.waiting():
            if time.monotonic() > deadline:
                pytest.fail(f"no reader reached row {self.key} = {self.at} of {self.view} "
                            f"in {timeout}s")
            time.sleep(0.05)

    def __enter__(self) -> SourceGate:
        self.hold()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.open()

    def _install(self) -> None:
        columns = self._columns()
        if self.column not in columns or self.key not in columns:
            raise ValueError(f"{self.table} has no column {self.column!r} or {self.key!r}")
        with self.engine.begin() as conn:
            quote = conn.dialect.identifier_preparer.quote
            if self.dialect == "postgresql":
                conn.exec_driver_sql(self._postgres_function())
            else:
                conn.exec_driver_sql(self._mysql_function(columns[self.column]))
            gated = f"{GATE_FUNCTION}({quote(self.key)}, {quote(self.column)})"
            if self.dialect == "postgresql":  # keeps the column's declared type and length
                gated = f"CAST({gated} AS {columns[self.column]})"
            select = ", ".join(f"{gated} AS {quote(name)}" if name == self.column
                               else quote(name) for name in columns)
            conn.exec_driver_sql(
                f"CREATE VIEW {quote(self.view)} AS SELECT {select} FROM {quote(self.table)}")

    def _columns(self) -> dict[str, str]:
        """The table's columns in order, each with its declared type as SQL text."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                rows = conn.execute(sa.text(
                    "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                    "WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 "
                    "AND NOT a.attisdropped ORDER BY a.attnum"), {"t": self.table})
            else:
                rows = conn.execute(sa.text(
                    "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t "
                    "ORDER BY ORDINAL_POSITION"), {"t": self.table})
            return {name: type_ for name, type_ in rows}

    def _postgres_function(self) -> str:
        # STABLE: the planner may leave it out of queries that do not read the column
        # (COUNT(*), MAX(cursor)); each evaluation still waits while the gate is held.
        return f"""
            CREATE OR REPLACE FUNCTION {GATE_FUNCTION}(row_key bigint, value anyelement)
            RETURNS anyelement LANGUAGE plpgsql STABLE AS $$
            BEGIN
                IF row_key = {int(self.at)} THEN
                    PERFORM pg_advisory_lock_shared({self.lock_key});
                    PERFORM pg_advisory_unlock_shared({self.lock_key});
                END IF;
                RETURN value;
            END $$"""

    def _mysql_function(self, value_type: str) -> str:
        return f"""
            CREATE FUNCTION {GATE_FUNCTION}(row_key BIGINT, value {value_type})
            RETURNS {value_type} NOT DETERMINISTIC NO SQL
            BEGIN
                IF row_key = {int(self.at)} THEN
                    IF GET_LOCK('{self.lock_name}', {MYSQL_GATE_WAIT_SECONDS}) = 0 THEN
                        SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'test gate held too long';
                    END IF;
                    DO RELEASE_LOCK('{self.lock_name}');
                END IF;
                RETURN value;
            END"""
