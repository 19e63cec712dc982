"""The last jobs file that validated, heartbeats of workers and beat, the audit of users
and tokens; API token names become unique.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


def upgrade() -> None:
    op.create_table(
        "syncd_jobs_files",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("text", LongText, nullable=False),
        sa.Column("loaded_at", sa.DateTime, nullable=False),
        sa.Column("loaded_by", sa.String(255)),
    )
    op.create_table(
        "syncd_heartbeats",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("pool_pids", sa.Text),
        sa.Column("concurrency", sa.Integer),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("stopped_at", sa.DateTime),
        sa.PrimaryKeyConstraint("kind", "name"),
    )
    op.create_table(
        "syncd_audit",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_syncd_audit_at", "syncd_audit", ["at"])
    _rename_duplicate_token_names()
    with op.batch_alter_table("syncd_api_tokens") as batch:
        batch.create_unique_constraint("uq_syncd_api_tokens_name", ["name"])


def _rename_duplicate_token_names() -> None:
    """Older tokens that share a name with a newer one get "-<id>" appended."""
    conn = op.get_bind()
    tokens = sa.table("syncd_api_tokens", sa.column("id", sa.Integer),
                      sa.column("name", sa.String))
    seen: set[str] = set()
    for token_id, name in list(conn.execute(
            sa.select(tokens.c.id, tokens.c.name).order_by(tokens.c.id.desc()))):
        if name in seen:
            conn.execute(tokens.update().where(tokens.c.id == token_id)
                         .values(name=f"{name[:90]}-{token_id}"))
        seen.add(name)


def downgrade() -> None:
    with op.batch_alter_table("syncd_api_tokens") as batch:
        batch.drop_constraint("uq_syncd_api_tokens_name", type_="unique")
    op.drop_index("ix_syncd_audit_at", table_name="syncd_audit")
    op.drop_table("syncd_audit")
    op.drop_table("syncd_heartbeats")
    op.drop_table("syncd_jobs_files")
