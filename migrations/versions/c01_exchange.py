"""API idempotency keys and ledger imports

Revision ID: c01
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c01"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_api_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_api_idempotency_keys_user_id_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_api_idempotency_keys_created_at", "api_idempotency_keys", ["created_at"])

    op.create_table(
        "ledger_imports",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer()),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("crs", sa.String(32), server_default="EPSG:4326", nullable=False),
        sa.Column("state", sa.String(16), server_default="uploaded", nullable=False),
        sa.Column("progress_stage", sa.String(40), server_default="", nullable=False),
        sa.Column("progress_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("progress_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("summary", postgresql.JSONB()),
        sa.Column("error", sa.String(2000)),
        sa.Column("imported", sa.Integer()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_imports"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_ledger_imports_user_id_users", ondelete="SET NULL"
        ),
        sa.CheckConstraint(
            "state IN ('uploaded', 'checking', 'checked', 'importing', 'done', 'failed')",
            name=op.f("ck_ledger_imports_state"),
        ),
    )
    op.create_index("ix_ledger_imports_user_id", "ledger_imports", ["user_id"])


def downgrade() -> None:
    op.drop_table("ledger_imports")
    op.drop_table("api_idempotency_keys")
