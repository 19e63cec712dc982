"""Split full loads: a table bigger than the job's split_rows is loaded in key ranges by
several processes (``syncd run --jobs N``, or Celery workers), one run in the history.

The tables are small: the test jobs set a small split_rows. Catalog estimates are made
exact with ANALYZE first (the split is planned from them, never from COUNT(*)).
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from typing import Any

import pytest
from blocking import SourceGate
from celery_helpers import Services, running_services, runs, trigger, wait_for
from conftest import RABBITMQ_URL, engine_for, require_service
from sample_tables import create_orders, execute, table_rows

ROWS = 2_400
SPLIT_ROWS = 800  # ranges of about 400 rows: 6 ranges


def analyze(url: str, table: str) -> None:
    """Make the catalog's row estimate exact (what autovacuum / InnoDB do by themselves)."""
    engine = engine_for(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            keyword = "ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE TABLE"
            conn.exec_driver_sql(f"{keyword} {table}")
    finally:
        engine.dispose()


def jobs_toml(source_url: str, **fields: Any) -> str:
    values: dict[str, Any] = {"name": "orders", "source": "src", "table": "orders",
                              "mode": "full", "split_rows": SPLIT_ROWS, "batch_size": 100,
                              **fields}
    lines = [f'[sources.src]\nurl = "{source_url}"\n', "[[jobs]]"]
    for key, value in values.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def split_ranges(local_url: str) -> list[dict[str, Any]]:
    engine = engine_for(local_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.exec_driver_sql(
                "SELECT * FROM syncd_split_ranges ORDER BY idx").mappings()]
    finally:
        engine.dispose()


@pytest.mark.parametrize("source_kind,local_kind", [
    ("postgres", "postgres"), ("mysql", "postgres"), ("postgres", "mysql"), ("mysql", "mysql"),
])
def test_split_load_in_local_processes_equals_the_source(databases, make_env, source_kind,
                                                          local_kind):
    source = databases.make(source_kind)
    create_orders(source, ROWS)
    analyze(source, "orders")
    env = make_env(databases.make(local_kind), jobs_toml(source))

    proc = env.syncd("run", "orders", "--jobs", "3", check=True)

    assert "succeeded" in proc.stdout
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    history = runs(env.local_url, "orders")
    assert len(history) == 1, history
    assert history[0]["status"] == "succeeded"
    assert history[0]["rows_read"] == ROWS
    assert history[0]["rows_inserted"] == ROWS
    ranges = split_ranges(env.local_url)
    assert len(ranges) == 6, ranges  # 2,400 rows in ranges of about 400
    assert {r["status"] for r in ranges} == {"done"}
    assert {r["run_id"] for r in ranges} == {history[0]["id"]}
    assert sum(r["rows_read"] for r in ranges) == ROWS


def test_composite_key_is_cut_at_sampled_boundaries(databases, make_env):
    source = databases.postgres()
    execute(source, "CREATE TABLE lines (order_id int, line text, qty int, "
                    "PRIMARY KEY (order_id, line))",
            "INSERT INTO lines SELECT i / 3, 'l' || mod(i, 3), i FROM generate_series(1, 1800) i",
            "ANALYZE lines")
    env = make_env(databases.postgres(),
                   jobs_toml(source, table="lines", split_rows=600))

    env.syncd("run", "orders", "--jobs", "2", check=True)

    assert table_rows(env.local_url, "lines", "qty") == table_rows(source, "lines", "qty")
    (run,) = runs(env.local_url, "orders")
    assert run["rows_read"] == 1800 and run["status"] == "succeeded"
    assert len(split_ranges(env.local_url)) == 6  # 1,800 rows in ranges of about 300


def test_small_table_and_incremental_runs_stay_single_reader(databases, make_env):
    source = databases.postgres()
    create_orders(source, 500)
    analyze(source, "orders")
    env = make_env(databases.postgres(),
                   jobs_toml(source, mode="incremental", cursor="updated_at"))

    env.syncd("run", "orders", "--jobs", "4", check=True)  # 500 rows < split_rows: one reader
    assert split_ranges(env.local_url) == []
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")


GATED_RANGE = 3  # rows 1201..1600 of ranges (None, 400], (400, 800], ...
GATE_AT = 1_350  # 149 rows into the range: its first batches commit, then it waits


def wait_for_gated_range(local_url: str, others_done: bool) -> dict[str, Any]:
    """The gated range once it committed a batch (and, if asked, every other range is done)."""

    def ready() -> dict[str, Any] | None:
        ranges = split_ranges(local_url)
        if len(ranges) != 6:
            return None
        gated = ranges[GATED_RANGE]
        others = [r for r in ranges if r["idx"] != GATED_RANGE]
        if gated["rows_read"] < 50 or gated["status"] != "running":
            return None
        if others_done and any(r["status"] != "done" for r in others):
            return None
        return gated

    return wait_for(ready, 120, lambda: f"ranges never got there: {split_ranges(local_url)}")


def test_crashed_range_resumes_and_the_others_are_not_redone(databases, make_env):
    source = databases.mysql()
    create_orders(source, ROWS)
    analyze(source, "orders")
    gate = SourceGate(source, at=GATE_AT)
    env = make_env(databases.postgres(), jobs_toml(source, batch_size=50, **gate.job_fields()))
    with gate:
        proc = env.popen("run", "orders", "--jobs", "2", start_new_session=True)
        gate.wait_until_reached()
        crashed = wait_for_gated_range(env.local_url, others_done=True)
        page = run_page(env, runs(env.local_url, "orders")[0]["id"])
        assert "Key ranges" in page and page.count('class="range-done"') == 5
        assert page.count('class="range-running"') == 1  # the gated one, live on the page
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its processes, mid-range
        proc.wait(timeout=30)
    before = split_ranges(env.local_url)

    env.syncd("run", "orders", "--jobs", "2", check=True)

    after = split_ranges(env.local_url)
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    first, second = runs(env.local_url, "orders")
    assert first["status"] == "abandoned" and second["status"] == "succeeded", (first, second)
    assert {r["run_id"] for r in after} == {second["id"]}
    for old, new in zip(before, after):
        if old["idx"] != GATED_RANGE:  # loaded once, by the first run
            assert (new["finished_at"], new["attempts"], new["rows_read"]) == \
                (old["finished_at"], old["attempts"], old["rows_read"])
    # the crashed range went on from its checkpoint: no row of it was read twice
    assert crashed["rows_read"] > 0
    assert after[GATED_RANGE]["attempts"] == 2
    assert after[GATED_RANGE]["rows_read"] == 400
    assert sum(r["rows_read"] for r in after) == ROWS
    page = run_page(env, second["id"])
    assert page.count('class="range-done"') == 6


def run_page(env: Any, run_id: int) -> str:
    """The run's page as an operator sees it."""
    from web_helpers import PASSWORD, login

    from syncd import get_state
    from syncd.web.accounts import create_user

    app = env.app()
    state = get_state(app)
    try:
        from sqlalchemy import select

        from syncd.models import User

        with state.sessions() as session:
            if session.scalar(select(User.id).where(User.username == "alice")) is None:
                create_user(state, "alice", PASSWORD, "operator")
        client = app.test_client()
        assert login(client, "alice", PASSWORD).status_code == 303
        return str(client.get(f"/runs/{run_id}").get_data(as_text=True))
    finally:
        state.dispose()


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    """Worker processes of this test, killed at teardown."""
    yield from running_services()


def _pool_parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_two_workers_share_the_ranges_and_a_killed_ones_range_resumes(
        databases, make_env, services: Services):
    require_service("rabbitmq")
    source = databases.mysql()
    create_orders(source, ROWS)
    analyze(source, "orders")
    gate = SourceGate(source, at=GATE_AT)
    env = make_env(databases.postgres(), jobs_toml(source, batch_size=50, **gate.job_fields()))
    queue = f"syncd-test-{uuid.uuid4().hex[:10]}"
    env.extra_env.update(CELERY_BROKER_URL=RABBITMQ_URL, SYNCD_QUEUE=queue)
    try:
        workers = [services.worker(env, 1, "-n", f"split{n}@%h") for n in (1, 2)]
        with gate:
            run_id = trigger(env, "orders")
            gate.wait_until_reached()
            crashed = wait_for_gated_range(env.local_url, others_done=True)
            pid = int(crashed["worker"].rsplit(":", 1)[1])
            (victim,) = [w for w in workers if w.proc.pid == _pool_parent(pid)]
            (survivor,) = [w for w in workers if w is not victim]
            loaders = {r["worker"] for r in split_ranges(env.local_url)}
            assert len(loaders) == 2, loaders  # both workers loaded ranges of the one load
            victim.kill(signal.SIGKILL)
        run = wait_for(lambda: _finished(env.local_url, run_id), 120,
                       lambda: f"run never finished: {runs(env.local_url)}\n"
                               f"{survivor.log[-3000:]}")
    finally:
        _delete_rabbitmq_queue(queue)
    assert run["status"] == "succeeded", run
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    assert [r["id"] for r in runs(env.local_url)] == [run_id]  # one run in the history
    ranges = split_ranges(env.local_url)
    redone = ranges[GATED_RANGE]
    assert redone["worker"] != crashed["worker"]  # delivered again to the survivor
    assert redone["attempts"] == 2 and redone["status"] == "done"
    assert sum(r["rows_read"] for r in ranges) == ROWS  # resumed: nothing read twice
    assert run["rows_read"] == ROWS and run["rows_inserted"] == ROWS


def _finished(local_url: str, run_id: int) -> dict[str, Any] | None:
    run = next((r for r in runs(local_url) if r["id"] == run_id), None)
    return run if run and run["status"] not in ("queued", "running") else None


def _delete_rabbitmq_queue(queue: str) -> None:
    from kombu import Connection

    with Connection(RABBITMQ_URL) as conn:
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


def test_sqlite_local_database_loads_with_one_process(databases, make_env):
    source = databases.postgres()
    create_orders(source, ROWS)
    analyze(source, "orders")
    env = make_env(databases.sqlite("local"), jobs_toml(source))

    env.syncd("run", "orders", "--jobs", "3", check=True)

    assert split_ranges(env.local_url) == []  # one writer: never split
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")


def test_split_rows_that_is_not_a_number_is_refused_in_one_line(databases, make_env):
    source = databases.postgres()
    create_orders(source, 10)
    env = make_env(databases.postgres(), jobs_toml(source, split_rows="lots"))

    proc = env.syncd("run", "orders", "--jobs", "2")

    assert proc.returncode == 2
    assert 'job "orders": field "split_rows": must be a whole number of rows of at least 2' \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    assert runs(env.local_url) == []


def test_a_range_that_gives_up_fails_the_run_and_the_next_run_resumes_it(databases, make_env):
    source = databases.mysql()
    create_orders(source, ROWS)
    execute(source, "UPDATE orders SET note = 'nul \\0 inside' WHERE id = 1350")  # range 3
    analyze(source, "orders")
    env = make_env(databases.postgres(), jobs_toml(source, batch_size=50))

    proc = env.syncd("run", "orders", "--jobs", "2")

    assert proc.returncode == 1, proc.stdout + proc.stderr
    (failed,) = runs(env.local_url, "orders")
    assert failed["status"] == "failed"
    assert failed["error"].startswith("range 3 gave up: "), failed["error"]
    assert "NUL" in failed["error"]
    ranges = split_ranges(env.local_url)
    assert ranges[GATED_RANGE]["status"] == "failed"
    assert 0 < ranges[GATED_RANGE]["rows_read"] < 400  # the batches before the bad row

    execute(source, "UPDATE orders SET note = 'fixed' WHERE id = 1350")
    env.syncd("run", "orders", "--jobs", "2", check=True)

    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    assert [r["status"] for r in runs(env.local_url, "orders")] == ["failed", "succeeded"]
    after = split_ranges(env.local_url)
    assert sum(r["rows_read"] for r in after) == ROWS  # nothing loaded twice
    assert after[GATED_RANGE]["attempts"] == 2


def test_group_table_job_split_load_uses_the_cursor_candidate_its_table_has(databases,
                                                                             make_env):
    """A group's table job resolves its cursor among the candidates in every range and in
    the swap: the split load's checkpoint is on that column and the next run reads only
    what changed."""
    source = databases.postgres()
    create_orders(source, ROWS)
    analyze(source, "orders")
    text = (f'[sources.src]\nurl = "{source}"\n\n[[jobs]]\nname = "shop"\nsource = "src"\n'
            f'tables = ["orders"]\ncursor = ["modified_at", "updated_at"]\n'
            f"split_rows = {SPLIT_ROWS}\nbatch_size = 100\n")
    env = make_env(databases.postgres(), text)

    first = env.syncd("run", "shop.orders", "--jobs", "3")
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(split_ranges(env.local_url)) == 6
    history = runs(env.local_url, "shop.orders")
    assert [r["status"] for r in history] == ["succeeded"]
    assert history[0]["cursor_after"] is not None  # the checkpoint is on updated_at

    execute(source, "UPDATE orders SET note = 'late', updated_at = updated_at + "
                    "interval '10 days' WHERE id IN (5, 2000)")
    second = env.syncd("run", "shop.orders", check=True)
    assert "succeeded" in second.stdout
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    newest = runs(env.local_url, "shop.orders")[-1]
    assert newest["rows_read"] < ROWS and newest["rows_updated"] == 2, newest


@pytest.mark.parametrize("local_kind", ["postgres", "mysql"])
def test_ranges_take_the_sources_slots(databases, make_env, local_kind):
    """max_connections holds for split loads too: with one slot, three processes load the
    ranges one after the other (the run hands its own slot on to them: no deadlock)."""
    source = databases.postgres()
    create_orders(source, ROWS)
    analyze(source, "orders")
    text = jobs_toml(source).replace('url = "', 'max_connections = 1\nurl = "', 1)
    env = make_env(databases.make(local_kind), text)

    proc = env.syncd("run", "orders", "--jobs", "3", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert table_rows(env.local_url, "orders") == table_rows(source, "orders")
    ranges = sorted(split_ranges(env.local_url), key=lambda r: r["started_at"])
    assert len(ranges) == 6 and {r["status"] for r in ranges} == {"done"}
    for before, after in zip(ranges, ranges[1:]):  # never two ranges reading at once
        assert before["finished_at"] <= after["started_at"], (before, after)
