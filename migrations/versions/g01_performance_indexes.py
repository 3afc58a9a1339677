"""Indexes for statistics at a million cases; joins the branches of the migration tree

Statistics read only the cases a figure counts (stats.queries.RELEVANT_SQL): the open
cases through a partial index, late resolutions through a BRIN on resolved_at (the
table is in time order), escalations of a period through partial indexes on their
rare timestamps; the repeat index gains reported_at so "no repeat before as_of" is an
index-only scan. Measured in BENCHMARKS.md.

Revision ID: g01
Revises: a01, b01, c01, e01, f01
Create Date: 2026-11-24
"""

from alembic import op

revision = "g01"
down_revision = ("a01", "b01", "c01", "e01", "f01")
branch_labels = None
depends_on = None

OPEN = "('closed','not_accepted','resolved')"
EVENTS = ("beijing_abnormal_at", "province_collective_at", "extreme_incident_at")


def upgrade() -> None:
    op.drop_index("ix_cases_repeat_of_id", table_name="cases")
    op.create_index(
        "ix_cases_repeat_of_id",
        "cases",
        ["repeat_of_id", "reported_at"],
        postgresql_where="repeat_of_id IS NOT NULL",
    )
    op.create_index(
        "ix_cases_open", "cases", ["reported_at"], postgresql_where=f"status NOT IN {OPEN}"
    )
    op.create_index("ix_cases_resolved_brin", "cases", ["resolved_at"], postgresql_using="brin")
    for column in EVENTS:
        op.create_index(
            f"ix_cases_{column}", "cases", [column], postgresql_where=f"{column} IS NOT NULL"
        )


def downgrade() -> None:
    for column in reversed(EVENTS):
        op.drop_index(f"ix_cases_{column}", table_name="cases")
    op.drop_index("ix_cases_resolved_brin", table_name="cases")
    op.drop_index("ix_cases_open", table_name="cases")
    op.drop_index("ix_cases_repeat_of_id", table_name="cases")
    op.create_index(
        "ix_cases_repeat_of_id",
        "cases",
        ["repeat_of_id"],
        postgresql_where="repeat_of_id IS NOT NULL",
    )
