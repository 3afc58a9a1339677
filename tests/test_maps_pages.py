"""Map pages against the demo county: every map and filter, scope, roles, CSP, and bounded size."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from tests.maps_fixtures import hosts_in
from webapp.auth.permissions import case_scope_sql
from webapp.grid.models import AreaLevel
from webapp.hotspots.queries import CaseFilter, hot_spots
from webapp.maps import queries
from webapp.maps.params import LOCAL_TZ
from webapp.stats.queries import Filters, Period

KINDS = ["heat", "choropleth", "hotspots", "cases"]
FILTERS = [
    "",
    "&from=2020-01-01&to=2030-12-31",
    "&category=1",
    "&channel=visit&channel=online",
    "&status=open",
    "&status=done&status=concluded",
    "&weight=cases",
    "&figure=per_1000",
    "&figure=resolution_rate",
    "&figure=overdue",
    "&figure=satisfaction_rate",
    "&figure=repeats",
    "&level=village",
    "&level=grid",
    "&hs_level=village",
    "&nb=distance&band=3000",
    "&fdr=1&rate=per1000",
]


def frame_of(client, query: str):
    return client.get("/maps/frame?" + query)


@pytest.mark.parametrize("kind", KINDS)
def test_each_map_page_frames_its_document(client, login, kind):
    login("county_staff")
    page = client.get(f"/maps/?map={kind}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    src = (
        re.search(r'<iframe id="map-frame"[^>]*src="([^"]+)"', body).group(1).replace("&amp;", "&")
    )
    assert src.startswith("/maps/frame?") and f"map={kind}" in src and "area=410726" in src
    assert 'aria-current="page">' in body and "地图" in body
    # The area can be chosen without a mouse too: the current one and its 12 townships.
    area_select = re.search(r'<select name="area">.*?</select>', body, re.S).group(0)
    assert area_select.count("<option") == 13 and "（当前）" in area_select
    doc = client.get(src)
    assert doc.status_code == 200 and doc.mimetype == "text/html"
    html = doc.get_data(as_text=True)
    assert hosts_in(html) == set()
    csp = doc.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", csp).group(1)
    nonce = re.search(r"'nonce-([^']+)'", script_src).group(1)
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert all(f'nonce="{nonce}"' in tag for tag in re.findall(r"<script(?![^>]*src=)[^>]*>", html))
    assert "frame-ancestors 'self'" in csp
    # The page itself keeps the strict policy: no inline scripts anywhere but in the map.
    assert "nonce" not in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("query", FILTERS, ids=lambda q: q.strip("&") or "defaults")
def test_every_map_takes_every_filter(client, login, kind, query):
    login("county_staff")
    assert client.get(f"/maps/?map={kind}{query}").status_code == 200
    assert frame_of(client, f"map={kind}{query}").status_code == 200


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("level", ["township", "village", "grid"])
def test_every_map_at_every_level(client, login, demo_areas, kind, level):
    login("county_staff")
    code = {
        "township": demo_areas["township_leader"],
        "village": demo_areas["village_informant"],
        "grid": demo_areas["grid_worker"],
    }[level]
    resp = frame_of(client, f"map={kind}&area={code}")
    assert resp.status_code == 200
    assert client.get(f"/maps/?map={kind}&area={code}").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "map=satellite",
        "map=heat&from=2024-13-01",
        "map=heat&from=2025-02-01&to=2025-01-01",
        "map=heat&area=41x",
        "map=heat&category=abc",
        "map=heat&channel=pigeon",
        "map=heat&status=lost",
        "map=hotspots&band=-5",
        "map=choropleth&figure=gdp",
        "map=choropleth&level=planet",
    ],
)
def test_bad_input_is_a_400_in_chinese(client, login, query):
    login("county_staff")
    for url in (f"/maps/?{query}", f"/maps/frame?{query}"):
        resp = client.get(url)
        assert resp.status_code == 400
        assert "bad_map_parameter" in resp.get_data(as_text=True)


def test_drill_down_links_and_the_way_back(client, login, demo_areas):
    login("county_staff")
    html = frame_of(client, "map=choropleth&figure=resolution_rate").get_data(as_text=True)
    # Each township opens its own map, with the same figure.
    hrefs = re.search(r"var hrefs = (\{.*?\})", html).group(1).replace("\\u0026", "&")
    assert '"/maps/?map=choropleth&area=410726100&figure=resolution_rate"' in hrefs
    assert hrefs.count("/maps/?") == 12
    page = client.get(
        f"/maps/?map=choropleth&figure=resolution_rate&area={demo_areas['village_informant']}"
    )
    body = page.get_data(as_text=True)
    back = re.search(r'<a class="map-back" href="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert f"area={demo_areas['township_leader']}&" in back and "figure=resolution_rate" in back
    assert body.count('href="/maps/?map=choropleth') >= 3  # breadcrumb: county and township, tabs


def test_maps_are_for_the_roles_that_read_them(client, login):
    login("grid_worker")
    assert client.get("/maps/").status_code == 403
    assert client.get("/maps/frame").status_code == 403
    login("county_staff")
    assert 'href="/maps/"' in client.get("/").get_data(as_text=True)


# -- scope ---------------------------------------------------------------------------------------


def test_a_township_leader_sees_only_their_township(client, login, session, demo_areas):
    own = demo_areas["township_leader"]
    other = session.execute(
        text(
            "SELECT code FROM areas WHERE level = 'township' AND code <> :c ORDER BY code LIMIT 1"
        ),
        {"c": own},
    ).scalar_one()
    other_grid = session.execute(
        text("SELECT code FROM areas WHERE level = 'grid' AND township_code = :t LIMIT 1"),
        {"t": other},
    ).scalar_one()
    login("township_leader")
    for kind in KINDS:
        for code in (other, other_grid, "410726"):
            assert client.get(f"/maps/?map={kind}&area={code}").status_code == 404
            assert frame_of(client, f"map={kind}&area={code}").status_code == 404
        resp = frame_of(client, f"map={kind}&level=grid")
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        # Nothing of another township on any layer: no code, no drill link.
        assert other not in html and "410726101" not in html.replace(own, "")
    page = client.get("/maps/").get_data(as_text=True)
    assert "延津县" not in re.search(r'<nav class="breadcrumb".*?</nav>', page, re.S).group(0)


ALL_TIME = Period(date(2000, 1, 1), date(2100, 1, 1))


def test_figures_count_only_the_cases_in_scope(session, make_user, demo_areas):
    leader = make_user("township_leader")
    in_charge = make_user("leader_in_charge")
    cf = CaseFilter()
    county = queries.area_info(session, "410726")

    def figures(level, within, user):
        return queries.area_figures(
            session, level, within, ALL_TIME, Filters(), case_scope_sql(user)
        )

    mine = figures(AreaLevel.TOWNSHIP, "410726", in_charge)
    assert sum(f.cases for f in mine.values()) == 0  # no case is theirs yet
    session.execute(
        text(
            "UPDATE cases SET leader_id = :u WHERE id IN (SELECT id FROM cases ORDER BY id LIMIT 7)"
        ),
        {"u": in_charge.id},
    )
    mine = figures(AreaLevel.TOWNSHIP, "410726", in_charge)
    assert sum(f.cases for f in mine.values()) == 7
    heat = queries.heat_lattice(session, county, 500, cf, case_scope_sql(in_charge))
    assert heat.cases == 7
    own = figures(AreaLevel.VILLAGE, demo_areas["township_leader"], leader)
    expected = session.execute(
        text("SELECT count(*) FROM cases WHERE township_code = :t"),
        {"t": demo_areas["township_leader"]},
    ).scalar_one()
    assert sum(f.cases for f in own.values()) == expected > 0


def test_figures_agree_with_plain_counts(session, make_user):
    staff = make_user("county_staff")
    since = datetime.now(UTC) - timedelta(days=400)
    period = Period(since.astimezone(LOCAL_TZ).date(), date(2100, 1, 1))
    figs = queries.area_figures(
        session, AreaLevel.TOWNSHIP, "410726", period, Filters(), case_scope_sql(staff)
    )
    start = datetime.combine(period.start, datetime.min.time(), LOCAL_TZ)
    row = session.execute(
        text("""
        SELECT count(*) FILTER (WHERE reported_at >= :s),
               count(*) FILTER (WHERE reported_at >= :s AND status IN ('resolved','closed')),
               -- overdue is a stock: every open case past its deadline, whenever raised
               count(*) FILTER (WHERE concluded_at IS NULL AND due_at < now()
                                AND status NOT IN ('resolved','closed','not_accepted')),
               count(*) FILTER (WHERE reported_at >= :s AND NOT is_first),
               coalesce(sum(people_count) FILTER (WHERE reported_at >= :s), 0)
        FROM cases"""),
        {"s": start},
    ).one()
    keys = ("cases", "resolved", "overdue", "repeats", "people")
    total = [sum(f.values[k] for f in figs.values()) for k in keys]
    assert total == list(row) and row[0] > 0 and 0 < row[1] < row[0]
    assert len(figs) == 12 and all(f.population for f in figs.values())


def test_hot_spots_are_gi_star_over_the_analysis_region(session, make_user, demo_areas):
    staff = make_user("county_staff")
    village = queries.area_info(session, demo_areas["village_informant"])
    analysis = queries.area_hot_spots(
        session, village, AreaLevel.GRID, "410726", CaseFilter(), case_scope_sql(staff)
    )
    # A village's few grids make no analysis: it runs over the township (or the county).
    assert analysis.region.code in (demo_areas["township_leader"], "410726")
    assert analysis.units >= queries.MIN_HOTSPOT_AREAS
    direct = hot_spots(
        session, AreaLevel.GRID, analysis.region.code, CaseFilter(), case_scope_sql(staff)
    )
    assert np.allclose(direct.z, analysis.result.z)
    leader = make_user("township_leader")
    capped = queries.area_hot_spots(
        session, village, AreaLevel.VILLAGE, leader.area_code, CaseFilter(), case_scope_sql(leader)
    )
    assert capped.region.code == leader.area_code  # never wider than the user's own area


# -- single cases and planners --------------------------------------------------------------------------


def case_coordinates(session) -> set[str]:
    rows = session.execute(text("SELECT ST_X(location), ST_Y(location) FROM cases")).all()
    out = set()
    for x, y in rows:
        for d in (5, 6):
            out.add(f"{round(y, d)}, {round(x, d)}")
            out.add(f"{round(x, d)}, {round(y, d)}")
    return out


def test_planners_get_no_single_case_from_any_map(client, login, session):
    login("planner")
    assert client.get("/maps/?map=cases").status_code == 403
    assert frame_of(client, "map=cases").status_code == 403
    assert "案件分布" not in client.get("/maps/").get_data(as_text=True)
    coords = case_coordinates(session)
    for kind in ("heat", "choropleth", "hotspots"):
        for area in ("410726", "410726100"):
            html = frame_of(client, f"map={kind}&area={area}&from=2020-01-01").get_data(
                as_text=True
            )
            found = [c for c in coords if c in html]
            assert found == [], (kind, area, found[:3])
            assert "/cases/" not in html
    spec = re.search(
        r"var spec = (\{.*?\});", frame_of(client, "map=heat&area=410726100").get_data(as_text=True)
    )
    assert spec is not None
    import json

    s = json.loads(spec.group(1))
    assert s["dy"] * 111_320 >= 249  # cells of at least 250 m for a role that sees aggregates only


def test_case_markers_link_the_case_file_and_hide_personal_data(client, login, session, demo_areas):
    login("county_staff")
    html = frame_of(client, f"map=cases&area={demo_areas['township_leader']}").get_data(
        as_text=True
    )
    assert "/cases/" in html and "L.markerClusterGroup" in html
    names = session.execute(
        text(
            "SELECT petitioner_name, petitioner_phone FROM cases "
            "WHERE township_code = :t AND petitioner_name IS NOT NULL"
            " LIMIT 50"
        ),
        {"t": demo_areas["township_leader"]},
    ).all()
    for name, phone in names:
        assert phone not in html
        assert name.encode("unicode_escape").decode() not in html and name not in html


# -- bounded size -----------------------------------------------------------------------------------------


def add_cases(session, n: int, seed: int = 11, village: str | None = None) -> int:
    """Bulk-load ``n`` synthetic cases in the last year near grid label points (in the test's transaction)."""
    from webapp.cases.bulk import bulk_insert_cases

    rng = np.random.default_rng(seed)
    where = "level = 'grid'" + (" AND village_code = :v" if village else "")
    pts = np.array(
        session.execute(
            text(f"SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE {where}"),
            {"v": village},
        ).all()
    )
    cats = [r[0] for r in session.execute(text("SELECT id FROM categories")).all()]
    now = datetime.now(UTC)
    pick = rng.integers(0, len(pts), n)
    jitter = rng.normal(0, 0.0002, (n, 2))
    statuses = rng.choice(["in_progress", "closed", "resolved", "concluded"], n)
    rows = []
    for k in range(n):
        reported = now - timedelta(days=float(rng.uniform(1, 300)))
        st = str(statuses[k])
        done = st in ("closed", "resolved")
        rows.append(
            (
                k,
                None,
                f"测试案件{k}",
                "",
                int(cats[k % len(cats)]),
                "visit",
                "request",
                int(rng.integers(1, 6)),
                1,
                float(pts[pick[k], 0] + jitter[k, 0]),
                float(pts[pick[k], 1] + jitter[k, 1]),
                False,
                st,
                reported.isoformat(),
                (reported + timedelta(days=1)).isoformat(),
                (reported + timedelta(days=20)).isoformat() if st != "in_progress" else None,
                (reported + timedelta(days=25)).isoformat() if done else None,
                (reported + timedelta(days=61)).isoformat(),
                None,
                "satisfied" if done else None,
                "village" if done else None,
                bool(k % 10),
                None,
                False,
                None,
                None,
                None,
            )
        )
    result = bulk_insert_cases(session, rows)
    session.flush()
    return result.inserted


SIZE_QUERIES = [
    "map=heat&from=2020-01-01",
    "map=heat&area=410726100&from=2020-01-01",
    "map=choropleth&from=2020-01-01&figure=resolution_rate",
    "map=choropleth&from=2020-01-01&level=grid",
    "map=hotspots&from=2020-01-01",
    "map=cases&from=2020-01-01",
]


def test_map_pages_do_not_grow_with_the_cases(client, login, session):
    login("county_staff")
    before = {q: len(frame_of(client, q).data) for q in SIZE_QUERIES}
    assert add_cases(session, 20_000) > 19_000
    after = {q: len(frame_of(client, q).data) for q in SIZE_QUERIES}
    for q in SIZE_QUERIES:
        assert after[q] < 2_000_000, q
        growth = (after[q] - before[q]) / before[q]
        assert growth < 0.03, (q, before[q], after[q])


def test_a_village_full_of_cases_still_gets_a_bounded_cases_map(client, login, session, demo_areas):
    from webapp.maps.views import MARKER_LIMIT

    login("county_staff")
    village = demo_areas["village_informant"]
    add_cases(session, 3_000, seed=12, village=village)
    html = frame_of(client, f"map=cases&area={village}").get_data(as_text=True)
    assert html.count("/cases/") == MARKER_LIMIT
    assert len(html) < 400_000


def test_configured_tiles_are_allowed_in_the_map_documents_csp_only(
    app, client, login, monkeypatch
):
    key = "0123456789abcdef0123456789abcdef"
    monkeypatch.setitem(app.config, "MAP_BASEMAP", "tianditu")
    monkeypatch.setitem(app.config, "MAP_TIANDITU_KEY", key)
    login("county_staff")
    doc = frame_of(client, "map=choropleth")
    html = doc.get_data(as_text=True)
    assert hosts_in(html) == {"t{s}.tianditu.gov.cn"} and f"tk={key}" in html
    img_src = re.search(r"img-src ([^;]+)", doc.headers["Content-Security-Policy"]).group(1).split()
    assert img_src[:3] == ["'self'", "data:", "blob:"]
    assert set(img_src[3:]) == {f"https://t{i}.tianditu.gov.cn" for i in range(8)}
    assert "tianditu" not in client.get("/maps/").headers["Content-Security-Policy"]


def test_a_base_map_that_cannot_work_stops_the_app_at_start():
    from webapp import create_app
    from webapp.maps.basemap import BaseMapConfigError

    with pytest.raises(BaseMapConfigError):
        create_app({"TESTING": True, "SECRET_KEY": "x", "MAP_BASEMAP": "tianditu"})
