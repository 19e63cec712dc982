"""One ``syncd up`` per var directory: a lock file that dies with its process.

A second ``syncd up`` in the same var directory would start a second worker with a
second beat on the same broker (every tick twice). The first one holds an exclusive
``flock`` on ``<var>/syncd-up.lock`` for as long as it runs and writes who it is into
the file; the second finds the lock taken and names the running instance.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from syncd.models import utcnow

LOCK_NAME = "syncd-up.lock"


class AlreadyRunning(Exception):
    """Another ``syncd up`` runs in this var directory."""


class UpLock:
    """The lock of one var directory: ``with UpLock(var_dir) as lock: ...``."""

    def __init__(self, var_dir: Path) -> None:
        self.path = Path(var_dir) / LOCK_NAME
        self._file: IO[Any] | None = None

    def __enter__(self) -> UpLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (held until __exit__)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read()
            handle.close()
            raise AlreadyRunning(self._refusal(holder)) from None
        self._file = handle
        self.record(None)
        return self

    def record(self, admin_page: str | None) -> None:
        """Write who holds the lock (and, once known, where its admin page is)."""
        assert self._file is not None
        facts = {"pid": os.getpid(), "host": socket.gethostname(),
                 "since": utcnow().isoformat(timespec="seconds").replace("+00:00", "Z"),
                 "admin_page": admin_page}
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(facts) + "\n")
        self._file.flush()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _refusal(self, holder: str) -> str:
        try:
            facts = json.loads(holder)
        except ValueError:
            facts = {}
        where = self.path.parent
        if not isinstance(facts, dict) or "pid" not in facts:
            return (f"syncd up is already running in {where} (it holds {self.path}); "
                    "stop it first")
        page = f", admin page {facts['admin_page']}" if facts.get("admin_page") else ""
        return (f"syncd up is already running in {where}: pid {facts['pid']} on "
                f"{facts.get('host')} since {facts.get('since')}{page}; stop it first "
                f"(Ctrl-C in its terminal, or kill {facts['pid']}), or give this one its own "
                "SYNCD_VAR_DIR and broker")
