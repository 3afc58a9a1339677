"""Builders for case tests: a case in a given area and state, a case in another county."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from webapp.cases.models import Case
from webapp.cases.petitioners import id_check_char
from webapp.cases.queries import NewCase, add_event, insert_case
from webapp.cases.vocab import Channel

__all__ = ["PERSON", "make_case", "other_county_case", "point_in", "other_township_grid"]

PERSON = {
    "petitioner_name": "欧阳娜娜",
    "petitioner_phone": "13812345678",
    "petitioner_id_number": "41072619900101123" + id_check_char("41072619900101123"),
}


def point_in(session, code: str, dx_m: float = 0.0, dy_m: float = 0.0) -> tuple[float, float]:
    """The label point of area ``code``, moved ``dx_m`` east and ``dy_m`` north."""
    lon, lat = session.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Project(label_point::geography, :d, radians(:az))::geometry AS p "
            "FROM areas WHERE code = :c) x"
        ),
        {"c": code, "d": (dx_m**2 + dy_m**2) ** 0.5, "az": _azimuth(dx_m, dy_m)},
    ).one()
    return lon, lat


def _azimuth(dx: float, dy: float) -> float:
    import math

    return math.degrees(math.atan2(dx, dy)) % 360 if (dx or dy) else 0.0


def other_township_grid(session, township: str) -> str:
    return session.execute(
        text(
            "SELECT code FROM areas WHERE level = 'grid' AND township_code <> :t ORDER BY code LIMIT 1"
        ),
        {"t": township},
    ).scalar_one()


@pytest.fixture
def make_case(session):
    """make_case(grid_code, status="registered", **columns) -> Case, with a register event."""

    def make(
        grid_code: str, status: str = "registered", at=None, category_id: int = 1, **columns
    ) -> Case:
        lon, lat = columns.pop("lonlat", None) or point_in(session, grid_code)
        person = {k: columns.pop(k, v) for k, v in PERSON.items()}
        stored = insert_case(
            session,
            NewCase(
                title=columns.pop("title", "测试案件：宅基地界址纠纷"),
                description=columns.pop("description", "测试用，虚构"),
                category_id=category_id,
                channel=Channel(columns.pop("channel", "visit")),
                lon=lon,
                lat=lat,
                **person,
            ),
        )
        case = session.get(Case, stored.id)
        session.refresh(case)
        now = session.execute(text("SELECT now()")).scalar_one()
        case.status = status
        case.due_at = columns.pop("due_at", now + timedelta(days=10))
        for key, value in columns.items():
            setattr(case, key, value)
        add_event(session, case, "register", None, None, "registered", "登记")
        session.flush()
        return case

    return make


@pytest.fixture
def other_county_case(session, tmp_path):
    """A case in the hand-made test county 990100 (outside the demo county)."""
    from tests.builders import VILLAGE, import_test_county, u

    import_test_county(session, tmp_path)
    lon, lat = u(3, 1.5)
    stored = insert_case(
        session,
        NewCase(title="外县案件", category_id=1, channel=Channel.VISIT, lon=lon, lat=lat, **PERSON),
    )
    case = session.get(Case, stored.id)
    assert case.village_code == VILLAGE
    return case
