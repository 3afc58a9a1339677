"""Door-to-door visits: plans, their people and stops, and the outcomes recorded in the field

Revision ID: f01
Revises: 0002
Create Date: 2026-11-23
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "f01"
down_revision = "0002"
branch_labels = None
depends_on = None


def _point(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        name, geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "visit_plans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("area_code", sa.String(20), nullable=False),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), server_default="draft", nullable=False),
        sa.Column("weights", postgresql.JSONB(), nullable=False),
        sa.Column("start_mode", sa.String(16), server_default="committee", nullable=False),
        _point("start_point"),
        sa.Column("overflow", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_visit_plans"),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name="fk_visit_plans_area_code_areas", onupdate="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_visit_plans_created_by_users"
        ),
        sa.CheckConstraint("status IN ('draft','published')", name="ck_visit_plans_status"),
        sa.CheckConstraint("date_to >= date_from", name="ck_visit_plans_dates"),
        sa.CheckConstraint("start_mode IN ('committee','point')", name="ck_visit_plans_start_mode"),
    )
    op.create_index(
        "ix_visit_plans_area_code",
        "visit_plans",
        ["area_code"],
        postgresql_ops={"area_code": "text_pattern_ops"},
    )

    op.create_table(
        "visit_plan_people",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=False),
        _point("start_point", nullable=False),
        sa.Column("start_label", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", "user_id", name="pk_visit_plan_people"),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["visit_plans.id"],
            name="fk_visit_plan_people_plan_id_visit_plans",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_visit_plan_people_user_id_users"
        ),
        sa.CheckConstraint(
            "daily_capacity BETWEEN 1 AND 200", name="ck_visit_plan_people_daily_capacity"
        ),
    )
    op.create_index("ix_visit_plan_people_user_id", "visit_plan_people", ["user_id"])

    op.create_table(
        "visit_stops",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("case_id", sa.BigInteger()),
        sa.Column("grid_code", sa.String(20), nullable=False),
        _point("location", nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("follow_up", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("user_id", sa.Integer()),
        sa.Column("day", sa.Date()),
        sa.Column("seq", sa.Integer()),
        sa.Column("leg_m", sa.Float()),
        sa.Column("state", sa.String(16), server_default="pending", nullable=False),
        sa.Column("unassigned_reason", sa.String(200)),
        sa.Column("added_by_hand", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_visit_stops"),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["visit_plans.id"],
            name="fk_visit_stops_plan_id_visit_plans",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_visit_stops_case_id_cases"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_visit_stops_user_id_users"),
        sa.CheckConstraint("kind IN ('case','grid')", name="ck_visit_stops_kind"),
        sa.CheckConstraint(
            "(kind = 'case') = (case_id IS NOT NULL)", name="ck_visit_stops_case_target"
        ),
        sa.CheckConstraint("(user_id IS NULL) = (day IS NULL)", name="ck_visit_stops_assigned_day"),
        sa.CheckConstraint(
            "state IN ('pending','done','nobody_home','refused')", name="ck_visit_stops_state"
        ),
    )
    op.create_index(
        "uq_visit_stops_plan_case",
        "visit_stops",
        ["plan_id", "case_id"],
        unique=True,
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )
    op.create_index(
        "uq_visit_stops_plan_grid",
        "visit_stops",
        ["plan_id", "grid_code"],
        unique=True,
        postgresql_where=sa.text("kind = 'grid'"),
    )
    op.create_index(
        "ix_visit_stops_plan_user_day", "visit_stops", ["plan_id", "user_id", "day", "seq"]
    )
    op.create_index(
        "ix_visit_stops_user_day",
        "visit_stops",
        ["user_id", "day"],
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.create_index(
        "ix_visit_stops_case_id",
        "visit_stops",
        ["case_id"],
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )

    op.create_table(
        "visit_records",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("stop_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.BigInteger()),
        sa.Column("grid_code", sa.String(20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("satisfaction", sa.String(16)),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("new_case_id", sa.BigInteger()),
        _point("location"),
        sa.Column("visited_at", sa.DateTime(timezone=True)),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_visit_records"),
        sa.UniqueConstraint("client_id", name="uq_visit_records_client_id"),
        sa.ForeignKeyConstraint(
            ["stop_id"],
            ["visit_stops.id"],
            name="fk_visit_records_stop_id_visit_stops",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["visit_plans.id"],
            name="fk_visit_records_plan_id_visit_plans",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_visit_records_case_id_cases"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_visit_records_user_id_users"),
        sa.ForeignKeyConstraint(
            ["new_case_id"], ["cases.id"], name="fk_visit_records_new_case_id_cases"
        ),
        sa.CheckConstraint(
            "outcome IN ('done','nobody_home','refused')", name="ck_visit_records_outcome"
        ),
        sa.CheckConstraint(
            "satisfaction IS NULL OR satisfaction IN ('satisfied','basically','dissatisfied')",
            name="ck_visit_records_satisfaction",
        ),
    )
    op.create_index("ix_visit_records_grid_received", "visit_records", ["grid_code", "received_at"])
    op.create_index(
        "ix_visit_records_case_id",
        "visit_records",
        ["case_id"],
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )
    op.create_index("ix_visit_records_stop_id", "visit_records", ["stop_id"])


def downgrade() -> None:
    op.drop_table("visit_records")
    op.drop_table("visit_stops")
    op.drop_table("visit_plan_people")
    op.drop_table("visit_plans")
