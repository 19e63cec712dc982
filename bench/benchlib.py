"""Helpers of bench/run.py: processes timed with their peak memory, databases, statistics."""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
MY = "mysql+pymysql://root@127.0.0.1:3306/"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
MARIADB = ["mariadb", "-h", "127.0.0.1", "-uroot"]


@dataclass
class Sample:
    """One measured round: seconds, the whole command's wall time, peak RSS per process."""

    seconds: float
    wall: float
    peak_kib: int  # the largest peak RSS of the case's processes
    note: str = ""


@dataclass
class Figure:
    """A case measured over several rounds."""

    name: str
    group: str  # "limit" | "peer" | "syncd"
    pair: str  # "mariadb->postgresql", ...
    rows: int
    samples: list[Sample] = field(default_factory=list)
    skipped: str = ""  # why the case was not measured

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.samples and self.seconds > 0 else 0.0

    @property
    def spread(self) -> tuple[float, float]:
        values = [s.seconds for s in self.samples]
        return min(values), max(values)

    @property
    def peak_mib(self) -> float:
        return max(s.peak_kib for s in self.samples) / 1024 if self.samples else 0.0

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)


def run_pipeline(commands: Sequence[Sequence[str]], env: dict[str, str] | None = None,
                 stdin_path: str | None = None, cwd: str | None = None) -> Sample:
    """Run commands connected by pipes; wall time and the largest peak RSS of them."""
    started = time.perf_counter()
    procs: list[subprocess.Popen[bytes]] = []
    stdin = open(stdin_path, "rb") if stdin_path else None  # noqa: SIM115
    try:
        prev = stdin
        for i, cmd in enumerate(commands):
            last = i == len(commands) - 1
            proc = subprocess.Popen(cmd, env=env, stdin=prev, cwd=cwd,
                                    stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            if prev is not None and prev is not stdin:
                prev.close()
            prev = proc.stdout  # type: ignore[assignment]
            procs.append(proc)
        peak, failed = 0, []
        for proc in procs:
            err = proc.stderr.read() if proc.stderr else b""
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            peak = max(peak, usage.ru_maxrss)
            if proc.returncode != 0:
                failed.append(f"{shlex.join(proc.args)}: {err.decode(errors='replace')[-800:]}")  # type: ignore[arg-type]
    finally:
        if stdin:
            stdin.close()
    wall = time.perf_counter() - started
    if failed:
        raise RuntimeError("; ".join(failed))
    return Sample(wall, wall, peak)


def execute(url: str, *sql: str) -> None:
    """Run statements in autocommit mode."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in sql:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


def fresh_databases(name: str) -> None:
    """Create (empty) database ``name`` in PostgreSQL and in MariaDB."""
    execute(PG + "postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            f"CREATE DATABASE {name}")
    execute(MY, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")


def drop_databases(*names: str) -> None:
    for name in names:
        execute(PG + "postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        execute(MY, f"DROP DATABASE IF EXISTS {name}")


def peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (its peak resident memory so far)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
