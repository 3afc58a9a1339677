"""The models and the migrations describe the same schema; downgrade works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import webapp.models  # noqa: F401
from webapp.db import Base


def _ignore(obj, name, type_, reflected, compare_to):
    if type_ == "table" and name in {"spatial_ref_sys", "alembic_version"}:
        return False
    return True


def test_models_match_migrations(connection):
    ctx = MigrationContext.configure(
        connection,
        opts={"include_object": _ignore, "compare_type": True, "compare_server_default": False},
    )
    diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], diff


def test_append_only_event_log(session):
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(
                text(
                    "UPDATE case_events SET note = 'x' WHERE id = (SELECT min(id) FROM case_events)"
                )
            )
    with pytest.raises(DBAPIError, match="append-only"):
        with session.begin_nested():
            session.execute(
                text("DELETE FROM case_events WHERE id = (SELECT min(id) FROM case_events)")
            )
