"""Routes along roads: a river with one bridge, straight fallbacks, the demo network.

And the app without pgRouting: it starts, and routes are straight lines.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.roads_fixtures import (
    BRIDGE_EAST,
    COUNTY,
    P1,
    P2,
    P3,
    P4,
    START,
    at,
    copy_database,
    load_river,
    metres,
    route_rows,
    tiny_plan,
)
from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import new_plan
from webapp import create_app
from webapp.db import drop_database, get_session
from webapp.demo import loader
from webapp.roads import queries as roads
from webapp.roads.importer import import_roads
from webapp.visits import planning, routing

# Along the roads from START: up the west road to the bridge (P2), across it and down the
# east road to P3, on to its south end and 30 m east to P1. Every piece is straight, so
# the hand-computed walk is the sum of their geodesic lengths: 1200 + 1000 + 600 + 600 + 30.
ROAD_ORDER = [P2, P3, P1]
ROAD_LEGS = [
    metres(START, P2),
    metres(P2, BRIDGE_EAST) + metres(BRIDGE_EAST, P3),
    metres(P3, at(1000, 0)) + metres(at(1000, 0), P1),
]
# In straight lines P1 is nearest (1030 m, across the river), then P3, then P2.
STRAIGHT_ORDER = [P1, P3, P2]


@pytest.fixture
def people(make_user, demo_areas):
    return {"planner": make_user("planner"), "worker": make_user("grid_worker")}


def _order(rows) -> list[tuple[float, float]]:
    return [(r.lon, r.lat) for r in rows]


def _same_places(a, b) -> bool:
    return len(a) == len(b) and all(
        abs(p[0] - q[0]) < 1e-9 and abs(p[1] - q[1]) < 1e-9 for p, q in zip(a, b, strict=True)
    )


def _routed(session, people, points):
    plan = tiny_plan(session, people["planner"], people["worker"], START, points)
    planning.optimise(session, plan)
    return plan, route_rows(session, plan.id)


def _polylines(html: str) -> list[list[list[float]]]:
    return [json.loads(m) for m in re.findall(r"L\.polyline\(\s*(\[\[.*?\]\])", html, re.S)]


def _passes(lines, lonlat, tol_deg: float = 5e-6) -> bool:
    return any(
        abs(lat - lonlat[1]) < tol_deg and abs(lon - lonlat[0]) < tol_deg
        for pts in lines
        for lat, lon in pts
    )


def test_the_route_crosses_the_river_at_the_bridge(session, tmp_path, people, client, login):
    assert load_river(session, tmp_path).ok
    assert sum(ROAD_LEGS) == pytest.approx(3430.0, abs=0.5)
    plan, rows = _routed(session, people, [P1, P2, P3])
    assert _same_places(_order(rows), ROAD_ORDER)
    assert [r.leg_kind for r in rows] == ["road"] * 3 and all(r.has_path for r in rows)
    assert [r.leg_m for r in rows] == pytest.approx(ROAD_LEGS, abs=0.01)
    # the straight-line order is another one, and much longer on foot
    straight = routing.plan_route(START, [P1, P2, P3])
    assert [[P1, P2, P3][i] for i in straight.order] == STRAIGHT_ORDER
    # the plan says how its routes were measured, and the day's length in km
    login(user=people["planner"])
    page = client.get(f"/visits/plans/{plan.id}").get_data(as_text=True)
    assert 'data-status="roads"' in page and "路线沿道路计算" in page
    assert "3.4 公里（沿道路）" in page
    sheet = client.get(f"/visits/plans/{plan.id}/sheet").get_data(as_text=True)
    assert "约 3.4 公里（沿道路，3 个点）" in sheet
    # the map draws the walk along the roads: over the bridge's east end, where no stop is
    html = client.get(f"/visits/plans/{plan.id}/map").get_data(as_text=True)
    lines = _polylines(html)
    assert lines and _passes(lines, BRIDGE_EAST)
    assert "沿道路" in html


def test_without_a_road_layer_routes_are_straight(session, people, client, login):
    session.execute(text("DELETE FROM roads WHERE county_code = :c"), {"c": COUNTY})
    plan, rows = _routed(session, people, [P1, P2, P3])
    assert _same_places(_order(rows), STRAIGHT_ORDER)
    assert [r.leg_kind for r in rows] == ["straight"] * 3 and not any(r.has_path for r in rows)
    expected = routing.geodesic_legs(START, STRAIGHT_ORDER, [0, 1, 2])
    assert [r.leg_m for r in rows] == pytest.approx(expected, abs=0.01)
    login(user=people["planner"])
    page = client.get(f"/visits/plans/{plan.id}").get_data(as_text=True)
    assert 'data-status="no_roads"' in page and "尚未导入道路图层" in page
    assert "（直线）" in page
    lines = _polylines(client.get(f"/visits/plans/{plan.id}/map").get_data(as_text=True))
    assert lines and not _passes(lines, BRIDGE_EAST)


def test_without_pgrouting_routes_are_straight_and_nothing_fails(
    session, tmp_path, people, client, login
):
    load_river(session, tmp_path)
    session.execute(text("DROP EXTENSION pgrouting"))  # rolled back with the test
    net = roads.network(session, COUNTY)
    assert net.status == "no_pgrouting" and not net.routable and net.edges == 4
    plan, rows = _routed(session, people, [P1, P2, P3])
    assert _same_places(_order(rows), STRAIGHT_ORDER)
    assert {r.leg_kind for r in rows} == {"straight"}
    login(user=people["planner"])
    page = client.get(f"/visits/plans/{plan.id}").get_data(as_text=True)
    assert 'data-status="no_pgrouting"' in page and "未安装 pgRouting" in page
    assert client.get(f"/visits/plans/{plan.id}/map").status_code == 200
    # an import still stores the layer, and says routes stay straight until pgRouting is there
    report = load_river(session, tmp_path)
    assert report.components is None and any("未安装 pgRouting" in x for x in report.lines())


def test_stops_the_network_does_not_join_are_measured_straight_with_a_note(
    session, tmp_path, people, client, login
):
    load_river(session, tmp_path, island=True)
    plan, rows = _routed(session, people, [P1, P2, P3, P4])
    assert _same_places(_order(rows), ROAD_ORDER + [P4])
    assert [r.leg_kind for r in rows] == ["road", "road", "road", "no_path"]
    assert rows[-1].leg_m == pytest.approx(metres(P1, P4), abs=0.01) and not rows[-1].has_path
    login(user=people["planner"])
    page = client.get(f"/visits/plans/{plan.id}").get_data(as_text=True)
    assert "其中 1 段路程的两端在道路网中不连通，按直线距离计" in page
    assert "1 段道路不连通，按直线计" in page


def test_the_distance_matrix_adds_access_and_flags_missing_paths(session, tmp_path):
    load_river(session, tmp_path, island=True)
    net = roads.network(session, COUNTY)
    m = roads.distance_matrix(session, net, [START, P1, P2, P4])
    assert m.by_road
    assert m.metres[0, 1] == pytest.approx(sum(ROAD_LEGS), abs=0.01)  # START → P1 over the bridge
    assert m.metres[1, 0] == pytest.approx(m.metres[0, 1])
    assert m.metres[0, 2] == pytest.approx(ROAD_LEGS[0], abs=0.01)
    assert m.no_path[0, 3] and m.no_path[3, 1] and not m.no_path[0, 1]
    assert m.metres[0, 3] == pytest.approx(metres(START, P4), abs=0.01)
    # two points joining at the same junction are as far apart as their straight line
    near = at(1000, 590)
    m = roads.distance_matrix(session, net, [P3, near])
    assert m.metres[0, 1] == pytest.approx(metres(P3, near), abs=0.01)


def test_a_demo_plan_on_roads_is_never_longer_than_nearest_neighbour(
    session, app, make_user, busy_place
):
    loader.load_roads(session)
    planner = make_user("planner")
    w1 = make_user("grid_worker", busy_place.grid)
    w2 = make_user("grid_worker", busy_place.other_grid)
    plan = new_plan(session, app, planner, busy_place.village, [(w1.id, 6), (w2.id, 6)], days=2)
    net = roads.network(session, COUNTY)
    assert net.routable
    rows = session.execute(
        text(
            """
            SELECT s.user_id, s.day, s.seq, s.leg_m, s.leg_kind, ST_X(s.location) AS lon,
                   ST_Y(s.location) AS lat, ST_X(pp.start_point) AS slon,
                   ST_Y(pp.start_point) AS slat
            FROM visit_stops s
            JOIN visit_plan_people pp ON pp.plan_id = s.plan_id AND pp.user_id = s.user_id
            WHERE s.plan_id = :p ORDER BY s.user_id, s.day, s.seq
            """
        ),
        {"p": plan.id},
    ).all()
    days = defaultdict(list)
    for r in rows:
        days[(r.user_id, r.day)].append(r)
    assert len(days) >= 2
    for stops in days.values():
        start = (stops[0].slon, stops[0].slat)
        m = roads.distance_matrix(session, net, [start] + [(s.lon, s.lat) for s in stops])
        stored = list(range(len(stops)))  # the stored walking order
        nn = routing.nearest_neighbour_on(m.metres)
        assert (
            sum(routing.matrix_legs(m.metres, stored))
            <= sum(routing.matrix_legs(m.metres, nn)) + 1e-6
        )
        # the stored legs are the legs of the matrix the route was ordered on
        assert [s.leg_m for s in stops] == pytest.approx(
            list(routing.matrix_legs(m.metres, stored)), abs=0.01
        )
        assert {s.leg_kind for s in stops} == {"road"}


def _road_like(seed: int, n: int) -> np.ndarray:
    """Shortest-path distances on a random k-nearest-neighbour graph (a metric, like roads)."""
    from scipy.sparse.csgraph import shortest_path

    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 5000, (n, 2))
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    g = np.zeros_like(d)
    for i in range(n):
        for j in np.argsort(d[i])[1:5]:
            g[i, j] = g[j, i] = d[i, j] * rng.uniform(1.0, 1.6)
    out = shortest_path(g, directed=False)
    out[np.isinf(out)] = 1e6  # a disconnected pair: far
    return out


@pytest.mark.parametrize("seed", range(12))
def test_a_route_on_a_matrix_is_never_longer_than_nearest_neighbour(seed):
    m = _road_like(seed, 25 + seed * 3)
    route = routing.plan_route_on(m)
    assert sorted(route.order) == list(range(len(m) - 1))
    nn = routing.nearest_neighbour_on(m)
    assert route.length_m <= sum(routing.matrix_legs(m, nn)) + 1e-6
    assert route.legs_m == routing.matrix_legs(m, route.order)


def test_the_search_on_a_matrix_improves_on_nearest_neighbour():
    better = 0
    for seed in range(12):
        m = _road_like(100 + seed, 40)
        nn = sum(routing.matrix_legs(m, routing.nearest_neighbour_on(m)))
        better += routing.plan_route_on(m).length_m < nn - 1.0
    assert better >= 6  # 2-opt and Or-opt find a shorter walk on most of them


def test_a_matrix_must_be_square_and_symmetric():
    with pytest.raises(ValueError):
        routing.plan_route_on(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError):
        routing.plan_route_on(np.zeros((2, 3)))
    assert routing.plan_route_on(np.zeros((1, 1))).order == ()


def test_the_app_starts_and_routes_straight_on_a_server_without_pgrouting(
    server_url, template_url, tmp_path
):
    """DATABASE_URL to a database without pgRouting, as a user who may not create it."""
    url = copy_database(server_url, template_url)
    role = f"gridcase_nopgr_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("DROP EXTENSION pgrouting"))
            try:
                conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
            except Exception as exc:  # an external server may not let the tests make roles
                pytest.skip(f"cannot create a role on this server: {exc}")
            conn.execute(
                text(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                    f'TO "{role}"; GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA '
                    f'public TO "{role}"'
                )
            )
        app_url = make_url(url).set(username=role).render_as_string(hide_password=False)
        app = create_app(
            {
                "DATABASE_URL": app_url,
                "EMBEDDED_DB": False,
                "AUTO_MIGRATE": True,
                "TESTING": True,
                "SECRET_KEY": "test-secret",
            }
        )
        r = app.test_client().get("/healthz")
        assert r.status_code == 200 and r.get_json()["pgrouting"] is None
        with app.app_context():
            session = get_session()
            from tests.roads_fixtures import RIVER_ROADS, write_lines

            report = import_roads(
                session, write_lines(tmp_path / "river.geojson", RIVER_ROADS), COUNTY, True
            )
            assert report.ok and report.components is None
            net = roads.network(session, COUNTY)
            assert net.status == "no_pgrouting"
            route = planning.route_day(session, net, START, [P1, P2, P3])
            assert [[P1, P2, P3][i] for i in route.order] == STRAIGHT_ORDER
            session.rollback()
        from webapp.db import database

        database(app).engine.dispose()
    finally:
        admin.dispose()
        drop_database(url)
        cleanup = create_engine(
            make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
        )
        with cleanup.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        cleanup.dispose()
