"""Index the recently dissatisfied cases for visit targeting

Visit plans start from the live cases: the open ones (ix_cases_open) and those
followed up with the petitioner dissatisfied within a window, by the time of their
latest step (``coalesce(resolved_at, concluded_at, reported_at)``). This partial
index finds the latter without reading the whole table.

Revision ID: v01
Revises: t01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v01"
down_revision = "t01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_cases_dissatisfied",
        "cases",
        [sa.text("coalesce(resolved_at, concluded_at, reported_at)")],
        postgresql_where="satisfaction = 'dissatisfied'",
    )


def downgrade() -> None:
    op.drop_index("ix_cases_dissatisfied", table_name="cases")
