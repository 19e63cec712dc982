"""syncd's own tables: runs, checkpoints, job state, users, API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "syncd_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(100), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("full_refresh", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("queued_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("heartbeat_at", sa.DateTime),
        sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_inserted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_updated", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_deleted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rows_total", sa.BigInteger),
        sa.Column("phase", sa.String(16)),
        sa.Column("cursor_before", sa.Text),
        sa.Column("cursor_after", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.Column("warnings", sa.Text),
        sa.Column("started_by", sa.String(100)),
        sa.Column("hostname", sa.String(255)),
        sa.Column("pid", sa.Integer),
        sa.Column("task_id", sa.String(64)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_syncd_runs_job_id", "syncd_runs", ["job", "id"])
    op.create_index("ix_syncd_runs_status_id", "syncd_runs", ["status", "id"])
    op.create_index("ix_syncd_runs_job_status_id", "syncd_runs", ["job", "status", "id"])
    op.create_index("ix_syncd_runs_job_trigger_id", "syncd_runs", ["job", "trigger", "id"])
    op.create_table(
        "syncd_checkpoints",
        sa.Column("job", sa.String(100), primary_key=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("position", sa.Text),
        sa.Column("load_cursor", sa.Text),
        sa.Column("staging", sa.String(64)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "syncd_job_state",
        sa.Column("job", sa.String(100), primary_key=True),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("changed_by", sa.String(100)),
        sa.Column("changed_at", sa.DateTime),
    )
    op.create_table(
        "syncd_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "syncd_api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    for table in ("syncd_api_tokens", "syncd_users", "syncd_job_state", "syncd_checkpoints"):
        op.drop_table(table)
    op.drop_table("syncd_runs")
