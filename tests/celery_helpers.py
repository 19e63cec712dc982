"""Real Celery processes for the service tests: worker and beat started as an operator
starts them (``celery -A syncd.worker ...``), always killed at teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

CELERY = [sys.executable, "-m", "celery", "-A", "syncd.worker"]


class Service:
    """One background process (own session), its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.log_path = cwd / f"{name}-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in kill)
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        """Wait until ``text`` appears in the output (fail if the process dies first)."""
        wait_for(lambda: text in self.log, timeout,
                 lambda: f"{self.name} never logged {text!r}:\n{self.log[-4000:]}",
                 alive=self)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (pool children and embedded beat too)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            self.proc.wait(timeout=10)
            self._log.close()


class Services:
    """Starts workers and beats for one test and kills them all at teardown."""

    def __init__(self) -> None:
        self.started: list[Service] = []

    def worker(self, env: Any, concurrency: int = 2, *extra: str) -> Service:
        """``celery -A syncd.worker worker --loglevel=info``, ready to consume."""
        service = Service("worker", [*CELERY, "worker", "--loglevel=info",
                                     f"--concurrency={concurrency}", *extra],
                          env.env, env.tmp_path)
        self.started.append(service)
        service.wait_for_log("ready.")
        return service

    def beat(self, env: Any) -> Service:
        """``celery -A syncd.worker beat --loglevel=info``."""
        service = Service("beat", [*CELERY, "beat", "--loglevel=info"], env.env, env.tmp_path)
        self.started.append(service)
        service.wait_for_log("beat: Starting")
        return service

    def kill_all(self) -> None:
        for service in self.started:
            service.kill()


def running_services() -> Iterator[Services]:
    """For a ``services`` fixture: worker and beat processes, killed (SIGKILL) after the test."""
    started = Services()
    try:
        yield started
    finally:
        started.kill_all()


def wait_for(predicate: Callable[[], Any], timeout: float,
             message: Callable[[], str] | str = "condition not met",
             interval: float = 0.1, alive: Service | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None and alive.proc.poll() is not None:
            pytest.fail(f"{alive.name} exited with {alive.proc.returncode}:\n{alive.log[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(message() if callable(message) else message)
        time.sleep(interval)


def runs(local_url: str, job: str | None = None) -> list[dict[str, Any]]:
    """The history rows (JSON form of DESIGN section 5), oldest first, read directly."""
    from sqlalchemy.orm import Session

    from syncd.models import SyncRun

    engine = sa.create_engine(local_url, poolclass=sa.pool.NullPool)
    try:
        with Session(engine) as session:
            query = sa.select(SyncRun).order_by(SyncRun.id)
            if job is not None:
                query = query.where(SyncRun.job == job)
            return [run.to_dict() for run in session.scalars(query)]
    finally:
        engine.dispose()


def run_by_id(local_url: str, run_id: int) -> dict[str, Any] | None:
    """One history row, or None."""
    return next((r for r in runs(local_url) if r["id"] == run_id), None)


def history(env: Any, *args: str) -> list[dict[str, Any]]:
    """``syncd history --json`` as an operator reads it."""
    proc = env.syncd("history", "--json", "--limit", "1000", *args, check=True)
    return json.loads(proc.stdout)


def trigger(env: Any, job: str, *args: str) -> int:
    """``syncd trigger JOB``: the run id from the last line."""
    proc = env.syncd("trigger", job, *args, check=True)
    return int(proc.stdout.strip().splitlines()[-1])


def sqlite_source_jobs(source_url: str, *jobs: str) -> str:
    """A jobs file with one source and the given [[jobs]] blocks."""
    return f'[sources.src]\nurl = "{source_url}"\n\n' + "\n".join(jobs)


def job_block(name: str, table: str = "orders", **fields: Any) -> str:
    """One [[jobs]] block of an incremental job on ``table`` (lists as TOML arrays)."""
    values = {"name": name, "source": "src", "table": table, "cursor": "updated_at", **fields}
    lines = ["[[jobs]]"]
    for key, value in values.items():
        if isinstance(value, (int, list)):
            lines.append(f"{key} = {json.dumps(value)}")
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"
