"""Field work: case photos and grid sweep reports (排查) with the cases they list

Revision ID: b01
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "b01"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_photos",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("client_photo_id", sa.Uuid(), nullable=False),
        sa.Column("uploader_id", sa.Integer()),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("original_format", sa.String(8), nullable=False),
        sa.Column("original_bytes", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_photos"),
        sa.UniqueConstraint("client_photo_id", name="uq_case_photos_client_photo_id"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_photos_case_id_cases", ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["uploader_id"], ["users.id"], name="fk_case_photos_uploader_id_users"
        ),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_case_photos_size_bytes")),
        sa.CheckConstraint("width > 0 AND height > 0", name=op.f("ck_case_photos_dimensions")),
    )
    op.create_index("ix_case_photos_case_id", "case_photos", ["case_id"])

    op.create_table(
        "sweeps",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("grid_id", sa.Integer(), nullable=False),
        sa.Column("grid_code", sa.String(20), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("period_kind", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("zero_report", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column(
            "submitted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("revision", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sweeps"),
        sa.UniqueConstraint("grid_id", "period_kind", "period_start", name="uq_sweeps_grid_period"),
        sa.ForeignKeyConstraint(["grid_id"], ["areas.id"], name="fk_sweeps_grid_id_areas"),
        sa.ForeignKeyConstraint(["reporter_id"], ["users.id"], name="fk_sweeps_reporter_id_users"),
        sa.CheckConstraint(
            "period_kind IN ('daily','monthly')", name=op.f("ck_sweeps_period_kind")
        ),
        sa.CheckConstraint(
            "period_kind <> 'monthly' OR extract(day FROM period_start) = 1",
            name=op.f("ck_sweeps_monthly_start"),
        ),
    )
    op.create_index("ix_sweeps_township_period", "sweeps", ["township_code", "period_start"])

    op.create_table(
        "sweep_cases",
        sa.Column("sweep_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sweep_id", "case_id", name="pk_sweep_cases"),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.id"], name="fk_sweep_cases_sweep_id_sweeps", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_sweep_cases_case_id_cases", ondelete="RESTRICT"
        ),
    )
    op.create_index("ix_sweep_cases_case_id", "sweep_cases", ["case_id"])


def downgrade() -> None:
    op.drop_table("sweep_cases")
    op.drop_table("sweeps")
    op.drop_table("case_photos")
