"""The audit log and the case event log refuse TRUNCATE too, not only UPDATE and DELETE

Row triggers do not fire on TRUNCATE; a statement trigger closes that gap, so no
statement at all can remove history from either table. An empty table may still be
truncated: nothing is lost, and the bulk loader truncates the empty case tables in its
own transaction so that, at wal_level=minimal, the first load skips the WAL.

Revision ID: h01
Revises: g01
"""

from __future__ import annotations

from alembic import op

revision = "h01"
down_revision = "g01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION forbid_truncate_of_history() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            has_rows boolean;
        BEGIN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
                INTO has_rows;
            IF has_rows THEN
                RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION forbid_truncate_of_history();
        CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
            FOR EACH STATEMENT EXECUTE FUNCTION forbid_truncate_of_history();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER case_events_no_truncate ON case_events;
        DROP TRIGGER audit_log_no_truncate ON audit_log;
        DROP FUNCTION forbid_truncate_of_history();
        """
    )
