"""Each stop's leg says how it was measured (along roads or a straight line) and keeps its path

``leg_kind``: ``road`` (along the county's road network), ``straight`` (no network to
route on) or ``no_path`` (the network does not connect the two ends: measured straight).
``leg_path`` is the line walked from the previous stop (or the start) for a road leg,
drawn on the plan map; NULL for straight legs.

Revision ID: r02
Revises: r01
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "r02"
down_revision = "r01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("visit_stops", sa.Column("leg_kind", sa.String(8)))
    op.add_column(
        "visit_stops",
        sa.Column("leg_path", geoalchemy2.Geometry("LINESTRING", srid=4326, spatial_index=False)),
    )
    op.create_check_constraint(
        "ck_visit_stops_leg_kind",
        "visit_stops",
        "leg_kind IS NULL OR leg_kind IN ('road','straight','no_path')",
    )


def downgrade() -> None:
    op.drop_constraint("ck_visit_stops_leg_kind", "visit_stops", type_="check")
    op.drop_column("visit_stops", "leg_path")
    op.drop_column("visit_stops", "leg_kind")
