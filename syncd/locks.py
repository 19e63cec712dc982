"""One run per job at a time: a lock that dies with its process.

PostgreSQL: a session advisory lock; MySQL/MariaDB: GET_LOCK; SQLite: an
exclusive flock on a file beside the database. The lock lives in (or beside)
the local database, so it holds across every worker that shares it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, text


def _pg_key(job: str) -> int:
    digest = hashlib.sha256(f"syncd:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _mysql_name(job: str) -> str:
    return "syncd:" + hashlib.sha256(job.encode()).hexdigest()[:40]


class JobLock:
    """The lock of one job on the local database. Use ``acquire()`` / ``release()``."""

    def __init__(self, engine: Engine, job: str) -> None:
        self.engine = engine
        self.job = job
        self.backend = engine.dialect.name
        self._conn: Connection | None = None
        self._file: IO[Any] | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        if self.backend == "sqlite":
            return self._acquire_file()
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if self.backend == "postgresql":
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": _pg_key(self.job)}
                ).scalar()
            elif self.backend in ("mysql", "mariadb"):
                got = conn.execute(
                    text("SELECT GET_LOCK(:n, 0)"), {"n": _mysql_name(self.job)}
                ).scalar()
            else:
                raise RuntimeError(f"no job lock for local database {self.backend}")
        except BaseException:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def _lock_path(self) -> Path:
        database = self.engine.url.database or ""
        if not database or database == ":memory:":
            base = Path(os.environ.get("TMPDIR", "/tmp")) / "syncd-locks"
        else:
            base = Path(database).resolve().parent / (Path(database).name + ".locks")
        base.mkdir(parents=True, exist_ok=True)
        return base / (hashlib.sha256(self.job.encode()).hexdigest()[:32] + ".lock")

    def _acquire_file(self) -> bool:
        handle = open(self._lock_path(), "a+")  # noqa: SIM115  (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Give the lock back (also done by the database or OS when the process dies)."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            try:
                if self.backend == "postgresql":
                    self._conn.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _pg_key(self.job)}
                    )
                else:
                    self._conn.execute(
                        text("SELECT RELEASE_LOCK(:n)"), {"n": _mysql_name(self.job)}
                    )
            finally:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
