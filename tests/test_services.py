"""``syncd up --demo``: one command brings up migrations, worker with beat and the admin app
over a demo shop that keeps changing; scheduled syncs appear in the history; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery_helpers import runs, wait_for
from sample_tables import table_rows

from syncd.demo import DEMO_TABLES, DemoWriter, create_demo_source, demo_counts
from syncd.demo.source import connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Process groups to SIGKILL at teardown, whatever happened in the test."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


def test_up_demo_runs_scheduled_syncs_and_stops_on_ctrl_c(databases, make_env, reaper):
    env = make_env(databases.sqlite("local"), migrate=False)
    env.jobs_file.unlink()  # no jobs file: the demo writes its own under var/
    port = free_port()
    started = time.monotonic()
    up = env.popen("up", "--demo", "--port", str(port))
    reaper.append(up.pid)
    try:
        wait_for(lambda: len(children_of(up.pid)) == 2, 30, "syncd up did not start 2 services")
        reaper.extend(children_of(up.pid))  # each service leads its own process group
        wait_for(lambda: {"orders", "customers"} <= {
            r["job"] for r in runs(env.local_url)
            if r["trigger"] == "schedule" and r["status"] == "succeeded"}, 60,
            lambda: f"no scheduled syncs of the demo: {runs(env.local_url)}")
        first_sync = time.monotonic() - started
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        services = children_of(up.pid)
        up.send_signal(signal.SIGINT)
        _, stderr = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, stderr
    assert f"admin page: http://127.0.0.1:{port}/" in stderr
    assert "created the web user admin with password" in stderr
    assert not [pid for pid in services if group_alive(pid)], "services left running"
    assert first_sync < 60
    assert all(r["status"] in ("succeeded", "skipped") for r in runs(env.local_url)), \
        runs(env.local_url)

    # after a last sync with the writer stopped, the local copy equals the demo shop
    demo_jobs = env.var_dir / "demo" / "jobs.toml"
    env.extra_env["SYNCD_JOBS_FILE"] = str(demo_jobs)
    source = f"sqlite:///{env.var_dir / 'demo' / 'shop.sqlite'}"
    for job in DEMO_TABLES:
        env.syncd("run", job, check=True)
        assert table_rows(env.local_url, f"shop_{job}") == table_rows(source, job)


def test_up_refuses_a_broken_jobs_file(databases, make_env):
    env = make_env(databases.sqlite("local"), "[[jobs]]\nname = 'x'\n", migrate=False)
    proc = env.syncd("up", "--port", str(free_port()), timeout=60)
    assert proc.returncode == 2
    assert f"{env.jobs_file}: job \"x\"" in proc.stderr


def test_up_without_jobs_file_suggests_the_demo(databases, make_env):
    env = make_env(databases.sqlite("local"), migrate=False)
    env.jobs_file.unlink()
    proc = env.syncd("up", "--port", str(free_port()), timeout=60)
    assert proc.returncode == 2
    assert "jobs file not found" in proc.stderr and "syncd up --demo" in proc.stderr


def test_demo_source_has_realistic_tables_that_keep_changing(tmp_path):
    path = tmp_path / "shop.sqlite"
    assert create_demo_source(path)
    assert not create_demo_source(path)  # created once, then reused
    before = demo_counts(path)
    assert before == {"customers": 2000, "products": 200, "orders": 20000}
    conn = connect(path)
    latest = conn.execute("SELECT MAX(updated_at) FROM orders").fetchone()[0]

    writer = DemoWriter(path, interval=0.05, seed=7)
    writer.start()
    wait_for(lambda: writer.changes >= 10, 10, "the demo writer made no changes")
    writer.stop()

    after = demo_counts(path)
    assert after["orders"] > before["orders"]
    changed = conn.execute("SELECT COUNT(*) FROM orders WHERE updated_at > ?",
                           (latest,)).fetchone()[0]
    assert changed > after["orders"] - before["orders"]  # new orders and status changes
    conn.close()


def test_demo_writer_is_not_blocked_by_a_reader(tmp_path):
    """WAL mode: a sync reading the shop does not block the writer."""
    path = tmp_path / "shop.sqlite"
    create_demo_source(path)
    writer = DemoWriter(path, interval=0.01, seed=3)
    conn = connect(path)
    conn.execute("BEGIN")
    conn.execute("SELECT COUNT(*) FROM orders").fetchone()  # an open read transaction
    writer.start()
    wait_for(lambda: writer.changes >= 5, 10, "the writer was blocked by a reader")
    writer.stop()
    conn.execute("COMMIT")
    conn.close()


def test_up_twice_in_one_var_directory_refuses_and_writes_nothing(databases, make_env, reaper,
                                                                   tmp_path):
    env = make_env(databases.sqlite("local"), migrate=False)
    env.jobs_file.unlink()
    home = tmp_path / "home"
    home.mkdir()
    env.extra_env["HOME"] = str(home)  # gunicorn's default control socket would go here
    port = free_port()
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "syncd", "up", "--demo", "--port", str(port)],
                          env=env.env, cwd=env.tmp_path, stdout=log, stderr=subprocess.STDOUT)
    reaper.append(up.pid)
    try:
        wait_for(lambda: "admin page: " in (tmp_path / "up.log").read_text(), 60,
                 lambda: f"syncd up did not start:\n{(tmp_path / 'up.log').read_text()}")
        reaper.extend(children_of(up.pid))
        jobs = env.var_dir / "demo" / "jobs.toml"
        edited = jobs.read_text() + "# edited by hand\n"
        jobs.write_text(edited)

        second = env.syncd("up", "--demo", "--port", str(free_port()), timeout=120)

        assert second.returncode == 1, second.stderr
        lines = [ln for ln in second.stderr.splitlines() if "error:" in ln]
        assert len(lines) == 1, second.stderr
        assert lines[0].startswith(f"syncd up: error: syncd up is already running in "
                                   f"{env.var_dir}: pid {up.pid} on {socket.gethostname()} "
                                   "since "), lines[0]
        assert lines[0].endswith(f", admin page http://127.0.0.1:{port}/; stop it first (Ctrl-C "
                                 f"in its terminal, or kill {up.pid}), or give this one its own "
                                 "SYNCD_VAR_DIR and broker"), lines[0]
        assert jobs.read_text() == edited  # checked before anything was written
        assert len(children_of(up.pid)) == 2  # still one worker (with its beat) and one web
        assert (env.var_dir / "gunicorn.ctl").exists()  # gunicorn's control socket
        assert not (home / ".gunicorn").exists()
        up.send_signal(signal.SIGINT)
        up.wait(timeout=90)
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
    assert up.returncode == 0


def test_a_start_that_fails_its_checks_writes_nothing(databases, make_env):
    env = make_env(databases.sqlite("local"), migrate=False)
    env.jobs_file.unlink()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = env.syncd("up", "--demo", "--port", str(port), timeout=120)
    assert proc.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in proc.stderr
    assert not (env.var_dir / "demo").exists()  # no demo shop, no jobs file
    engine = sa.create_engine(env.local_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []  # no migrations either
    engine.dispose()


def test_web_command_keeps_gunicorns_control_socket_in_the_var_directory(tmp_path):
    from syncd.services import web_command

    command = web_command("127.0.0.1", 8000, tmp_path)
    assert command[command.index("--control-socket") + 1] == str(tmp_path / "gunicorn.ctl")
    deep = tmp_path / ("x" * 120)
    assert "--no-control-socket" in web_command("127.0.0.1", 8000, deep)  # too long a path
