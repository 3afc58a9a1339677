"""Case workflow: assignment, extension, supervision and appeal columns; repeat dismissals

Revision ID: a01
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "a01"
down_revision = "0002"
branch_labels = None
depends_on = None

LEVELS = "('village','township','county','above')"


def upgrade() -> None:
    # op.f(): the names are final (the naming convention would prefix "ck_cases_" again).
    op.add_column("cases", sa.Column("assigned_at", sa.DateTime(timezone=True)))
    op.add_column("cases", sa.Column("assigned_unit", sa.String(100)))
    op.add_column("cases", sa.Column("assigned_level", sa.String(16)))
    op.add_column(
        "cases", sa.Column("extension_days", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("cases", sa.Column("supervision", sa.String(16)))
    op.add_column("cases", sa.Column("review_stage", sa.String(16)))
    op.add_column("cases", sa.Column("answered_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        op.f("ck_cases_assigned_level"),
        "cases",
        f"assigned_level IS NULL OR assigned_level IN {LEVELS}",
    )
    op.create_check_constraint(
        op.f("ck_cases_supervision"),
        "cases",
        "supervision IS NULL OR supervision IN ('supervised','listed')",
    )
    op.create_check_constraint(
        op.f("ck_cases_review_stage"),
        "cases",
        "review_stage IS NULL OR review_stage IN ('reviewed','reexamined')",
    )
    op.create_check_constraint(op.f("ck_cases_extension_days"), "cases", "extension_days >= 0")
    # Concluded cases already loaded: their written answer is their conclusion.
    op.execute("UPDATE cases SET answered_at = concluded_at WHERE concluded_at IS NOT NULL")

    op.create_index(
        "ix_cases_due_at", "cases", ["due_at"], postgresql_where=sa.text("due_at IS NOT NULL")
    )
    op.create_index(
        "ix_cases_petitioner_phone",
        "cases",
        ["petitioner_phone"],
        postgresql_where=sa.text("petitioner_phone IS NOT NULL"),
    )
    op.create_index(
        "ix_cases_petitioner_id_number",
        "cases",
        ["petitioner_id_number"],
        postgresql_where=sa.text("petitioner_id_number IS NOT NULL"),
    )

    op.create_table(
        "case_repeat_dismissals",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("other_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer()),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "other_id", name="pk_case_repeat_dismissals"),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name="fk_case_repeat_dismissals_case_id_cases",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_id"],
            ["cases.id"],
            name="fk_case_repeat_dismissals_other_id_cases",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_case_repeat_dismissals_user_id_users"
        ),
    )


def downgrade() -> None:
    op.drop_table("case_repeat_dismissals")
    op.drop_index("ix_cases_petitioner_id_number", "cases")
    op.drop_index("ix_cases_petitioner_phone", "cases")
    op.drop_index("ix_cases_due_at", "cases")
    for name in ("extension_days", "review_stage", "supervision", "assigned_level"):
        op.drop_constraint(op.f(f"ck_cases_{name}"), "cases")
    for col in (
        "answered_at",
        "review_stage",
        "supervision",
        "extension_days",
        "assigned_level",
        "assigned_unit",
        "assigned_at",
    ):
        op.drop_column("cases", col)
