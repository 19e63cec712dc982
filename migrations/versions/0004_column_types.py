"""The source type each local column was made from (type changes at the source).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "syncd_column_types",
        sa.Column("job", sa.String(100), primary_key=True),
        sa.Column("column_name", sa.String(128), primary_key=True),
        sa.Column("source_type", sa.Text, nullable=False),
        sa.Column("local_type", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("syncd_column_types")
