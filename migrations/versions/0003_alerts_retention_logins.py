"""Alerts and their deliveries, failed logins shared by all web processes, and the index
that lets housekeeping find old runs without a scan.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_syncd_runs_queued_at_id", "syncd_runs", ["queued_at", "id"])
    op.create_table(
        "syncd_alerts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("job", sa.String(100)),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_syncd_alerts_created_at", "syncd_alerts", ["created_at"])
    op.create_table(
        "syncd_alert_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("job", sa.String(100)),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
    )
    op.create_index("ix_syncd_alert_deliveries_created_at", "syncd_alert_deliveries",
                    ["created_at"])
    op.create_table(
        "syncd_login_failures",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("attempted_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_syncd_login_failures_username_attempted_at", "syncd_login_failures",
                    ["username", "attempted_at"])
    op.create_index("ix_syncd_login_failures_attempted_at", "syncd_login_failures",
                    ["attempted_at"])


def downgrade() -> None:
    op.drop_table("syncd_login_failures")
    op.drop_table("syncd_alert_deliveries")
    op.drop_table("syncd_alerts")
    op.drop_index("ix_syncd_runs_queued_at_id", table_name="syncd_runs")
