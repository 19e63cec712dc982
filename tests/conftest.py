"""Shared fixtures: real databases (created per test, dropped after), the app, the CLI.

PostgreSQL, MariaDB and RabbitMQ run on this machine. A test that needs one
that cannot be reached is skipped locally, and fails under CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("SYNCD_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get("SYNCD_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")
RABBITMQ_URL = os.environ.get("SYNCD_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
PROJECT_DIR = Path(__file__).resolve().parent.parent
SERVICES = {"postgres": 5432, "mysql": 3306, "rabbitmq": 5672, "redis": 6379}


def service_up(port: int) -> bool:
    """True if something listens on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip (locally) or fail (CI=true) when a service is unreachable."""
    if service_up(SERVICES[name]):
        return
    message = f"{name} is not reachable on 127.0.0.1:{SERVICES[name]}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class Databases:
    """Creates throw-away databases and drops them at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.created: list[tuple[str, str]] = []

    def postgres(self) -> str:
        require_service("postgres")
        name = f"syncd_t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        self.created.append(("postgres", name))
        return f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"

    def mysql(self) -> str:
        require_service("mysql")
        name = f"syncd_t_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(MYSQL_ADMIN_URL)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        admin.dispose()
        self.created.append(("mysql", name))
        return f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4"

    def sqlite(self, label: str = "db") -> str:
        return f"sqlite:///{self.tmp_path / (label + '_' + uuid.uuid4().hex[:6] + '.sqlite')}"

    def make(self, kind: str) -> str:
        """A new database of ``kind``: "postgres", "mysql" or "sqlite"."""
        return {"postgres": self.postgres, "mysql": self.mysql, "sqlite": self.sqlite}[kind]()

    def drop_all(self) -> None:
        for kind, name in reversed(self.created):
            if kind == "postgres":
                admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                admin = sa.create_engine(MYSQL_ADMIN_URL)
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            admin.dispose()


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[Databases]:
    """Factory of throw-away databases: ``databases.postgres()``, ``.mysql()``, ``.sqlite()``."""
    dbs = Databases(tmp_path)
    yield dbs
    dbs.drop_all()


class SyncdEnv:
    """A syncd installation for one test: local database, jobs file, environment."""

    def __init__(self, tmp_path: Path, local_url: str, jobs_toml: str = "") -> None:
        self.tmp_path = tmp_path
        self.local_url = local_url
        self.jobs_file = tmp_path / "jobs.toml"
        self.var_dir = tmp_path / "var"
        self.extra_env: dict[str, str] = {}
        self.write_jobs(jobs_toml)

    def write_jobs(self, text: str) -> None:
        self.jobs_file.write_text(text)

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("SYNCD_", "CELERY_"))
        }
        env.update(
            SYNCD_DATABASE_URL=self.local_url,
            SYNCD_JOBS_FILE=str(self.jobs_file),
            SYNCD_VAR_DIR=str(self.var_dir),
            CELERY_BROKER_URL=f"sqla+sqlite:///{self.var_dir / 'broker.sqlite'}",
            SYNCD_RETRY_BACKOFF="0.2",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def config(self, **overrides: Any) -> Any:
        from config import Config

        return Config(environ=self.env, **overrides)

    def app(self, **overrides: Any) -> Any:
        from syncd import create_app

        return create_app(self.config(**overrides))

    def syncd(self, *args: str, input: str | None = None, timeout: float = 300,
              check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the ``syncd`` command in a subprocess, as an operator would."""
        proc = subprocess.run(
            [sys.executable, "-m", "syncd", *args], env=self.env, cwd=self.tmp_path,
            input=input, capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"syncd {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        """Start ``syncd`` in the background."""
        return subprocess.Popen(
            [sys.executable, "-m", "syncd", *args], env=self.env, cwd=self.tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
        )


@pytest.fixture
def make_env(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory: ``make_env(local_url, jobs_toml)`` -> SyncdEnv with migrations applied."""

    def make(local_url: str, jobs_toml: str = "", migrate: bool = True) -> SyncdEnv:
        env = SyncdEnv(tmp_path, local_url, jobs_toml)
        if migrate:
            env.syncd("db", "upgrade", check=True)
        return env

    return make


def engine_for(url: str) -> sa.Engine:
    """A plain engine for test assertions (dispose after use)."""
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def rows_of(url: str, table: str, order_by: str = "id") -> list[tuple[Any, ...]]:
    """All rows of ``table`` ordered by ``order_by``, as tuples."""
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn)
            return [tuple(r) for r in conn.execute(sa.select(t).order_by(t.c[order_by]))]
    finally:
        engine.dispose()
