"""Job leases: the fencing token of each job's lock.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "syncd_job_leases",
        sa.Column("job", sa.String(100), primary_key=True),
        sa.Column("run_id", BigId),
        sa.Column("holder", sa.String(255)),
        sa.Column("taken_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("syncd_job_leases")
