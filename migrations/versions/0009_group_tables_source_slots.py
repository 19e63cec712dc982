"""Group jobs: the tables each group found at its source; a run waiting for a source slot.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")  # microseconds, as 0008

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "syncd_group_tables",
        sa.Column("group_name", sa.String(100), nullable=False),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("job", sa.String(100), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("first_seen_at", TIME, nullable=False),
        sa.Column("last_seen_at", TIME, nullable=False),
        sa.Column("missing_since", TIME, nullable=True),
        sa.PrimaryKeyConstraint("group_name", "table_name"),
    )
    op.add_column("syncd_runs", sa.Column("waiting_slot", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("syncd_runs") as batch:
        batch.drop_column("waiting_slot")
    op.drop_table("syncd_group_tables")
