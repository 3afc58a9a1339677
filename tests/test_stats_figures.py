"""Every figure on the hand-made county, against answers worked out by hand.

The cases are listed in tests/stats_fixtures.py; the period is the year 2025, read at
2026-01-01 00:00 Beijing time. Which cases count where, in short:

* in the period: A1-1, A1-2, A1-3 (g1), A1-4 (g2) in township A; B1-1, B1-2, B1-3,
  B1-5, B1-7 (23:30 on 31 December) in township B. B1-8 (00:10 on 1 January) and
  the 2021 and 2024 cases are not.
* resolved by the as-of instant: A1-1, A1-2, B1-1 (B1-5 was resolved on 5 January 2026).
* A1-2 was repeated by A1-3, so it is not "resolved the first time".
* open at the as-of instant: A1-3, A1-4, A1-5 (A); B1-3, B1-5, B1-7 (B).
  Overdue: A1-3, A1-5. Backlog (over 3 years): A1-5.
* events in 2025: a Beijing petition from A1-5 (village A1), a province petition from
  B1-1 (village B1); B1-6's extreme incident was in 2024.
* last year: A2-1 (A), B1-4, B1-6 (B).
"""

from __future__ import annotations

import pytest

from tests.stats_fixtures import (
    A1,
    A2,
    B1,
    COUNTY,
    G1,
    G2,
    G3,
    G4,
    PERIOD,
    TOWN_A,
    TOWN_B,
    stats_county,  # noqa: F401  (a fixture)
)
from webapp.grid.models import AreaLevel
from webapp.grid.queries import get_area
from webapp.stats import figures as F
from webapp.stats.queries import Filters, Grouping, StatsQuery, area_total, figure_rows

NO_FILTERS = Filters()

# figure: (township A, township B, county)
EXPECTED = {
    "cases": (4, 5, 9),
    "people": (6 + 1 + 1 + 2, 8 + 1 + 2 + 1 + 1, 23),
    "visit_batches": (3, 4, 7),
    "visit_persons": (13, 25, 38),
    "per_1000": (4 / 6000 * 1000, 5 / 4000 * 1000, 9 / 10000 * 1000),
    "cases_last_year": (1, 2, 3),
    "yoy_change": (3.0, 1.5, 2.0),
    "resolved": (2, 1, 3),
    "resolution_rate": (0.5, 0.2, 3 / 9),
    "followups": (2, 2, 4),
    "satisfied": (1, 2, 3),
    "satisfaction_rate": (0.5, 1.0, 0.75),
    "due": (3, 3, 6),
    "on_time": (1, 3, 4),
    "on_time_rate": (1 / 3, 1.0, 4 / 6),
    "first": (3, 5, 8),
    "first_resolved_once": (1, 1, 2),
    "first_resolution_rate": (1 / 3, 1 / 5, 2 / 8),
    "repeats": (1, 0, 1),
    "repeat_rate": (0.25, 0.0, 1 / 9),
    "collective": (1, 1, 2),
    "skip_level": (1, 1, 2),
    "open": (3, 3, 6),
    "overdue": (2, 0, 2),
    "backlog": (1, 0, 1),
    "resolved_leveled": (2, 1, 3),
    "resolved_village": (1, 0, 1),
    "resolved_township": (1, 0, 1),
    "resolved_county": (0, 1, 1),
    "resolved_above": (0, 0, 0),
    "stay_village": (0.5, 0.0, 1 / 3),
    "stay_township": (1.0, 0.0, 2 / 3),
    "stay_county": (1.0, 1.0, 1.0),
    "beijing_abnormal": (1, 0, 1),
    "province_collective": (0, 1, 1),
    "extreme_incidents": (0, 0, 0),
    "sanwu": (False, False, False),
    "villages": (2, 1, 3),
    "no_petition_villages": (1, 0, 1),
    "no_petition_share": (0.5, 0.0, 1 / 3),
    "sanwu_villages": (1, 0, 1),
}


def query(
    session,
    area=COUNTY,
    by="area",
    level=AreaLevel.TOWNSHIP,
    filters=NO_FILTERS,
    scope=("true", {}),
):
    return StatsQuery(
        area=get_area(session, area),
        period=PERIOD,
        grouping=Grouping(by, level if by == "area" else None),
        filters=filters,
        scope=scope,
    )


def test_every_figure_has_a_hand_worked_answer():
    assert set(EXPECTED) == {f.key for f in F.FIGURES}


@pytest.mark.usefixtures("stats_county")
def test_townships_and_county_match_the_hand_worked_answers(session):
    q = query(session)
    rows = {r["code"]: r for r in figure_rows(session, q)}
    assert list(rows) == [TOWN_A, TOWN_B]
    total = area_total(session, q)
    got = {key: (rows[TOWN_A][key], rows[TOWN_B][key], total[key]) for key in EXPECTED}
    for key, expected in EXPECTED.items():
        assert got[key] == pytest.approx(expected), key


@pytest.mark.usefixtures("stats_county")
def test_villages_and_grids(session):
    villages = {r["code"]: r for r in figure_rows(session, query(session, level=AreaLevel.VILLAGE))}
    assert [villages[c]["cases"] for c in (A1, A2, B1)] == [4, 0, 5]
    assert [villages[c]["no_petition_villages"] for c in (A1, A2, B1)] == [0, 1, 0]
    assert [villages[c]["sanwu"] for c in (A1, A2, B1)] == [False, True, False]
    assert [villages[c]["sanwu_villages"] for c in (A1, A2, B1)] == [0, 1, 0]
    assert villages[A2]["cases_last_year"] == 1 and villages[A2]["yoy_change"] == -1.0
    assert villages[A1]["per_1000"] == pytest.approx(1.0)
    grids = {r["code"]: r for r in figure_rows(session, query(session, level=AreaLevel.GRID))}
    assert [grids[c]["cases"] for c in (G1, G2, G3, G4)] == [3, 1, 0, 5]
    assert [grids[c]["open"] for c in (G1, G2, G3, G4)] == [1, 2, 0, 3]
    # Grids are not rated for 三无 and have no villages.
    assert grids[G1]["sanwu"] is None and grids[G1]["no_petition_villages"] is None


@pytest.mark.usefixtures("stats_county")
def test_by_category_channel_and_month(session):
    cats = {r["code"]: r for r in figure_rows(session, query(session, by="category"))}
    assert cats["land_acquisition"]["cases"] == 3 and cats["neighbour_family"]["cases"] == 6
    assert (
        cats["land_acquisition"]["cases_last_year"] == 1
        and cats["land_acquisition"]["yoy_change"] == 2.0
    )
    assert (
        cats["neighbour_family"]["cases_last_year"] == 2
        and cats["neighbour_family"]["yoy_change"] == 2.0
    )
    assert cats["education"]["cases"] == 0 and cats["education"]["yoy_change"] is None
    assert "sanwu" not in cats["education"] and "per_1000" not in cats["education"]
    channels = {r["code"]: r["cases"] for r in figure_rows(session, query(session, by="channel"))}
    assert channels == {
        "visit": 4,
        "letter": 0,
        "online": 1,
        "sms": 2,
        "hotline": 1,
        "mailbox": 0,
        "leader": 0,
        "grid_sweep": 1,
        "video": 0,
    }
    months = {r["code"]: r["cases"] for r in figure_rows(session, query(session, by="month"))}
    assert list(months) == [f"2025-{m:02d}" for m in range(1, 13)]
    assert months == {
        "2025-01": 0,
        "2025-02": 1,
        "2025-03": 1,
        "2025-04": 1,
        "2025-05": 0,
        "2025-06": 1,
        "2025-07": 1,
        "2025-08": 1,
        "2025-09": 0,
        "2025-10": 0,
        "2025-11": 1,
        "2025-12": 2,
    }
    resolved = {r["code"]: r["resolved"] for r in figure_rows(session, query(session, by="month"))}
    assert sum(resolved.values()) == 3 and resolved["2025-06"] == 1


@pytest.mark.usefixtures("stats_county")
def test_filters_by_category_and_channel(session):
    land = Filters(category_ids=(_category_id(session, "land_acquisition"),))
    rows = {r["code"]: r for r in figure_rows(session, query(session, filters=land))}
    total = area_total(session, query(session, filters=land))
    assert (rows[TOWN_A]["cases"], rows[TOWN_B]["cases"], total["cases"]) == (1, 2, 3)
    assert total["resolved"] == 2 and total["backlog"] == 1  # A1-5 is a land case
    assert total["no_petition_villages"] == 1  # A2 still has none
    visits = area_total(session, query(session, filters=Filters(channels=("visit", "sms"))))
    assert visits["cases"] == 6 and visits["visit_batches"] == 7


@pytest.mark.usefixtures("stats_county")
def test_backlog_age_is_configurable(session):
    q = query(session)
    q.backlog_years = 5
    assert area_total(session, q)["backlog"] == 0  # A1-5 is 4½ years old
    q.backlog_years = 1
    # Open and raised before 2025-01-01: still only A1-5 (the other open cases are from 2025).
    assert area_total(session, q)["backlog"] == 1


@pytest.mark.usefixtures("stats_county")
def test_scope_restricts_the_cases_counted(session, make_user):
    from webapp.auth.permissions import case_scope_sql

    leader = make_user("township_leader", area=TOWN_B)
    own = area_total(
        session, query(session, area=TOWN_B, level=AreaLevel.VILLAGE, scope=case_scope_sql(leader))
    )
    assert own["cases"] == 5
    # A leader in charge sees only the cases they own: none here.
    owner = make_user("leader_in_charge", area=COUNTY)
    none = area_total(session, query(session, scope=case_scope_sql(owner)))
    assert none["cases"] == 0 and none["no_petition_villages"] == 3


def _category_id(session, code):
    from sqlalchemy import text

    return session.execute(
        text("SELECT id FROM categories WHERE code = :c"), {"c": code}
    ).scalar_one()
