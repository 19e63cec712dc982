"""``syncd up``: the embedded all-in-one on one machine.

Runs the migrations, then a Celery worker with embedded beat and the admin web
app (gunicorn) as child processes, and (with ``--demo``) a demo source that
keeps changing. One ``syncd up`` per var directory (``syncd.up_lock``); everything
is checked before anything is written. The children run in their own process group: the first Ctrl-C
asks them to stop (a running sync finishes first), the second stops them at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from syncd.engine.errors import ConfigError
from syncd.up_lock import AlreadyRunning, UpLock

STOP_GRACE_SECONDS = 60.0
MAX_SOCKET_PATH = 100  # a Unix socket's path has room for 107 bytes on Linux
ANNOUNCE_WAIT_SECONDS = 60.0  # the admin page is announced by then even if no worker reported


@dataclass(frozen=True)
class UpOptions:
    """What ``syncd up`` runs, and where the admin page listens."""

    demo: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    concurrency: int = 2


def say(message: str) -> None:
    """A line from syncd up itself (the children log on their own)."""
    click.echo(f"syncd up: {message}", err=True)


def worker_command(concurrency: int) -> list[str]:
    """The worker with embedded beat (one process tree, one beat)."""
    return [sys.executable, "-m", "celery", "-A", "syncd.worker", "worker", "-B",
            "--loglevel=info", f"--concurrency={concurrency}"]


def web_command(host: str, port: int, var_dir: Path | None = None) -> list[str]:
    """The admin web app under gunicorn; its control socket lives in the var directory
    (gunicorn's default is one shared socket in the user's home), or is off."""
    command = [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "2"]
    socket_path = Path(var_dir) / "gunicorn.ctl" if var_dir is not None else None
    if socket_path is not None and len(str(socket_path).encode()) <= MAX_SOCKET_PATH:
        command += ["--control-socket", str(socket_path)]
    else:
        command.append("--no-control-socket")
    return [*command, "syncd.web:create_web_app()"]


def run_up(config: Any, options: UpOptions) -> int:
    """Run everything until Ctrl-C; the exit code of ``syncd up``.

    Everything is checked before anything is written: no other ``syncd up`` in this var
    directory, the admin port free, the jobs file valid, the local database and the broker
    reachable. Only then the demo shop and its jobs file, the migrations, the first user.
    """
    env = dict(config.ENVIRON)
    env["SYNCD_VAR_DIR"] = str(config.VAR_DIR)
    env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        with UpLock(config.VAR_DIR) as lock:
            demo = _demo_plan(config, env) if options.demo else None
            code = _check(env, options, writes_jobs_file=bool(demo and demo.write_jobs))
            if code:
                return code
            writer = _prepare_demo(demo) if demo is not None else None
            try:
                code, admin_password = _prepare(env)
                if code:
                    return code
                services = Services(env)
                services.admin_password = admin_password
                services.worker_ready = _worker_reported(config.SYNCD_DATABASE_URL, time.time())
                services.start("worker", worker_command(options.concurrency))
                services.start("web", web_command(options.host, options.port, config.VAR_DIR))
                if writer is not None:
                    writer.start()  # after the forks: no thread is running while they happen
                lock.record(f"http://{options.host}:{options.port}/")
                return services.supervise(options.host, options.port)
            finally:
                if writer is not None:
                    writer.stop()
    except AlreadyRunning as exc:
        say(f"error: {exc}")
        return 1


@dataclass(frozen=True)
class DemoPlan:
    """What ``--demo`` will create: the shop and, unless one exists, its jobs file."""

    source: Path
    jobs_file: Path
    write_jobs: bool


def _demo_plan(config: Any, env: dict[str, str]) -> DemoPlan:
    """Decide the demo's files (nothing written yet); point SYNCD_JOBS_FILE at its jobs."""
    demo_dir = Path(config.VAR_DIR) / "demo"
    source = demo_dir / "shop.sqlite"
    jobs_file = Path(config.SYNCD_JOBS_FILE)
    if jobs_file.exists():
        return DemoPlan(source, jobs_file, write_jobs=False)
    jobs_file = demo_dir / "jobs.toml"
    env["SYNCD_JOBS_FILE"] = str(jobs_file)
    return DemoPlan(source, jobs_file, write_jobs=not jobs_file.exists())


def _prepare_demo(plan: DemoPlan) -> Any:
    """Create the demo source (once) and its jobs file (unless it exists): the writer."""
    from syncd.demo import DemoWriter, create_demo_source, demo_counts, write_demo_jobs

    if create_demo_source(plan.source):
        counts = ", ".join(f"{n} {t}" for t, n in demo_counts(plan.source).items())
        say(f"demo: created the shop database {plan.source} ({counts})")
    if plan.write_jobs:
        write_demo_jobs(plan.jobs_file, plan.source)
        say(f"demo: jobs file {plan.jobs_file} (orders every 10s, customers every 15s, "
            "products every 30s); for `syncd jobs` and `syncd trigger` in another shell: "
            f"export SYNCD_JOBS_FILE={plan.jobs_file}")
    else:
        say(f"demo: using the jobs file {plan.jobs_file}; the demo shop is {plan.source}")
    return DemoWriter(plan.source)


def _check(env: dict[str, str], options: UpOptions, writes_jobs_file: bool) -> int:
    """Everything that can stop the start, checked before anything is written."""
    from config import Config
    from syncd import create_app, get_state

    if _port_taken(options.host, options.port):
        say(f"{options.host}:{options.port} is already in use; choose another with --port")
        return 1
    app = create_app(Config(environ=env))
    state = get_state(app)
    try:
        if not writes_jobs_file:
            try:
                state.jobs()
            except ConfigError as exc:
                say(f"error: {exc}")
                if not Path(state.config.SYNCD_JOBS_FILE).exists():
                    say("hint: write a jobs.toml (see jobs.example.toml), or try "
                        "`syncd up --demo`")
                return 2
        with state.engine.connect():
            pass  # reachable (DBAPIError otherwise: syncd's one-line answer)
        broker = str(state.config.CELERY_BROKER_URL)
        if not broker.startswith("sqla+sqlite"):  # the embedded broker is created later
            with app.extensions["celery"].connection_for_write() as conn:
                conn.ensure_connection(max_retries=1)
    finally:
        state.dispose()
    return 0


def _prepare(env: dict[str, str]) -> tuple[int, str | None]:
    """Migrate the local database, housekeep, create the first user and the broker's tables.

    Returns the exit code (0: go on) and the password of a newly created admin user.
    """
    from config import Config
    from syncd import create_app, get_state
    from syncd.db import upgrade

    app = create_app(Config(environ=env))
    state = get_state(app)
    try:
        try:
            jobs = state.jobs()
        except ConfigError as exc:
            say(f"error: {exc}")
            return 2, None
        before, after = upgrade(state.engine)
        force = state.jobs_in_force()
        if force.rejected is not None:
            say(f"warning: jobs file rejected: {force.rejected}; {force.explanation()}")
        done = "created syncd's tables" if before is None else (
            f"upgraded syncd's tables to revision {after}" if before != after else "up to date")
        say(f"local database: {done}; {len(jobs.jobs)} job(s) in {jobs.path}")
        _housekeep(state)
        password = _first_user(state)
        with app.extensions["celery"].connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)
            conn.default_channel  # noqa: B018  (the SQLite broker creates its tables here)
    finally:
        state.dispose()
    return 0, password


def _housekeep(state: Any) -> None:
    """Runs left behind by a previous syncd up (killed): marked abandoned before anything starts."""
    from syncd.stale_runs import housekeep

    marked = housekeep(state)
    if marked:
        say(f"marked runs {', '.join(f'#{i}' for i in marked)} abandoned: their process is "
            "gone or they were queued for too long")


def _first_user(state: Any) -> str | None:
    """With no web user yet, create the operator "admin" and print its password."""
    try:
        from syncd.web.accounts import ensure_admin
    except ImportError:  # the admin app is not installed
        return None
    password = ensure_admin(state)
    if password is not None:
        say(f"created the web user admin with password {password} (shown again once "
            "everything has started; more users: syncd users add NAME --role operator|viewer)")
    return password


def _worker_reported(database_url: str, since: float) -> Any:
    """A check: True once a worker wrote a heartbeat after ``since`` (its banner is out)."""
    from datetime import UTC, datetime

    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from syncd.heartbeats import heartbeat_engine
    from syncd.models import Heartbeat

    started = datetime.fromtimestamp(since, UTC)

    def reported() -> bool:
        engine = heartbeat_engine(database_url)
        try:
            with engine.connect() as conn:
                return conn.scalar(select(Heartbeat.name).where(
                    Heartbeat.kind == "worker", Heartbeat.started_at >= started).limit(1)
                ) is not None
        except SQLAlchemyError:
            return False
        finally:
            engine.dispose()

    return reported


def _port_taken(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Services:
    """Child processes in their own process group, stopped together."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self.interrupts = 0
        self.admin_password: str | None = None  # said again after the start-up banners
        self.worker_ready: Any = lambda: True

    def start(self, name: str, command: list[str]) -> None:
        """Start one service; it dies with syncd up (Linux) or is stopped by it."""
        self.procs[name] = subprocess.Popen(
            command, env=self.env, process_group=0, preexec_fn=_die_with_parent(),
        )

    def supervise(self, host: str, port: int) -> int:
        """Wait for Ctrl-C or a service to die; then stop all. Returns the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            announced, failed = False, None
            give_up_waiting = time.monotonic() + ANNOUNCE_WAIT_SECONDS
            while not self.stopping.is_set():
                failed = next((n for n, p in self.procs.items() if p.poll() is not None), None)
                if failed:
                    say(f"{failed} exited with code {self.procs[failed].returncode}; stopping")
                    break
                if not announced and _port_taken(host, port) and (
                        self.worker_ready() or time.monotonic() > give_up_waiting):
                    announced = True
                    self._announce(host, port)
                self.stopping.wait(0.5)
            self.stop()
            return 1 if failed else 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _announce(self, host: str, port: int) -> None:
        """The lines to read once everything has started (after the services' banners)."""
        say(f"admin page: http://{host}:{port}/   (Ctrl-C stops everything)")
        if self.admin_password is not None:
            say(f"log in as admin with password {self.admin_password} "
                "(set another with: syncd users passwd admin)")
        say("follow the syncs with: syncd history")

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.interrupts += 1
        if self.interrupts == 1:
            self.stopping.set()
        else:
            say("stopping now")
            self._signal_all(signal.SIGKILL)

    def stop(self) -> None:
        """Warm shutdown: a running sync finishes; after the grace period, kill."""
        if not any(p.poll() is None for p in self.procs.values()):
            return
        say("stopping (a running sync finishes first; Ctrl-C again to stop at once)")
        for proc in self.procs.values():  # the main processes only: Celery's warm shutdown
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and self._running():
            time.sleep(0.2)
        self._signal_all(signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait()
        say("stopped")

    def _running(self) -> bool:
        """True while any service or a process it started (pool, embedded beat) is alive."""
        alive = False
        for proc in self.procs.values():
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
                alive = True
            except ProcessLookupError:
                pass
        return alive

    def _signal_all(self, signum: int) -> None:
        """Signal every process of every service's group."""
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                pass


def _die_with_parent() -> Any:
    """A preexec_fn: the child gets SIGTERM when syncd up dies (Linux only; else None)."""
    if sys.platform != "linux":
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec
