"""Verify runs (rows compared, different, repaired, and what was found) and the bound a
run of a ``lookback = "auto"`` job used.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("syncd_runs") as batch:
        batch.add_column(sa.Column("rows_compared", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("rows_different", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("rows_repaired", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("verify", sa.Text, nullable=True))
        batch.add_column(sa.Column("lookback_bound", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("syncd_runs") as batch:
        batch.drop_column("lookback_bound")
        batch.drop_column("verify")
        batch.drop_column("rows_repaired")
        batch.drop_column("rows_different")
        batch.drop_column("rows_compared")
