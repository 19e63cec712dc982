"""MySQL/MariaDB: syncd's own timestamps keep microseconds, as on PostgreSQL and SQLite.

``DATETIME`` without a precision keeps whole seconds on MySQL and MariaDB, so run times,
durations and the order of events within one second were lost there. Every ``DATETIME``
column of syncd's tables becomes ``DATETIME(6)``; other databases are untouched.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _datetime_columns() -> list[tuple[str, str, bool]]:
    """(table, column, nullable) of every DATETIME column of syncd's tables."""
    inspector = sa.inspect(op.get_bind())
    return [(table, column["name"], bool(column["nullable"]))
            for table in inspector.get_table_names() if table.startswith("syncd_")
            for column in inspector.get_columns(table)
            if isinstance(column["type"], sa.DateTime)]


def _alter_all(fsp: int | None) -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    for table, column, nullable in _datetime_columns():
        op.alter_column(table, column, type_=mysql.DATETIME(fsp=fsp),
                        existing_nullable=nullable)


def upgrade() -> None:
    _alter_all(6)


def downgrade() -> None:
    _alter_all(None)
