"""Alembic environment for syncd's own tables (syncd_*)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from syncd.engine import urls
from syncd.models import Base

config = context.config
VERSION_TABLE = "syncd_alembic_version"
target_metadata = Base.metadata


def database_url() -> str:
    """The URL set by `syncd db upgrade`, else the one of config.py."""
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from config import Config

    return Config().SYNCD_DATABASE_URL


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Only syncd's own tables are managed here, never the synced ones."""
    if type_ == "table":
        return bool(name and name.startswith("syncd_"))
    return True


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True,
                      version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          include_object=include_object, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(urls.database_url(database_url()), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=target_metadata,
                              include_object=include_object,
                              version_table=VERSION_TABLE)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
