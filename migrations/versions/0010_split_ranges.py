"""Split full loads: the key ranges of a big table's full load, each with its checkpoint.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

Time = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")  # microseconds, as 0008

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "syncd_split_ranges",
        sa.Column("job", sa.String(100), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.BigInteger),  # the run loading the ranges now
        # "celery": ranges are tasks of the broker; "local": processes of `syncd run --jobs`
        sa.Column("dispatch", sa.String(16)),
        sa.Column("lo", sa.Text),  # JSON key: rows after it (NULL: from the first row)
        sa.Column("hi", sa.Text),  # JSON key: rows up to it (NULL: to the last row)
        sa.Column("position", sa.Text),  # JSON key: the last row committed (the checkpoint)
        sa.Column("status", sa.String(16), nullable=False),  # pending|running|done|failed
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker", sa.String(255)),  # host:pid of the process loading it
        sa.Column("error", sa.Text),
        sa.Column("started_at", Time),
        sa.Column("finished_at", Time),
        sa.Column("heartbeat_at", Time),
    )
    op.create_index("ix_syncd_split_ranges_run_id", "syncd_split_ranges", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_syncd_split_ranges_run_id", "syncd_split_ranges")
    op.drop_table("syncd_split_ranges")
