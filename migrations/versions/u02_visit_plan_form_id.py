"""The new-plan form's id on its plan, so that the form sent twice makes one plan

A double click on 生成计划, or a browser that retries the POST, made two draft plans,
each with its targets and routes. The form now carries an id (as the desk form does);
the plan it made keeps it with a fingerprint of what was sent, and a resend finds that
plan instead of making another.

Revision ID: u02
Revises: k02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "u02"
down_revision = "k02"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("visit_plans", sa.Column("client_id", sa.Uuid(), nullable=True))
    op.add_column("visit_plans", sa.Column("request_hash", sa.String(64), nullable=True))
    op.create_index(
        "uq_visit_plans_client_id",
        "visit_plans",
        ["client_id"],
        unique=True,
        postgresql_where=sa.text("client_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_visit_plans_client_id", table_name="visit_plans")
    op.drop_column("visit_plans", "request_hash")
    op.drop_column("visit_plans", "client_id")
