"""The figures of the demo county against a plain Python oracle; townships add up to the county."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from webapp.grid.models import AreaLevel
from webapp.grid.queries import get_area
from webapp.stats import figures as F
from webapp.stats.queries import (
    Filters,
    Grouping,
    Period,
    StatsQuery,
    area_total,
    figure_rows,
    local_midnight,
    year_before,
)

COUNTY = "410726"
NO_FILTERS = Filters()


def demo_query(
    session, level=AreaLevel.TOWNSHIP, by="area", period=None, filters=NO_FILTERS, area=COUNTY
):
    return StatsQuery(
        area=get_area(session, area),
        period=period or PERIOD,
        grouping=Grouping(by, level if by == "area" else None),
        filters=filters,
    )


def _as_of(session):
    return session.execute(text("SELECT now()")).scalar_one()


PERIOD = Period(date(2025, 1, 1), date(2025, 12, 31))


def oracle(session, period: Period, backlog_years: int = 3) -> dict[str, dict]:
    """Every count and rate per township and for the county, computed in Python from plain rows."""
    cases = (
        session.execute(
            text(
                """
            SELECT id, township_code, village_code, channel, people_count, batch_count, status,
                   reported_at, concluded_at, resolved_at, due_at, satisfaction, resolved_level,
                   is_first, repeat_of_id, skip_level, beijing_abnormal_at, province_collective_at,
                   extreme_incident_at
            FROM cases WHERE county_code = :c
            """
            ),
            {"c": COUNTY},
        )
        .mappings()
        .all()
    )
    areas = (
        session.execute(
            text("SELECT code, level, population, township_code FROM areas WHERE county_code = :c"),
            {"c": COUNTY},
        )
        .mappings()
        .all()
    )
    p_from, p_to = local_midnight(period.start), local_midnight(period.end + timedelta(days=1))
    ly_from = local_midnight(year_before(period.start))
    ly_to = local_midnight(year_before(period.end + timedelta(days=1)))
    T = period.as_of
    backlog_before = T.replace(year=T.year - backlog_years)
    repeated = {c["repeat_of_id"] for c in cases if c["repeat_of_id"] and c["reported_at"] < T}

    def lt(x, y):
        return x is not None and x < y

    out: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    village_cases: dict[str, int] = defaultdict(int)
    village_events: dict[str, int] = defaultdict(int)
    for c in cases:
        if not c["reported_at"] < T:
            continue
        in_p = p_from <= c["reported_at"] < p_to
        resolved = c["status"] in ("resolved", "closed") and lt(c["resolved_at"], T)
        is_open = c["status"] != "not_accepted" and not resolved
        due = (
            c["status"] != "not_accepted"
            and c["due_at"] is not None
            and (lt(c["concluded_at"], T) or c["due_at"] < T)
        )
        on_time = due and lt(c["concluded_at"], T) and c["concluded_at"] <= c["due_at"]
        followed = c["satisfaction"] is not None and lt(c["concluded_at"], T)
        events = {
            k: int(c[col] is not None and p_from <= c[col] < p_to and c[col] < T)
            for k, col in [
                ("beijing_abnormal", "beijing_abnormal_at"),
                ("province_collective", "province_collective_at"),
                ("extreme_incidents", "extreme_incident_at"),
            ]
        }
        for key in (c["township_code"], COUNTY):
            o = out[key]
            o["cases_last_year"] += ly_from <= c["reported_at"] < ly_to
            o["open"] += is_open
            o["overdue"] += (
                is_open
                and c["due_at"] is not None
                and c["due_at"] < T
                and not lt(c["concluded_at"], T)
            )
            o["backlog"] += is_open and c["reported_at"] < backlog_before
            for k, v in events.items():
                o[k] += v
            if not in_p:
                continue
            o["cases"] += 1
            o["people"] += c["people_count"]
            if c["channel"] == "visit":
                o["visit_batches"] += c["batch_count"]
                o["visit_persons"] += c["batch_count"] * c["people_count"]
            o["resolved"] += resolved
            o["followups"] += followed
            o["satisfied"] += followed and c["satisfaction"] in ("satisfied", "basically")
            o["due"] += due
            o["on_time"] += on_time
            o["first"] += c["is_first"]
            o["first_resolved_once"] += c["is_first"] and resolved and c["id"] not in repeated
            o["repeats"] += not c["is_first"]
            o["collective"] += c["people_count"] >= 5
            o["skip_level"] += c["skip_level"]
            if resolved and c["resolved_level"]:
                o["resolved_leveled"] += 1
                o["resolved_" + c["resolved_level"]] += 1
        village_cases[c["village_code"]] += in_p
        village_events[c["village_code"]] += sum(events.values())
    population = {a["code"]: a["population"] for a in areas}
    for a in areas:
        if a["level"] != "village":
            continue
        for key in (a["township_code"], COUNTY):
            out[key]["villages"] += 1
            out[key]["no_petition_villages"] += village_cases[a["code"]] == 0
            out[key]["sanwu_villages"] += village_events[a["code"]] == 0

    def rate(n, d, factor=1.0):
        return n * factor / d if d else None

    for code, o in out.items():
        o["per_1000"] = rate(o["cases"], population[code], 1000.0)
        o["yoy_change"] = rate(o["cases"] - o["cases_last_year"], o["cases_last_year"])
        o["resolution_rate"] = rate(o["resolved"], o["cases"])
        o["satisfaction_rate"] = rate(o["satisfied"], o["followups"])
        o["on_time_rate"] = rate(o["on_time"], o["due"])
        o["first_resolution_rate"] = rate(o["first_resolved_once"], o["first"])
        o["repeat_rate"] = rate(o["repeats"], o["cases"])
        v, t, c = o["resolved_village"], o["resolved_township"], o["resolved_county"]
        o["stay_village"] = rate(v, o["resolved_leveled"])
        o["stay_township"] = rate(v + t, o["resolved_leveled"])
        o["stay_county"] = rate(v + t + c, o["resolved_leveled"])
        o["no_petition_share"] = rate(o["no_petition_villages"], o["villages"])
        o["sanwu"] = o["beijing_abnormal"] + o["province_collective"] + o["extreme_incidents"] == 0
    return out


@pytest.mark.parametrize(
    "period",
    [
        Period(date(2025, 1, 1), date(2025, 12, 31)),
        Period(date(2024, 3, 1), date(2026, 11, 30)),
        Period(date(2026, 10, 1), date(2026, 10, 31)),
    ],
    ids=["2025", "long", "one-month"],
)
def test_every_figure_matches_a_python_oracle(session, period):
    period = Period(period.start, period.end, _as_of(session))
    q = demo_query(session, period=period)
    expected = oracle(session, period)
    rows = {r["code"]: r for r in figure_rows(session, q)}
    rows[COUNTY] = area_total(session, q)
    assert len(rows) == 13
    checked = 0
    for code, row in rows.items():
        for f in F.FIGURES:
            want = expected[code].get(f.key, 0)
            assert row[f.key] == pytest.approx(want), (code, f.key)
            checked += 1
    assert checked == 13 * len(F.FIGURES)
    # The demo county has something to count for the figures that matter most.
    county = rows[COUNTY]
    assert county["cases"] > 50 and county["resolved"] > 0 and county["open"] > 0


@pytest.mark.parametrize("level", [AreaLevel.TOWNSHIP, AreaLevel.VILLAGE, AreaLevel.GRID])
@pytest.mark.parametrize("filters", ["none", "category", "channel"])
def test_rows_add_up_to_the_county_for_every_count(session, level, filters):
    cat = session.execute(
        text("SELECT id FROM categories WHERE code = 'land_acquisition'")
    ).scalar_one()
    f = {
        "none": Filters(),
        "category": Filters(category_ids=(cat,)),
        "channel": Filters(channels=("visit", "hotline")),
    }[filters]
    q = demo_query(
        session, level=level, filters=f, period=Period(date(2024, 1, 1), date(2026, 12, 31))
    )
    rows = figure_rows(session, q)
    total = area_total(session, q)
    assert (
        len(rows) == {AreaLevel.TOWNSHIP: 12, AreaLevel.VILLAGE: 342, AreaLevel.GRID: 1026}[level]
    )
    for fig in F.ADDITIVE:
        if level is AreaLevel.GRID and fig.kind == "village_count":
            assert all(r[fig.key] is None for r in rows)
            continue
        assert sum(r[fig.key] for r in rows) == total[fig.key], fig.key
    assert total["cases"] > 0


@pytest.mark.parametrize("by", ["category", "channel", "month"])
def test_categories_channels_and_months_add_up_to_the_county(session, by):
    q = demo_query(session, by=by, period=Period(date(2024, 1, 1), date(2026, 12, 31)))
    rows = figure_rows(session, q)
    total = area_total(session, q)
    for fig in F.COUNTS:
        if fig.key in rows[0]:
            assert sum(r[fig.key] for r in rows) == total[fig.key], fig.key


def test_a_township_adds_up_from_its_villages(session):
    town = session.execute(
        text("SELECT code FROM areas WHERE level = 'township' ORDER BY code LIMIT 1")
    ).scalar_one()
    q = demo_query(session, level=AreaLevel.VILLAGE, area=town)
    rows = figure_rows(session, q)
    total = area_total(session, q)
    assert rows and all(r["code"].startswith(town) for r in rows)
    for fig in F.ADDITIVE:
        assert sum(r[fig.key] for r in rows) == total[fig.key], fig.key
