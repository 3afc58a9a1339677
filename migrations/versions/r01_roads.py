"""Road layers: road pieces and junctions per county, and pgRouting where the server has it

The ``pgrouting`` extension is created when the server offers it and the user may
create it; otherwise the migration goes on without it (routes are then straight
lines, and the app says so). ``webapp.db`` tries again at every start, so installing
pgRouting later is enough.

Revision ID: r01
Revises: h01
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "r01"
down_revision = "h01"
branch_labels = None
depends_on = None

# A subtransaction (the EXCEPTION block), so a refusal does not abort the migration.
CREATE_PGROUTING = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgrouting')
       AND NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pgrouting') THEN
        BEGIN
            CREATE EXTENSION pgrouting;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pgrouting not created: %', SQLERRM;
        END;
    END IF;
END
$$
"""


def _county() -> sa.Column:
    return sa.Column("county_code", sa.String(6), nullable=False)


def _county_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["county_code"],
        ["areas.code"],
        name=f"fk_{table}_county_code_areas",
        onupdate="CASCADE",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.execute(CREATE_PGROUTING)
    op.create_table(
        "roads",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        _county(),
        sa.Column("name", sa.String(200)),
        sa.Column("kind", sa.String(50)),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.Column("source", sa.BigInteger()),
        sa.Column("target", sa.BigInteger()),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("LINESTRING", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name="pk_roads"),
        _county_fk("roads"),
        sa.CheckConstraint("length_m >= 0", name="ck_roads_length_m"),
    )
    op.create_index("ix_roads_county_code", "roads", ["county_code"])
    op.create_index("idx_roads_geom", "roads", ["geom"], postgresql_using="gist")
    op.create_table(
        "road_vertices",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        _county(),
        sa.Column(
            "geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_road_vertices"),
        _county_fk("road_vertices"),
    )
    op.create_index("ix_road_vertices_county_code", "road_vertices", ["county_code"])
    op.create_index("idx_road_vertices_geom", "road_vertices", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    # The extension stays: it may have been there before, and other databases may use it.
    op.drop_table("road_vertices")
    op.drop_table("roads")
