"""The audit log and the case event log refuse TRUNCATE too, not only UPDATE and DELETE

Row triggers do not fire on TRUNCATE; a statement trigger closes that gap, so no
statement at all can remove history from either table.

Revision ID: h01
Revises: 0002
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
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
        CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
            FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER case_events_no_truncate ON case_events;
        DROP TRIGGER audit_log_no_truncate ON audit_log;
        """
    )
