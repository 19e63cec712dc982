"""syncd's own tables: every migration goes up and down again on each local database, and
the times of the history keep microseconds everywhere (MySQL's plain DATETIME would not)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from syncd.db import MIGRATIONS_DIR, current_revision, make_local_engine, upgrade
from syncd.models import SyncRun


def _downgrade(engine: sa.Engine, revision: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@pytest.mark.parametrize("kind", ["postgres", "mysql", "sqlite"])
def test_migrations_go_down_and_up_again_and_run_times_keep_microseconds(
        databases: Any, kind: str) -> None:
    engine = make_local_engine(databases.make(kind))
    try:
        assert upgrade(engine)[0] is None
        with engine.connect() as conn:
            head = current_revision(conn)
        _downgrade(engine, "base")
        with engine.connect() as conn:
            assert current_revision(conn) is None
            assert not [t for t in sa.inspect(conn).get_table_names() if t.startswith("syncd_")
                        and t != "syncd_alembic_version"]
        assert upgrade(engine) == (None, head)

        at = datetime(2026, 11, 26, 10, 20, 30, 123456, tzinfo=UTC)
        with sa.orm.Session(engine) as session, session.begin():
            session.add(SyncRun(job="orders", trigger="cli", status="succeeded", queued_at=at,
                                started_at=at, finished_at=at.replace(microsecond=654321)))
        with sa.orm.Session(engine) as session:
            run = session.scalars(sa.select(SyncRun)).one()
            assert (run.started_at, run.finished_at) == (at, at.replace(microsecond=654321))
        if kind == "mysql":
            with engine.connect() as conn:
                seconds_only = conn.exec_driver_sql(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = DATABASE() AND data_type = 'datetime' "
                    "AND datetime_precision <> 6").all()
            assert seconds_only == []
    finally:
        engine.dispose()
