"""Breaking databases on purpose, for the outage tests.

- ``PrivatePostgres``: a PostgreSQL server of one test (own data directory, own free
  port), so the test can stop, start and restart it without touching the shared
  server other tests use. Always stopped and deleted at teardown.
- ``held_checkpoints``: makes every batch commit of a sync (a checkpoint update with a
  position) wait until the test lets go, so a run can be caught in the middle of a load
  however fast it is.
- ``kill_source_reader``: kills the MariaDB connection that streams a table (``KILL``),
  which is what a source that goes away mid-query looks like to the reader.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ROOTS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
HOLD_KEY = 7_013_013  # the advisory lock the checkpoint trigger waits for


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


class PrivatePostgres:
    """A PostgreSQL server of its own, for a test that stops or restarts it."""

    def __init__(self) -> None:
        if not PG_ROOTS:
            pytest.fail("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = PG_ROOTS[0]
        self.dir = Path(tempfile.mkdtemp(prefix="syncd-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  "postgres", "--no-sync", "-E", "UTF8")
        self.start()

    @property
    def url(self) -> str:
        """The server's ``postgres`` database."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        proc = subprocess.run(_as_postgres(*command), capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session; ``immediate`` is a crash."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60",
                  "stop")

    def restart(self) -> None:
        """Stop (ending every session and its advisory locks) and start again."""
        self.stop()
        self.start()

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        """Stop the server if it runs and delete its files."""
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def private_postgres_server() -> Iterator[PrivatePostgres]:
    """For a ``private_postgres`` fixture: a server of the test only, deleted afterwards."""
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.destroy()


def wait_until(predicate, timeout: float, what: str, every: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until truthy; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(every)


class Hold:
    """The test's side of ``held_checkpoints``."""

    def __init__(self, local_url: str, conn: sa.Connection) -> None:
        self.local_url = local_url
        self.conn = conn
        self.held = True

    def waiting(self) -> int:
        """How many sessions wait for the test (a batch commit held)."""
        engine = sa.create_engine(self.local_url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'").scalar_one())
        finally:
            engine.dispose()

    def wait_until_blocked(self, timeout: float = 120) -> None:
        """Wait until a batch commit is held."""
        wait_until(self.waiting, timeout, "a batch commit to be held")

    def release(self) -> None:
        """Let the held batch commits go on."""
        if self.held:
            self.conn.exec_driver_sql(f"SELECT pg_advisory_unlock({HOLD_KEY})")
            self.held = False


@contextmanager
def held_checkpoints(local_url: str) -> Iterator[Hold]:
    """While inside, a batch commit of any sync (checkpoint with a position) waits.

    A trigger on ``syncd_checkpoints`` (local PostgreSQL) takes a shared advisory lock
    that the test holds exclusively; the run's batch transaction waits in it until
    ``release()`` or the end of the block. The reader of a full load keeps streaming
    until its read-ahead queue is full, so the run is caught mid-load.
    """
    engine = sa.create_engine(local_url, poolclass=sa.pool.NullPool,
                              isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION syncd_test_hold() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_advisory_xact_lock_shared({HOLD_KEY}); RETURN NEW; END $$")
        conn.exec_driver_sql(
            "CREATE TRIGGER syncd_test_hold BEFORE UPDATE ON syncd_checkpoints FOR EACH ROW "
            "WHEN (NEW.position IS NOT NULL) EXECUTE FUNCTION syncd_test_hold()")
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({HOLD_KEY})")
        hold = Hold(local_url, conn)
        try:
            yield hold
        finally:
            hold.release()
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS syncd_test_hold ON syncd_checkpoints")
    engine.dispose()


def fill_orders_mysql(url: str, count: int, note_size: int = 200) -> None:
    """The sample orders table at a MariaDB source, filled in one statement (sequence engine)."""
    from sample_tables import orders_table

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            orders_table().create(conn)
            conn.exec_driver_sql(
                "INSERT INTO orders (id, customer, amount, qty, note, updated_at) "
                "SELECT seq, CONCAT('customer ', MOD(seq, 97)), seq / 100, MOD(seq, 500), "
                f"REPEAT('x', {int(note_size)}), "
                "TIMESTAMP('2026-01-01 12:00:00') + INTERVAL seq SECOND "
                f"FROM seq_1_to_{int(count)}")
    finally:
        engine.dispose()


def kill_source_reader(url: str, timeout: float = 60, idle: bool = False) -> int:
    """KILL the MariaDB connection that streams a SELECT from the source database
    (``idle``: the one holding a transaction open there, between two of its queries)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    database = sa.engine.make_url(url).database
    try:
        with engine.connect() as conn:
            me = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()

            def reader() -> int | None:
                if idle:
                    return conn.exec_driver_sql(
                        "SELECT p.id FROM information_schema.PROCESSLIST p JOIN "
                        "information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.id "
                        "WHERE p.db = %s AND p.id <> %s AND p.command = 'Sleep' "
                        "ORDER BY p.id LIMIT 1", (database, me)).scalar()
                return conn.exec_driver_sql(
                    "SELECT id FROM information_schema.PROCESSLIST WHERE db = %s AND id <> %s "
                    "AND command = 'Query' AND info LIKE 'SELECT%%' ORDER BY id LIMIT 1",
                    (database, me)).scalar()

            victim = wait_until(reader, timeout, "the source read to start")
            conn.exec_driver_sql(f"KILL CONNECTION {int(victim)}")
            return int(victim)
    finally:
        engine.dispose()


class Background:
    """A ``syncd`` command running in the background, its output in files the test reads."""

    def __init__(self, env, *args: str) -> None:  # type: ignore[no-untyped-def]
        import sys

        stamp = time.monotonic_ns()
        self.out_path = env.tmp_path / f"syncd-{stamp}.out"
        self.err_path = env.tmp_path / f"syncd-{stamp}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "syncd", *args], env=env.env,
                                         cwd=env.tmp_path, stdout=out, stderr=err)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_for_stderr(self, text: str, timeout: float = 120) -> None:
        """Wait until ``text`` appears on stderr (fail if the command ends first)."""
        def seen() -> bool:
            if text in self.stderr:
                return True
            if self.proc.poll() is not None:
                pytest.fail(f"syncd exited {self.proc.returncode} before printing {text!r}:\n"
                            f"{self.stdout}\n{self.stderr}")
            return False

        wait_until(seen, timeout, f"{text!r} on stderr")

    def wait(self, timeout: float = 300) -> int:
        """Wait for the command to end; its exit code."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"syncd did not end in {timeout}s:\n{self.stdout}\n{self.stderr}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def locked_source_table(url: str, table: str = "orders") -> Iterator[sa.Connection]:
    """Hold ``LOCK TABLES <table> WRITE`` on a MariaDB source: every read of it waits."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"LOCK TABLES `{table}` WRITE")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("UNLOCK TABLES")
    finally:
        engine.dispose()


def source_waiters(url: str) -> int:
    """Sessions of the MariaDB source database waiting for a table lock."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    database = sa.engine.make_url(url).database
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE db = %s "
                "AND state LIKE 'Waiting for table%%'", (database,)).scalar_one())
    finally:
        engine.dispose()


def run_rows(local_url: str) -> list[dict]:  # type: ignore[type-arg]
    """The history rows, oldest first, read straight from the local database."""
    from celery_helpers import runs

    return runs(local_url)
