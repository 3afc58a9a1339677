"""Shared fixtures of the exchange tests: API tokens, and cases placed in known areas."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from webapp.auth.accounts import issue_token

__all__ = ["token_for", "auth", "demo_point"]


@pytest.fixture
def token_for(session, make_user):
    """token_for(role, area=None, user=None, **fields) -> (user, bearer token)."""

    def make(role: str = "county_staff", area: str | None = None, user=None, **kw):
        user = user or make_user(role, area, **kw)
        return user, issue_token(session, user, "test")

    return make


def auth(token: str, **headers) -> dict:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.fixture
def demo_point(session, demo_areas):
    """A point inside the test grid worker's grid (its label point), as (lon, lat)."""
    return tuple(
        session.execute(
            text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"),
            {"c": demo_areas["grid_worker"]},
        ).one()
    )
