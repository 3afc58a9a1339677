"""Escalations on cases for the 三无 figures: to Beijing, to the province, extreme incidents

Revision ID: e01
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "e01"
down_revision = "0002"
branch_labels = None
depends_on = None

# When (if ever) the matter of a case led to each event; NULL means it never did.
COLUMNS = ("beijing_abnormal_at", "province_collective_at", "extreme_incident_at")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("cases", sa.Column(name, sa.DateTime(timezone=True)))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("cases", name)
