"""A map's figures are the statistics figures: the same numbers as /api/v1/stats, names and glossary."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from webapp.maps.figures import FIGURES
from webapp.maps.params import today_local
from webapp.stats import figures as stats_figures


def drawn_areas(html: str) -> dict[str, dict]:
    """The properties of the areas a map document draws (its GeoJSON with figure tooltips)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\.addData\((?=\{)", html):
        data, _ = decoder.raw_decode(html, match.end())
        features = data.get("features") or []
        if features and "f_cases" in features[0]["properties"]:
            return {f["properties"]["code"]: f["properties"] for f in features}
    raise AssertionError("no areas with figures in the map document")


@pytest.mark.parametrize(
    "role, level, channels",
    [
        ("county_staff", "township", ("visit", "hotline", "online")),
        ("township_leader", "village", ()),
    ],
    ids=["county-townships", "township-villages"],
)
def test_a_choropleths_figures_equal_the_stats_apis(
    client, login, session, demo_areas, role, level, channels
):
    user = login(role)
    category_id, category_code = session.execute(
        text(
            "SELECT k.id, k.code FROM cases c JOIN categories k ON k.id = c.category_id "
            "WHERE c.township_code = :t GROUP BY k.id, k.code ORDER BY count(*) DESC LIMIT 1"
        ),
        {"t": demo_areas["township_leader"]},
    ).one()
    today = today_local()
    start, end = (today - timedelta(days=800)).isoformat(), today.isoformat()
    area = user.area_code
    map_filters = f"&from={start}&to={end}&category={category_id}" + "".join(
        f"&channel={c}" for c in channels
    )
    api = client.get(
        f"/api/v1/stats?area={area}&level={level}&from={start}&to={end}&category={category_code}"
        + (f"&channel={','.join(channels)}" if channels else "")
    ).get_json()
    assert api["rows"] and sum(r["cases"] for r in api["rows"]) > 0
    for key, figure in FIGURES.items():
        doc = client.get(f"/maps/frame?map=choropleth&figure={key}&area={area}{map_filters}")
        assert doc.status_code == 200
        drawn = drawn_areas(doc.get_data(as_text=True))
        assert set(drawn) == {r["code"] for r in api["rows"]}
        for row in api["rows"]:
            assert drawn[row["code"]][f"f_{key}"] == figure.format(row[key]), (key, row["code"])
    # The same words as the dashboard, and the way to the definition.
    page = client.get(f"/maps/?map=choropleth&figure=overdue&area={area}").get_data(as_text=True)
    assert 'href="/stats/glossary#overdue"' in page
    meta = {f["key"]: f for f in api["figures"]}
    for key, figure in FIGURES.items():
        assert figure.label == meta[key]["name"] and figure.unit == meta[key]["unit"]
        assert f">{figure.label}</option>" in page


def test_a_map_reads_only_the_figures_it_shows(session):
    """The maps ask the statistics queries for their figures only (and what those are made of)."""
    from webapp.grid.models import AreaLevel
    from webapp.grid.queries import get_area
    from webapp.maps.figures import AREA_FIGURE_KEYS
    from webapp.stats.queries import Grouping, Period, StatsQuery, build_sql

    q = StatsQuery(
        area=get_area(session, "410726"),
        period=Period(today_local() - timedelta(days=30), today_local()),
        grouping=Grouping("area", AreaLevel.TOWNSHIP),
        only=AREA_FIGURE_KEYS,
    )
    keys = {f.key for f in q.figures()}
    assert keys == set(AREA_FIGURE_KEYS) | {"resolved", "followups", "satisfied"}
    sql, _ = build_sql(q)
    assert " AS backlog" not in sql and " AS first_once" not in sql and "vil AS" not in sql
    assert all(stats_figures.BY_KEY[k].sql in sql for k in keys if stats_figures.BY_KEY[k].is_count)
