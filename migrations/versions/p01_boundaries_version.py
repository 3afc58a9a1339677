"""Boundaries version stamp: any change to ``areas`` replaces settings.boundaries_version

The map views keep the simplified areas of a level within an area in process
(``grid.queries.area_features``), keyed by this stamp, which every request reads: a
boundary import in any worker process (or any other statement that changes
``areas``: the demo load, a manual fix) gives a new stamp, so no worker serves the
old boundaries after it commits. The stamp is a random UUID, so a rolled-back change
never leaves a stamp that a later change could reuse.

Revision ID: p01
Revises: y01
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "p01"
down_revision = "y01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION areas_new_boundaries_version() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO settings (key, value) VALUES ('boundaries_version', gen_random_uuid()::text)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER areas_boundaries_version
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON areas
        FOR EACH STATEMENT EXECUTE FUNCTION areas_new_boundaries_version()
        """
    )
    op.execute(
        "INSERT INTO settings (key, value) VALUES ('boundaries_version', gen_random_uuid()::text)"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER areas_boundaries_version ON areas")
    op.execute("DROP FUNCTION areas_new_boundaries_version()")
    op.execute("DELETE FROM settings WHERE key = 'boundaries_version'")
