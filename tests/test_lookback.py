"""``lookback = "auto"`` on PostgreSQL and MariaDB sources.

The cursor is set by the source database (a trigger with ``now()`` on PostgreSQL,
``ON UPDATE CURRENT_TIMESTAMP(6)`` on MariaDB). The test holds a source
transaction open itself (a row updated inside it) and waits on the source's own
clock for its age; nothing depends on how fast a run is.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sample_tables import table_rows
from test_sync import jobs_toml, make_state, run

from syncd.engine.lookback import HELD_WARNING_AGE

MYSQL_EVENTS = (
    "CREATE TABLE events (id INT PRIMARY KEY, note VARCHAR(50), updated_at DATETIME(6) NOT NULL "
    "DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), INDEX ix_events_cursor "
    "(updated_at, id))",
)
PG_EVENTS = (
    "CREATE TABLE events (id int PRIMARY KEY, note text, updated_at timestamp(6) NOT NULL "
    "DEFAULT now())",
    "CREATE INDEX ix_events_cursor ON events (updated_at, id)",
    "CREATE FUNCTION events_touch() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
    "CREATE TRIGGER events_touch BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION "
    "events_touch()",
)
HELD = re.compile(r'lookback = "auto": checkpoint held at (\S+) by a source transaction open '
                  r"for (?:(\d+)h )?(?:(\d+)m )?(\d+)s")


class Source:
    """The source database of a test, written as its own applications would (UTC sessions)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.kind = "postgres" if self.engine.dialect.name == "postgresql" else "mysql"

    def session(self) -> sa.Connection:
        conn = self.engine.connect()
        conn.exec_driver_sql("SET TIME ZONE 'UTC'" if self.kind == "postgres"
                             else "SET time_zone = '+00:00'")
        return conn

    def run(self, *statements: str) -> None:
        with self.session() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
            conn.commit()

    def cursor_of(self, key: int) -> datetime:
        with self.session() as conn:
            return conn.exec_driver_sql(
                f"SELECT updated_at FROM events WHERE id = {key}").scalar_one()

    def dispose(self) -> None:
        self.engine.dispose()


class OpenTransaction:
    """A source transaction the test keeps open: it updated a row and has not committed."""

    def __init__(self, source: Source, statement: str) -> None:
        self.source = source
        self.conn = source.session()
        if source.kind == "postgres":
            self.conn.exec_driver_sql("SELECT 1")  # the transaction starts here: now() is fixed
            self.ident = self.conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        else:
            self.ident = self.conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()
        self.conn.exec_driver_sql(statement)

    def age(self) -> float:
        """Seconds it has been open, by the source's own clock (0 until the source lists it:
        MariaDB refreshes innodb_trx from a cache at most every 0.1 s)."""
        with self.source.session() as conn:
            if self.source.kind == "postgres":
                query = ("SELECT EXTRACT(EPOCH FROM clock_timestamp() - xact_start) "
                         f"FROM pg_stat_activity WHERE pid = {self.ident}")
            else:  # trx_started has whole seconds: count from the start of its second
                query = ("SELECT TIMESTAMPDIFF(MICROSECOND, trx_started, CONVERT_TZ("
                         "UTC_TIMESTAMP(6), '+00:00', 'SYSTEM')) / 1e6 - 1 FROM "
                         f"information_schema.innodb_trx WHERE trx_mysql_thread_id = {self.ident}")
            age = conn.exec_driver_sql(query).scalar()
            return 0.0 if age is None else float(age)

    def wait_until_older_than(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds + 60
        while self.age() < seconds:
            assert time.monotonic() < deadline, "the source clock did not advance"
            time.sleep(0.2)

    def commit(self) -> None:
        self.conn.commit()
        self.conn.close()

    def rollback(self) -> None:
        self.conn.rollback()
        self.conn.close()


def events_source(databases: Any, kind: str) -> Source:
    source = Source(databases.make(kind))
    source.run(*(MYSQL_EVENTS if kind == "mysql" else PG_EVENTS),
               "INSERT INTO events (id, note) VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    return source


def events_state(tmp_path: Path, name: str, local: str, source_url: str, lookback: str) -> Any:
    folder = tmp_path / name
    folder.mkdir()
    return make_state(folder, local, jobs_toml(source_url, name="events", table="events",
                                               lookback=lookback))


def notes(url: str) -> dict[int, str]:
    return {int(r["id"]): r["note"] for r in table_rows(url, "events")}


@pytest.mark.parametrize("kind,local_kind", [("postgres", "sqlite"), ("mysql", "postgres"),
                                             ("postgres", "mysql"), ("mysql", "sqlite")])
def test_row_committed_late_is_missed_by_0s_and_arrives_once_with_auto(
        databases: Any, tmp_path: Path, kind: str, local_kind: str) -> None:
    source = events_source(databases, kind)
    fixed_local, auto_local = databases.make(local_kind), databases.make(local_kind)
    fixed = events_state(tmp_path, "fixed", fixed_local, source.url, "0s")
    auto = events_state(tmp_path, "auto", auto_local, source.url, "auto")
    late = None
    try:
        assert run(fixed, "events").status == "succeeded"
        assert run(auto, "events").status == "succeeded"
        # A transaction updates row 1 and stays open; its cursor value is its start time.
        late = OpenTransaction(source, "UPDATE events SET note = 'late' WHERE id = 1")
        late.wait_until_older_than(HELD_WARNING_AGE.total_seconds())
        source.run("INSERT INTO events (id, note) VALUES (4, 'after')")  # a later cursor value
        during_fixed, during_auto = run(fixed, "events"), run(auto, "events")
        late.commit()
        late = None
        after_fixed, after_auto = run(fixed, "events"), run(auto, "events")
        again_auto = run(auto, "events")
    finally:
        if late is not None:
            late.rollback()
        fixed.dispose()
        auto.dispose()
    late_cursor = source.cursor_of(1)
    source.dispose()
    assert (during_fixed.rows_inserted, during_auto.rows_inserted) == (1, 1)

    # lookback = "0s": the checkpoint passed row 1's cursor while it was not committed.
    assert notes(source.url)[1] == "late"
    assert notes(fixed_local)[1] == "one", "the late row was expected to be missed"
    assert (after_fixed.status, after_fixed.rows_read) == ("succeeded", 0)

    # lookback = "auto": the open transaction held the checkpoint back, and said so.
    held = [w["message"] for w in during_auto.to_dict()["warnings"] if HELD.match(w["message"])]
    assert len(held) == 1, during_auto.warnings
    match = HELD.match(held[0])
    assert match is not None
    hours, minutes, seconds = (int(g or 0) for g in match.groups()[1:])
    assert hours * 3600 + minutes * 60 + seconds >= HELD_WARNING_AGE.total_seconds()
    bound = during_auto.to_dict()["lookback_bound"]
    assert bound["held"] is True and bound["oldest_transaction_age_s"] >= 5
    assert datetime.fromisoformat(bound["bound"]).replace(tzinfo=None) < late_cursor
    # The checkpoint did not pass the late row (it may stay where it was before the run).
    assert datetime.fromisoformat(during_auto.to_dict()["cursor_after"]) < late_cursor

    # After the commit the row arrives, once: re-read rows are not rewritten or duplicated.
    assert after_auto.status == "succeeded", after_auto.error
    assert (after_auto.rows_inserted, after_auto.rows_updated) == (0, 1)
    assert notes(auto_local) == notes(source.url)
    assert table_rows(auto_local, "events") == table_rows(source.url, "events")
    assert (again_auto.rows_inserted, again_auto.rows_updated) == (0, 0)


def restricted_user(databases: Any, kind: str, source: Source) -> tuple[str, Any]:
    """A source user that may read the table but not see other sessions' transactions."""
    name = f"syncd_t_ro_{uuid.uuid4().hex[:8]}"
    url = sa.engine.make_url(source.url)
    if kind == "postgres":
        source.run(f"CREATE ROLE {name} LOGIN", f"GRANT SELECT ON events TO {name}")

        def drop() -> None:
            source.run(f"DROP OWNED BY {name}", f"DROP ROLE {name}")
    else:
        hosts = ("%%", "localhost", "127.0.0.1")  # "%%": the driver formats the statement
        source.run(*(f"CREATE USER '{name}'@'{h}'" for h in hosts),
                   *(f"GRANT SELECT ON `{url.database}`.* TO '{name}'@'{h}'" for h in hosts))

        def drop() -> None:
            source.run(*(f"DROP USER '{name}'@'{h}'" for h in hosts))
    return url.set(username=name).render_as_string(hide_password=False), drop


@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_without_the_privilege_auto_falls_back_to_the_fixed_lookback_with_a_warning(
        databases: Any, make_env: Any, tmp_path: Path, kind: str) -> None:
    source = events_source(databases, kind)
    reader_url, drop = restricted_user(databases, kind, source)
    try:
        env = make_env(databases.sqlite(), jobs_toml(reader_url, name="events", table="events",
                                                    lookback="auto"))
        check = env.syncd("check")
        assert check.returncode == 0, check.stdout + check.stderr
        assert 'warning: job "events": lookback = "auto" falls back to the fixed lookback of ' \
               "1m:" in check.stdout
        assert ("pg_read_all_stats" if kind == "postgres" else "PROCESS") in check.stdout
        assert env.syncd("run", "events").returncode == 0
        source.run("UPDATE events SET note = 'changed' WHERE id = 2")
        second = env.syncd("run", "events")
        assert second.returncode == 0, second.stdout + second.stderr
        newest = json_history(env)[0]
        warnings = [w["message"] for w in newest["warnings"]]
        expected = 'lookback = "auto" fell back to the fixed lookback of 1m: the source user'
        assert any(w.startswith(expected) for w in warnings), warnings
        assert newest["lookback_bound"] is None
        assert notes(env.local_url)[2] == "changed"

        env.write_jobs(jobs_toml(source.url, name="events", table="events", lookback="auto"))
        privileged = env.syncd("check")
        assert 'ok: job "events": lookback = "auto": the source shows its open transactions' \
            in privileged.stdout
    finally:
        drop()
        source.dispose()


def json_history(env: Any) -> list[dict[str, Any]]:
    import json

    return json.loads(env.syncd("history", "--json", check=True).stdout)


def test_sqlite_source_falls_back_with_a_warning(databases: Any, tmp_path: Path) -> None:
    from sample_tables import create_orders

    src = databases.sqlite("source")
    create_orders(src, 10)
    state = make_state(tmp_path, databases.sqlite(), jobs_toml(src, lookback="auto"))
    try:
        assert run(state).status == "succeeded"
        second = run(state)
    finally:
        state.dispose()
    assert second.status == "succeeded"
    assert {"message": 'lookback = "auto" fell back to the fixed lookback of 1m: a sqlite '
            "source shows no open transactions of other connections", "count": 1} \
        in second.to_dict()["warnings"]
