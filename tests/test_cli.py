"""The `syncd` command as an operator uses it: exit codes, history, crashes, concurrency."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import sqlalchemy as sa
from blocking import SourceGate
from conftest import rows_of
from sample_tables import create_orders, execute, table_rows
from test_sync import jobs_toml


def history(env, *args: str) -> list[dict]:  # type: ignore[no-untyped-def]
    proc = env.syncd("history", "--json", *args, check=True)
    return json.loads(proc.stdout)


def wait_for(predicate, timeout: float = 60, every: float = 0.02):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not reached in time")


def checkpoint_position(local_url: str) -> int:
    engine = sa.create_engine(local_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT position FROM syncd_checkpoints WHERE job = 'orders'").first()
    finally:
        engine.dispose()
    return json.loads(row[0])[0] if row and row[0] else 0


def test_run_prints_summary_and_history_shows_it(databases, make_env):
    src, local = databases.sqlite(), databases.postgres()
    create_orders(src, 40)
    env = make_env(local, jobs_toml(src))
    proc = env.syncd("run", "orders")
    assert proc.returncode == 0, proc.stderr
    assert "succeeded" in proc.stdout.strip().splitlines()[-1]
    runs = history(env)
    assert [(r["job"], r["trigger"], r["status"], r["rows_inserted"]) for r in runs] == [
        ("orders", "cli", "succeeded", 40)]
    assert runs[0]["finished_at"].endswith("Z") and runs[0]["duration_s"] >= 0
    assert table_rows(local, "orders") == table_rows(src, "orders")


def test_unknown_job_exits_2_and_writes_nothing(databases, make_env):
    env = make_env(databases.sqlite(), jobs_toml(databases.sqlite()))
    proc = env.syncd("run", "nope")
    assert proc.returncode == 2
    assert 'no job named "nope"' in proc.stderr
    assert history(env) == []


def test_killed_run_is_abandoned_and_next_run_resumes_from_checkpoint(databases, make_env):
    src, local = databases.mysql(), databases.postgres()
    create_orders(src, 2_000)
    gate = SourceGate(src, at=1_001)  # the load cannot pass row 1001 while the test holds it
    env = make_env(local, jobs_toml(src, batch_size=100, **gate.job_fields()))
    with gate:
        first = env.popen("run", "orders")
        try:
            gate.wait_until_reached()
            # The batches before the gate are committed with their checkpoints; only the
            # rows the source still buffers (under 200 of this table) stay behind.
            wait_for(lambda: checkpoint_position(local) >= 500)
            assert first.poll() is None, first.communicate()
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
    killed_at = checkpoint_position(local)
    assert 500 <= killed_at < 1_001

    second = env.syncd("run", "orders")
    assert second.returncode == 0, second.stdout + second.stderr
    runs = history(env)
    assert [r["status"] for r in runs] == ["succeeded", "abandoned"]
    assert runs[0]["rows_read"] <= 2_000 - killed_at  # did not start from zero
    assert runs[0]["rows_inserted"] == 2_000  # the table the swap made visible
    assert table_rows(local, "orders") == table_rows(src, "orders")


def test_two_runs_of_one_job_one_succeeds_other_exits_3_skipped(databases, make_env):
    src, local = databases.postgres(), databases.postgres()
    create_orders(src, 300)
    gate = SourceGate(src, at=201)
    env = make_env(local, jobs_toml(src, batch_size=100, **gate.job_fields()))
    gate.hold()
    first = env.popen("run", "orders")
    try:
        gate.wait_until_reached()  # the first run is in its load, holding the job's lock
        second = env.syncd("run", "orders")
        gate.open()
        outputs = [first.communicate(timeout=300), (second.stdout, second.stderr)]
    finally:
        gate.open()
        if first.poll() is None:
            first.kill()
    assert [first.returncode, second.returncode] == [0, 3], outputs
    assert "skipped" in second.stdout
    runs = history(env)
    assert sorted(r["status"] for r in runs) == ["skipped", "succeeded"]
    skipped = next(r for r in runs if r["status"] == "skipped")
    assert "another run of this job is in progress" in skipped["error"]
    assert table_rows(local, "orders") == table_rows(src, "orders")


BAD_JOBS = {
    "unknown key": ('colour = "red"', "colour"),
    "unknown source": ('source = "nowhere"', '"source"'),
    "missing cursor": ('cursor = ""', '"cursor"'),
    "duplicate name": ("DUPLICATE", "duplicate job name"),
    "bad schedule": ('schedule = "*/5 * * *"', '"schedule"'),
    "bad cron value": ('schedule = "99 * * * *"', '"schedule"'),
    "unset variable": ("UNSET", "${SYNCD_TEST_UNSET_PASSWORD}"),
    "batch size below 1": ("batch_size = 0", '"batch_size"'),
    "unknown table": ('table = "no_such_table"', '"table"'),
    "unknown cursor column": ('cursor = "changed"', '"cursor": column "changed"'),
    "unknown key column": ('primary_key = ["nope"]', '"primary_key"'),
    "unknown column": ('columns = ["id", "ghost"]', '"columns"'),
    "hostile table name": ('table = "orders; DROP TABLE orders"', '"table"'),
    "hostile target": ('target = "x\\"; DROP TABLE orders; --"', '"target"'),
}


def bad_jobs_text(src: str, case: str) -> str:
    line, _ = BAD_JOBS[case]
    base = jobs_toml(src)
    if line == "DUPLICATE":
        return base + base[base.index("[[jobs]]"):].replace('target', 'x_target')
    if line == "UNSET":
        return base.replace(f'url = "{src}"', 'url = "postgresql://u:${SYNCD_TEST_UNSET_PASSWORD}@h/db"')
    key = line.split(" = ")[0]
    lines = [ln for ln in base.splitlines() if not ln.startswith(key + " =")]
    return "\n".join(lines) + "\n" + line + "\n"


@pytest.mark.parametrize("case", sorted(BAD_JOBS))
def test_bad_jobs_file_exits_2_names_the_field_and_writes_nothing(databases, make_env, case):
    src, local = databases.sqlite(), databases.postgres()
    create_orders(src, 5)
    env = make_env(local, bad_jobs_text(src, case))
    for command in (("check",), ("run", "orders")):
        proc = env.syncd(*command)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert BAD_JOBS[case][1] in proc.stderr, proc.stderr
        assert "jobs.toml" in proc.stderr, proc.stderr
    assert history(env) == []
    engine = sa.create_engine(local)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert not {t for t in tables if not t.startswith("syncd_")}, tables


def test_check_reports_unreachable_source_with_exit_3(databases, make_env):
    env = make_env(databases.sqlite(),
                   jobs_toml("mysql+pymysql://reader:secret@127.0.0.1:1/crm"))
    proc = env.syncd("check")
    assert proc.returncode == 3
    assert "reader:***@127.0.0.1:1/crm" in proc.stderr
    assert "secret" not in proc.stderr + proc.stdout


def test_pause_and_resume_show_in_jobs(databases, make_env):
    env = make_env(databases.sqlite(), jobs_toml(databases.sqlite(), schedule="5m"))
    assert env.syncd("pause", "orders").returncode == 0
    jobs = json.loads(env.syncd("jobs", "--json", check=True).stdout)
    assert jobs[0]["paused"] is True and jobs[0]["next_run"] is None
    assert env.syncd("resume", "orders").returncode == 0
    jobs = json.loads(env.syncd("jobs", "--json", check=True).stdout)
    assert jobs[0]["paused"] is False and jobs[0]["next_run"]
    assert env.syncd("pause", "ghost").returncode == 2


def test_history_filters_by_job_and_status(databases, make_env):
    src = databases.sqlite()
    create_orders(src, 5)
    env = make_env(databases.sqlite(), jobs_toml(src))
    env.syncd("run", "orders", check=True)
    execute(src, "DROP TABLE orders")
    assert env.syncd("run", "orders").returncode == 2  # table gone: bad configuration
    assert [r["status"] for r in history(env, "orders", "--status", "succeeded")] == [
        "succeeded"]
    other = env.syncd("history", "other", "--json")  # no such job: exit 2, not an empty list
    assert other.returncode == 2 and other.stdout == ""


def test_history_of_an_unknown_job_exits_2_listing_the_jobs(databases, make_env):
    src = databases.sqlite()
    create_orders(src, 5)
    env = make_env(databases.sqlite(), jobs_toml(src) + jobs_toml(src, name="customers",
                                                                  target="c")
                   .split("\n\n", 1)[1])
    env.syncd("run", "orders", check=True)
    proc = env.syncd("history", "orderz")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip() == (f'error: {env.jobs_file}: no job named "orderz" '
                                   "(jobs: customers, orders)"), proc.stderr
    assert proc.stdout == ""
    assert env.syncd("history", "customers", check=True).stdout.strip() == "no runs"
    env.write_jobs(jobs_toml(src, name="customers", target="c"))  # orders left the file
    kept = env.syncd("history", "orders", "--json", check=True)
    assert [r["status"] for r in json.loads(kept.stdout)] == ["succeeded"]  # history is kept


class StderrLines:
    """The lines a background process writes to stderr, read as they come."""

    def __init__(self, proc) -> None:  # type: ignore[no-untyped-def]
        import threading

        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc) -> None:  # type: ignore[no-untyped-def]
        for line in proc.stderr:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)


def test_ctrl_c_cancels_the_run_at_a_batch_boundary_and_exits_130(databases, make_env):
    src, local = databases.mysql(), databases.postgres()
    create_orders(src, 2_000)
    gate = SourceGate(src, at=1_001)
    env = make_env(local, jobs_toml(src, batch_size=100, **gate.job_fields()))
    with gate:
        run = env.popen("run", "orders")
        err = StderrLines(run)
        try:
            gate.wait_until_reached()  # the batches before row 1001 are committed
            wait_for(lambda: checkpoint_position(local) >= 500)
            run.send_signal(signal.SIGINT)
            wait_for(lambda: "stopping at the next batch boundary" in err.text())
            assert run.poll() is None
        except BaseException:
            run.kill()
            raise
    out = run.stdout.read()  # the gate is open: the run commits one more batch and stops
    assert run.wait(timeout=120) == 130, out + err.text()
    err.thread.join(timeout=10)
    assert "Traceback" not in out + err.text() and "Aborted" not in err.text()
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("run #1 orders: cancelled read="), summary
    assert "-- cancelled by Ctrl-C: stopped after " in summary
    assert "the checkpoint of the last committed batch is kept" in summary
    (row,) = history(env)
    assert (row["status"], row["cancelled_by"]) == ("cancelled", "Ctrl-C")
    stopped_at = checkpoint_position(local)
    # at a batch boundary, far from the end: the rows of the committed batches are kept in
    # the staging table, as many as the checkpoint says
    assert 500 <= stopped_at <= 1_100, stopped_at
    assert row["rows_read"] == stopped_at
    assert len(rows_of(local, "orders__syncd_staging")) == stopped_at

    second = env.syncd("run", "orders")  # resumes from the checkpoint
    assert second.returncode == 0, second.stdout + second.stderr
    runs = history(env)
    assert [r["status"] for r in runs] == ["succeeded", "cancelled"]
    assert runs[0]["rows_read"] == 2_000 - stopped_at
    assert table_rows(local, "orders") == table_rows(src, "orders")


def test_cancel_unknown_run_exits_2_finished_run_exits_0(databases, make_env):
    src = databases.sqlite()
    create_orders(src, 5)
    env = make_env(databases.sqlite(), jobs_toml(src))
    env.syncd("run", "orders", check=True)
    done = env.syncd("cancel", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "run #1 of orders already finished (succeeded): nothing to cancel"
    unknown = env.syncd("cancel", "99")
    assert unknown.returncode == 2 and unknown.stderr.strip() == "error: no run #99"
    assert [r["status"] for r in history(env)] == ["succeeded"]
