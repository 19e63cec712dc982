"""A source's slots: never more than ``max_connections`` runs reading one source at once.

Ten table jobs of one source with ``max_connections = 2`` on a real Celery worker of
concurrency 4 (RabbitMQ): the tables are locked at the source, so the two runs that
took the slots wait inside their read, holding their connection; the other runs the
worker took wait ``queued`` for a slot. The source then shows exactly two syncd
connections. Once the lock is released, every run succeeds and the source never
shows more than two.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from celery_helpers import running_services, runs, wait_for
from conftest import RABBITMQ_URL, engine_for, rows_of

TABLES = [f"t{i:02d}" for i in range(10)]
FINISHED = {"succeeded", "failed", "skipped", "abandoned", "cancelled"}
SLOT_MESSAGE = "waiting for a slot on source src"
STAMP = datetime(2026, 1, 2, 3, 4, 5)


@pytest.fixture
def services():  # type: ignore[no-untyped-def]
    yield from running_services()


def make_tables(url: str, rows: int = 5) -> None:
    """Ten small tables t00..t09 (id, note, updated_at) at the source."""
    engine = engine_for(url)
    meta = sa.MetaData()
    tables = [sa.Table(name, meta, sa.Column("id", sa.Integer, primary_key=True),
                       sa.Column("note", sa.String(50)),
                       sa.Column("updated_at", sa.DateTime, nullable=False))
              for name in TABLES]
    with engine.begin() as conn:
        meta.create_all(conn)
        for table in tables:
            conn.execute(table.insert(), [
                {"id": i, "note": f"{table.name}-{i}", "updated_at": STAMP}
                for i in range(1, rows + 1)])
    engine.dispose()


def group_jobs(url: str) -> str:
    return (f'[sources.src]\nurl = "{url}"\nmax_connections = 2\n\n'
            '[[jobs]]\nname = "many"\nsource = "src"\ntables = ["t*"]\n'
            'cursor = ["modified_at", "updated_at"]\n')


class TableLock:
    """Holds every source table locked for writing: readers wait inside their read."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self.conn = self.engine.connect()
        self.dialect = self.engine.dialect.name
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql(
                f"LOCK TABLE {', '.join(TABLES)} IN ACCESS EXCLUSIVE MODE")
        else:
            self.conn.exec_driver_sql("LOCK TABLES " + ", ".join(f"{t} WRITE" for t in TABLES))

    def release(self) -> None:
        if self.dialect == "postgresql":
            self.conn.commit()
        else:
            self.conn.exec_driver_sql("UNLOCK TABLES")
        self.conn.close()
        self.engine.dispose()


class SourceConnections:
    """Counts the connections the source database sees from anyone but this test."""

    def __init__(self, url: str, ignore: Any) -> None:
        self.engine = engine_for(url)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.database = self.engine.url.database
        self.postgres = self.engine.dialect.name == "postgresql"
        me = "pg_backend_pid()" if self.postgres else "CONNECTION_ID()"
        self.ignored = {self.conn.exec_driver_sql(f"SELECT {me}").scalar(),
                        ignore.exec_driver_sql(f"SELECT {me}").scalar()}

    def count(self) -> int:
        if self.postgres:
            query = ("SELECT pid FROM pg_stat_activity WHERE datname = %(db)s "
                     "AND backend_type = 'client backend'")
        else:
            query = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %(db)s"
        ids = {row[0] for row in self.conn.exec_driver_sql(query, {"db": self.database})}
        return len(ids - self.ignored)

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


@pytest.mark.parametrize("source_kind,local_kind", [("postgres", "mysql"), ("mysql", "postgres")])
def test_ten_tables_never_more_than_two_connections(databases, make_env, services,
                                                    source_kind, local_kind):
    source = databases.make(source_kind)
    local = databases.make(local_kind)
    make_tables(source)
    env = make_env(local, group_jobs(source))
    queue = f"syncd-test-{uuid.uuid4().hex[:10]}"
    env.extra_env.update(CELERY_BROKER_URL=RABBITMQ_URL, SYNCD_QUEUE=queue)
    lock = TableLock(source)
    watch = SourceConnections(source, lock.conn)
    try:
        proc = env.syncd("trigger", "many", check=True)
        run_ids = [int(i) for i in proc.stdout.strip().splitlines()[-1].split()]
        assert len(run_ids) == 10
        services.worker(env, 4)

        def held() -> bool:
            rows = runs(local)
            running = [r for r in rows if r["status"] == "running"]
            waiting = [r for r in rows if r["activity"] == SLOT_MESSAGE]
            return len(running) == 2 and len(waiting) == 2 and watch.count() == 2

        wait_for(held, 60, lambda: f"never 2 running and 2 waiting for a slot: "
                 f"{[(r['job'], r['status'], r['activity']) for r in runs(local)]}, "
                 f"{watch.count()} connections")
        waiting = [r for r in runs(local) if r["activity"] == SLOT_MESSAGE]
        assert all(r["status"] == "queued" for r in waiting)
        assert watch.count() == 2  # the two runs holding the slots, blocked in their read

        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], watch.count())
                done.wait(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        lock.release()
        lock = None
        try:
            wait_for(lambda: all(r["status"] in FINISHED for r in runs(local)) and
                     len(runs(local)) == 10, 120,
                     lambda: f"runs did not finish: {runs(local)}")
        finally:
            done.set()
            sampler.join()
        assert peak[0] <= 2, f"the source saw {peak[0]} syncd connections at once"
    finally:
        if lock is not None:
            lock.release()
        watch.close()
    history = runs(local)
    assert sorted(r["job"] for r in history) == sorted(f"many.{t}" for t in TABLES)
    assert {r["status"] for r in history} == {"succeeded"}, history
    for table in TABLES:
        assert [r[:2] for r in rows_of(local, table)] == [r[:2] for r in rows_of(source, table)]


class Runner(threading.Thread):
    """run_job in a thread (the test plays the other runs by holding slots itself)."""

    def __init__(self, state: Any, request: Any) -> None:
        super().__init__(daemon=True)
        self.state, self.request = state, request
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from syncd.runner import run_job

        try:
            self.result = run_job(self.state, self.request)
        except BaseException as exc:  # noqa: BLE001  (re-raised by the test)
            self.error = exc

    def outcome(self, timeout: float = 60) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the run did not return"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def one_slot(request, databases, tmp_path):  # type: ignore[no-untyped-def]
    """A state whose source "src" has one slot, and the slot held by this test."""
    from sample_tables import create_orders
    from test_sync import jobs_toml, make_state

    from syncd.slots import SourceSlot

    source = databases.sqlite("source")
    create_orders(source, 30)
    text = jobs_toml(source).replace('"\n\n[[jobs]]', '"\nmax_connections = 1\n\n[[jobs]]', 1)
    state = make_state(tmp_path, databases.make(request.param), text)
    state.source_url = source
    held = SourceSlot(state.engine, "src", 1)
    assert held.try_take()
    yield state, held
    held.release()
    state.dispose()


def waiting_rows(state: Any) -> list[Any]:
    from syncd.models import SyncRun

    with state.sessions() as session:
        return list(session.scalars(sa.select(SyncRun).where(SyncRun.status == "queued")))


def test_a_run_waits_queued_for_a_slot_then_runs(one_slot) -> None:
    from sample_tables import table_rows

    from syncd.runner import RunRequest

    state, held = one_slot
    runner = Runner(state, RunRequest(job="orders", trigger="cli", started_by="cli"))
    runner.start()
    queued = wait_for(lambda: [r for r in waiting_rows(state) if r.activity == SLOT_MESSAGE],
                      30, "the run never waited for a slot")
    assert queued[0].job == "orders" and queued[0].started_at is None
    assert runner.is_alive()  # it waits: neither failed nor skipped
    held.release()
    run = runner.outcome()
    assert run.status == "succeeded" and run.id == queued[0].id and run.rows_read == 30
    assert run.waiting_slot is None
    assert table_rows(state.config.SYNCD_DATABASE_URL, "orders") == \
        table_rows(state.source_url, "orders")


def test_cancel_ends_the_wait_for_a_slot(one_slot) -> None:
    from syncd.cancel import request_cancel
    from syncd.runner import RunRequest, create_queued_run

    state, _held = one_slot
    run_id = create_queued_run(state, "orders", "manual", started_by="alice")
    runner = Runner(state, RunRequest(job="orders", trigger="manual", run_id=run_id,
                                      started_by="alice"))
    runner.start()
    wait_for(lambda: [r for r in waiting_rows(state) if r.activity == SLOT_MESSAGE], 30,
             "the run never waited for a slot")
    request_cancel(state, run_id, "alice")
    run = runner.outcome()
    assert run.status == "cancelled" and run.cancelled_by == "alice"
    assert run.started_at is None
