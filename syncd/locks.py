"""One run per job at a time: a lock that dies with its process, and its fencing token.

PostgreSQL: a session advisory lock; MySQL/MariaDB: GET_LOCK; SQLite: an
exclusive flock on a file beside the database. The lock lives in (or beside)
the local database, so it holds across every worker that shares it.

A session lock also dies with its connection when the local database restarts,
while the run goes on. So the run that takes the lock also writes its run id into
the job's lease row (``syncd_job_leases``), and ``JobFence`` checks that row, locked,
first in every local transaction that writes: a run that another run or
housekeeping took over stops there without writing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from syncd.engine.connect import is_transient
from syncd.engine.errors import LostJobLock
from syncd.models import JobLease, utcnow

LOST = "lost the job lock"


def _pg_key(job: str) -> int:
    digest = hashlib.sha256(f"syncd:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _mysql_name(database: str | None, job: str) -> str:
    """GET_LOCK names are server-wide: the database's name keeps installations apart."""
    return "syncd:" + hashlib.sha256(f"{database or ''}/{job}".encode()).hexdigest()[:40]


class JobLock:
    """The lock of one job on the local database. Use ``acquire()`` / ``release()``.

    ``beside``: a lock held meanwhile by this process (a run's job lock, for the slot
    it takes next): this one is taken on the same connection instead of one of its
    own. It must be released first; the lock beside which others were taken releases
    every lock of its connection when it is released.
    """

    def __init__(self, engine: Engine, job: str, beside: JobLock | None = None) -> None:
        self.engine = engine
        self.job = job
        self.backend = engine.dialect.name
        self.beside = beside
        self._conn: Connection | None = None
        self._shared = False  # _conn belongs to the lock beside which this one was taken
        self._lent = False  # a lock was taken beside this one, on its connection
        self._file: IO[Any] | None = None
        self._mysql_name = _mysql_name(engine.url.database, job)

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        if self.backend == "sqlite":
            return self._acquire_file()
        shared = self.beside._conn if self.beside is not None else None
        if shared is not None and (shared.closed or shared.invalidated):
            shared = None
        conn = shared or self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if self.backend == "postgresql":
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": _pg_key(self.job)}
                ).scalar()
            elif self.backend in ("mysql", "mariadb"):
                got = conn.execute(
                    text("SELECT GET_LOCK(:n, 0)"), {"n": self._mysql_name}
                ).scalar()
            else:
                raise RuntimeError(f"no job lock for local database {self.backend}")
        except BaseException:
            if shared is None:
                conn.close()
            raise
        if got:
            self._conn = conn
            if shared is not None and self.beside is not None:
                self._shared = self.beside._lent = True
            return True
        if shared is None:
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
        """Give the lock back (also done by the database or OS when the process dies).

        A connection that was lost took the lock with it: nothing to give back then.
        """
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            shared, self._shared = self._shared, False
            everything, self._lent = self._lent, False
            if conn.closed or conn.invalidated:  # gone, and its locks with it
                if not shared:
                    conn.close()
                return
            try:
                if self.backend == "postgresql":
                    if everything:  # with what was taken beside it
                        conn.execute(text("SELECT pg_advisory_unlock_all()"))
                    else:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"),
                                     {"k": _pg_key(self.job)})
                elif everything:
                    conn.execute(text("SELECT RELEASE_ALL_LOCKS()"))
                else:
                    conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self._mysql_name})
            except DBAPIError:
                conn.invalidate()  # never back to the pool still holding the lock
            finally:
                if not shared:
                    conn.close()

    def ensure(self) -> None:
        """Prove the lock is still held; take it again if its connection was lost and it is free.

        Raises LostJobLock when another process holds it now, and the database error
        when the local database cannot be reached (the caller retries).
        """
        if self.backend == "sqlite":
            if self._file is None:
                raise LostJobLock(f"{LOST}: it is not held")
            return
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return
            except DBAPIError as exc:
                conn, self._conn = self._conn, None
                self._lent = False  # what was taken beside it died with the connection
                conn.invalidate()
                conn.close()
                if not is_transient(exc):
                    raise
        if not self.acquire():
            raise LostJobLock(
                f"{LOST}: its connection to the local database was lost (did the database "
                "restart?) and another process holds the lock now; stopped without writing"
            )

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def take_lease(conn: Connection, job: str, run_id: int, holder: str) -> None:
    """Make ``run_id`` the job's lease holder (call with the job's lock held)."""
    values = {"run_id": run_id, "holder": holder[:255], "taken_at": utcnow()}
    done = conn.execute(update(JobLease).where(JobLease.job == job).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(JobLease).values(job=job, **values))


def fence_off(conn: Connection, job: str, run_ids: list[int]) -> None:
    """Take the job away from runs marked abandoned: none of them may write again."""
    if run_ids:
        conn.execute(update(JobLease).where(JobLease.job == job, JobLease.run_id.in_(run_ids))
                     .values(run_id=None, holder=None, taken_at=utcnow()))


class JobFence:
    """The fencing token of one run: called first in every local write transaction.

    Locks the job's lease row and checks that this run still holds it, then that the
    job lock is still held (taken again if its connection was lost and nobody else
    has it). Raises LostJobLock otherwise, so nothing of the transaction is written.
    """

    def __init__(self, lock: JobLock, run_id: int) -> None:
        self.lock = lock
        self.run_id = run_id

    def __call__(self, conn: Connection) -> None:
        owner = conn.execute(
            select(JobLease.run_id).where(JobLease.job == self.lock.job).with_for_update()
        ).scalar()
        if owner != self.run_id:
            who = f"run #{owner}" if owner is not None else \
                "housekeeping (it found the lock free and marked this run abandoned)"
            raise LostJobLock(f"{LOST}: {who} took the job over; stopped without writing")
        self.lock.ensure()
