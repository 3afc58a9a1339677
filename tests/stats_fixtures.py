"""A hand-made county for the statistics tests, with cases whose figures are worked out by hand.

统计测试县 (990300) lies near 101°E 31°N, far from the demo county and from the
builders' test county. Layout in units of 0.01°::

    x: 0      1      2      3      4
       | g1   | g2   | g3   | g4   |     g1, g2 in village A1; g3 in A2; g4 in B1
       |---- A1 -----| A2   | B1   |     A1, A2 in township A; B1 in township B

Populations: county 10,000; township A 6,000 (A1 4,000, A2 2,000); township B 4,000.

The cases (``CASES``) are chosen so that every figure has a non-trivial answer for
the period 2025-01-01 … 2025-12-31 read at 2026-01-01 00:00 Beijing time; the
answers are written out in tests/test_stats_figures.py.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import box
from sqlalchemy import text

from tests.builders import write_geojson
from webapp.stats.queries import Period, local_midnight

TZ = ZoneInfo("Asia/Shanghai")
ORIGIN = (101.0, 31.0)
UNIT = 0.01

COUNTY = "990300"
TOWN_A = "990300001"
TOWN_B = "990300002"
A1 = "990300001001"
A2 = "990300001002"
B1 = "990300002001"
G1 = A1 + "001"
G2 = A1 + "002"
G3 = A2 + "001"
G4 = B1 + "001"

PERIOD = Period(date(2025, 1, 1), date(2025, 12, 31), local_midnight(date(2026, 1, 1)))


def ubox(x0: float, x1: float):
    return box(ORIGIN[0] + x0 * UNIT, ORIGIN[1], ORIGIN[0] + x1 * UNIT, ORIGIN[1] + 2 * UNIT)


def centre(grid: str) -> tuple[float, float]:
    x = {G1: 0.5, G2: 1.5, G3: 2.5, G4: 3.5}[grid]
    return ORIGIN[0] + x * UNIT, ORIGIN[1] + 1 * UNIT


AREAS = {
    "county": [({"code": COUNTY, "name": "统计测试县", "population": 10000}, ubox(0, 4))],
    "township": [
        ({"code": TOWN_A, "name": "甲镇", "population": 6000}, ubox(0, 3)),
        ({"code": TOWN_B, "name": "乙乡", "population": 4000}, ubox(3, 4)),
    ],
    "village": [
        ({"code": A1, "name": "甲一村", "population": 4000}, ubox(0, 2)),
        ({"code": A2, "name": "甲二村", "population": 2000}, ubox(2, 3)),
        ({"code": B1, "name": "乙一村", "population": 4000}, ubox(3, 4)),
    ],
    "grid": [
        ({"code": G1, "name": "甲一村第一网格", "population": 2000}, ubox(0, 1)),
        ({"code": G2, "name": "甲一村第二网格", "population": 2000}, ubox(1, 2)),
        ({"code": G3, "name": "甲二村网格", "population": 2000}, ubox(2, 3)),
        ({"code": G4, "name": "乙一村网格", "population": 4000}, ubox(3, 4)),
    ],
}


def t(text_value: str | None) -> datetime | None:
    """A local (Beijing) time written as 'YYYY-MM-DD' (noon) or 'YYYY-MM-DD HH:MM'."""
    if text_value is None:
        return None
    if len(text_value) == 10:
        text_value += " 12:00"
    return datetime.strptime(text_value, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)


# title, grid, category, channel, people, batches, status, reported, accepted, concluded,
# resolved, due, satisfaction, resolved level, first?, repeat of (title), skip level?,
# escalations {column: local time}
CASES = [
    (
        "A1-1",
        G1,
        "land_acquisition",
        "visit",
        6,
        2,
        "closed",
        "2025-03-01",
        "2025-03-02",
        "2025-03-20",
        "2025-03-25",
        "2025-05-01",
        "satisfied",
        "village",
        True,
        None,
        False,
        {},
    ),
    (
        "A1-2",
        G1,
        "neighbour_family",
        "visit",
        1,
        1,
        "resolved",
        "2025-04-10",
        "2025-04-11",
        "2025-07-01",
        "2025-07-05",
        "2025-06-10",
        "dissatisfied",
        "township",
        True,
        None,
        False,
        {},
    ),
    (
        "A1-3",
        G1,
        "neighbour_family",
        "hotline",
        1,
        1,
        "in_progress",
        "2025-07-20",
        "2025-07-21",
        None,
        None,
        "2025-09-19",
        None,
        None,
        False,
        "A1-2",
        True,
        {},
    ),
    (
        "A1-4",
        G2,
        "neighbour_family",
        "online",
        2,
        1,
        "in_progress",
        "2025-11-15",
        "2025-11-16",
        None,
        None,
        "2026-01-15",
        None,
        None,
        True,
        None,
        False,
        {},
    ),
    (
        "A1-5",
        G2,
        "land_acquisition",
        "letter",
        1,
        1,
        "in_progress",
        "2021-06-01",
        "2021-06-02",
        None,
        None,
        "2021-08-01",
        None,
        None,
        True,
        None,
        False,
        {"beijing_abnormal_at": "2025-05-05"},
    ),
    (
        "A2-1",
        G3,
        "land_acquisition",
        "visit",
        3,
        1,
        "closed",
        "2024-05-01",
        "2024-05-02",
        "2024-05-20",
        "2024-05-25",
        "2024-07-01",
        "basically",
        "village",
        True,
        None,
        False,
        {},
    ),
    (
        "B1-1",
        G4,
        "land_acquisition",
        "visit",
        8,
        3,
        "closed",
        "2025-06-01",
        "2025-06-01",
        "2025-06-30",
        "2025-07-10",
        "2025-07-31",
        "basically",
        "county",
        True,
        None,
        True,
        {"province_collective_at": "2025-06-15"},
    ),
    (
        "B1-2",
        G4,
        "neighbour_family",
        "sms",
        1,
        1,
        "not_accepted",
        "2025-02-01",
        None,
        None,
        None,
        None,
        None,
        None,
        True,
        None,
        False,
        {},
    ),
    (
        "B1-3",
        G4,
        "neighbour_family",
        "grid_sweep",
        2,
        1,
        "concluded",
        "2025-12-20",
        "2025-12-21",
        "2025-12-28",
        None,
        "2026-02-19",
        None,
        None,
        True,
        None,
        False,
        {},
    ),
    (
        "B1-4",
        G4,
        "neighbour_family",
        "visit",
        5,
        1,
        "closed",
        "2024-12-15",
        "2024-12-16",
        "2025-01-10",
        "2025-01-20",
        "2025-02-13",
        "satisfied",
        "village",
        True,
        None,
        False,
        {},
    ),
    (
        "B1-5",
        G4,
        "land_acquisition",
        "visit",
        1,
        1,
        "closed",
        "2025-08-01",
        "2025-08-02",
        "2025-08-20",
        "2026-01-05",
        "2025-10-01",
        "satisfied",
        "village",
        True,
        None,
        False,
        {},
    ),
    (
        "B1-6",
        G4,
        "neighbour_family",
        "visit",
        2,
        1,
        "closed",
        "2024-06-01",
        "2024-06-02",
        "2024-06-20",
        "2024-06-25",
        "2024-08-01",
        "satisfied",
        "village",
        True,
        None,
        False,
        {"extreme_incident_at": "2024-07-01"},
    ),
    (
        "B1-7",
        G4,
        "neighbour_family",
        "sms",
        1,
        1,
        "registered",
        "2025-12-31 23:30",
        None,
        None,
        None,
        None,
        None,
        None,
        True,
        None,
        False,
        {},
    ),
    (
        "B1-8",
        G4,
        "neighbour_family",
        "sms",
        1,
        1,
        "registered",
        "2026-01-01 00:10",
        None,
        None,
        None,
        None,
        None,
        None,
        True,
        None,
        False,
        {},
    ),
]


def load_stats_county(session, tmp_path) -> dict[str, int]:
    """Import the hand-made county and its cases in the test's transaction; return ids by title."""
    from webapp.cases.bulk import bulk_insert_cases
    from webapp.grid.importer import import_areas

    for level, feats in AREAS.items():
        import_areas(session, write_geojson(tmp_path / f"stats_{level}.geojson", feats), level)
    cat = dict(session.execute(text("SELECT code, id FROM categories")).all())
    order = {c[0]: i for i, c in enumerate(CASES)}
    rows = []
    for i, c in enumerate(CASES):
        (
            title,
            grid,
            category,
            channel,
            people,
            batches,
            status,
            rep,
            acc,
            con,
            res,
            due,
            sat,
            lvl,
            first,
            repeat_of,
            skip,
            _events,
        ) = c
        lon, lat = centre(grid)
        rows.append(
            (
                i,
                None,
                title,
                "",
                cat[category],
                channel,
                "request",
                people,
                batches,
                lon,
                lat,
                False,
                status,
                t(rep),
                t(acc),
                t(con),
                t(res),
                t(due),
                "support" if con else None,
                sat,
                lvl,
                first,
                order[repeat_of] if repeat_of else None,
                skip,
                "张三丰",
                "13812345678",
                "410726199001011234",
            )
        )
    result = bulk_insert_cases(session, rows)
    assert result.inserted == len(CASES) and not result.outside
    ids = dict(
        session.execute(
            text("SELECT title, id FROM cases WHERE county_code = :c"), {"c": COUNTY}
        ).all()
    )
    for c in CASES:
        for column, when in c[-1].items():
            session.execute(
                text(f"UPDATE cases SET {column} = :w WHERE id = :id"),
                {"w": t(when), "id": ids[c[0]]},
            )
    session.flush()
    return ids


@pytest.fixture
def stats_county(session, tmp_path):
    return load_stats_county(session, tmp_path)
