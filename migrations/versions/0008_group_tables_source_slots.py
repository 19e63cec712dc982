"""Group jobs: the tables each group found at its source; a run waiting for a source slot.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "syncd_group_tables",
        sa.Column("group_name", sa.String(100), nullable=False),
        sa.Column("table_name", sa.String(200), nullable=False),
        sa.Column("job", sa.String(100), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("missing_since", sa.DateTime, nullable=True),
        sa.PrimaryKeyConstraint("group_name", "table_name"),
    )
    op.add_column("syncd_runs", sa.Column("waiting_slot", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("syncd_runs") as batch:
        batch.drop_column("waiting_slot")
    op.drop_table("syncd_group_tables")
