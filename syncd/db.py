"""The local database: engine creation, sessions and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from syncd.engine.urls import BadURL, database_url, masked_if_parsed

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "syncd_alembic_version"  # as migrations/env.py names it


def make_local_engine(url: str) -> Engine:
    """An engine on the local database; SQLite gets WAL and a busy timeout.

    ``postgresql://`` and ``mysql://`` get the drivers syncd ships; a URL syncd cannot
    use raises BadURL naming the local database and its masked URL.
    """
    try:
        parsed = database_url(url)
    except BadURL as exc:
        shown = masked_if_parsed(url)  # one that does not parse may hide a password
        where = "(SYNCD_DATABASE_URL)" if shown is None else f"{shown} (SYNCD_DATABASE_URL)"
        raise BadURL(f"local database {where}: {exc}") from exc
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 60}}
    elif parsed.get_backend_name() == "mysql":
        kwargs["pool_recycle"] = 3600
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the local database; callers decide when to commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Run Alembic migrations of syncd's own tables up to ``revision``.

    Returns the revision before (None: syncd's tables did not exist) and after.
    """
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        before = current_revision(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        return before, current_revision(conn)


def current_revision(conn: Connection) -> str | None:
    """The revision of syncd's tables in the local database (None: none there yet)."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()
