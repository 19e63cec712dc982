"""Runs: each attempt's error and the next try, the run a queued run waits for, cancel.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = (
    ("max_attempts", sa.Integer),  # SYNCD_RETRY_ATTEMPTS of the process running the run
    ("next_attempt_at", sa.DateTime),  # while it waits between two attempts
    ("attempt_errors", sa.Text),  # JSON list: {"attempt", "at", "error"} of each failed attempt
    ("waiting_for", sa.BigInteger),  # a queued run waiting for the job: the run holding it
    ("cancel_requested_at", sa.DateTime),
    ("cancelled_by", sa.String(100)),  # the user, token:NAME, cli or Ctrl-C
)


def upgrade() -> None:
    # One ADD COLUMN per statement: SQLite adds nullable columns in place, no table copy.
    for name, type_ in COLUMNS:
        op.add_column("syncd_runs", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("syncd_runs") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
