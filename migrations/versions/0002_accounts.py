"""Accounts, API tokens, sign-in attempts, the audit log; reporter and leader of a case

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ROLES = (
    "('grid_worker','village_informant','township_leader','county_staff',"
    "'leader_in_charge','planner','admin')"
)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("area_code", sa.String(20), nullable=False),
        sa.Column("unit", sa.String(100)),
        sa.Column("phone", sa.String(32)),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("session_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name="fk_users_area_code_areas", onupdate="CASCADE"
        ),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_users_role")),
    )
    op.create_index("ix_users_area_code", "users", ["area_code"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(100), server_default="", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked", sa.Boolean(), server_default="false", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_tokens_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("ip", postgresql.INET()),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_username_at", "login_attempts", ["username", "at"])
    op.create_index("ix_login_attempts_ip_at", "login_attempts", ["ip", "at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("user_id", sa.Integer()),
        sa.Column("username", sa.String(64)),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("case_id", sa.BigInteger()),
        sa.Column("ip", postgresql.INET()),
        sa.Column("detail", postgresql.JSONB()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_case_id", "audit_log", ["case_id"])
    op.create_index("ix_audit_log_user_id", "audit_log", ["user_id"])
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION forbid_change()"
    )

    op.add_column("cases", sa.Column("reporter_id", sa.Integer()))
    op.add_column("cases", sa.Column("leader_id", sa.Integer()))
    op.add_column("cases", sa.Column("accused_unit", sa.String(100)))
    op.create_foreign_key("fk_cases_reporter_id_users", "cases", "users", ["reporter_id"], ["id"])
    op.create_foreign_key("fk_cases_leader_id_users", "cases", "users", ["leader_id"], ["id"])
    op.create_index(
        "ix_cases_reporter_id",
        "cases",
        ["reporter_id"],
        postgresql_where=sa.text("reporter_id IS NOT NULL"),
    )
    op.create_index(
        "ix_cases_leader_id",
        "cases",
        ["leader_id"],
        postgresql_where=sa.text("leader_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_leader_id", "cases")
    op.drop_index("ix_cases_reporter_id", "cases")
    op.drop_constraint("fk_cases_leader_id_users", "cases")
    op.drop_constraint("fk_cases_reporter_id_users", "cases")
    op.drop_column("cases", "accused_unit")
    op.drop_column("cases", "leader_id")
    op.drop_column("cases", "reporter_id")
    op.drop_table("audit_log")
    op.drop_table("login_attempts")
    op.drop_table("api_tokens")
    op.drop_table("users")
