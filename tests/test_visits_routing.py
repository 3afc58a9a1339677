"""Walking routes: never longer than nearest neighbour, every stop once, real distances."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pyproj import Geod

from webapp.visits import routing

START = (114.20, 35.23)


def scatter(rng: random.Random, n: int, spread: float = 0.03, clusters: int = 0):
    if clusters:
        centres = [
            (START[0] + rng.uniform(-spread, spread), START[1] + rng.uniform(-spread, spread))
            for _ in range(clusters)
        ]
        pts = []
        for _ in range(n):
            cx, cy = rng.choice(centres)
            pts.append((cx + rng.gauss(0, spread / 20), cy + rng.gauss(0, spread / 20)))
        return pts
    return [
        (START[0] + rng.uniform(-spread, spread), START[1] + rng.uniform(-spread, spread))
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(40))
def test_a_route_is_never_longer_than_nearest_neighbour(seed):
    rng = random.Random(seed)
    n = rng.choice([3, 5, 8, 12, 20, 40, 80, 150])
    stops = scatter(rng, n, clusters=rng.choice([0, 0, 3, 6]))
    route = routing.plan_route(START, stops)
    assert sorted(route.order) == list(range(n))
    nn = routing.nearest_neighbour(START, stops)
    assert route.length_m <= routing.path_length_m(START, stops, nn)
    assert route.length_m == pytest.approx(routing.path_length_m(START, stops, route.order))


def test_local_search_improves_on_a_bad_nearest_neighbour_path():
    rng = random.Random(7)
    stops = scatter(rng, 300)
    route = routing.plan_route(START, stops)
    nn = routing.path_length_m(START, stops, routing.nearest_neighbour(START, stops))
    assert route.length_m < 0.95 * nn


def _crosses(p1, p2, p3, p4) -> bool:
    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    return (orient(p1, p2, p3) * orient(p1, p2, p4) < 0) and (
        orient(p3, p4, p1) * orient(p3, p4, p2) < 0
    )


@pytest.mark.parametrize("seed", range(30))
def test_small_routes_have_no_crossing_legs(seed):
    # With every stop in every neighbour list (n <= 11) 2-opt is exhaustive: a path whose
    # legs cross can always be shortened by uncrossing them, so none may remain.
    rng = random.Random(100 + seed)
    stops = scatter(rng, rng.randint(4, 11))
    route = routing.plan_route(START, stops)
    lon = np.array([START[0]] + [s[0] for s in stops])
    lat = np.array([START[1]] + [s[1] for s in stops])
    x, y = routing.project(lon, lat)
    path = [0] + [i + 1 for i in route.order]
    pts = [(x[k], y[k]) for k in path]
    legs = list(zip(pts, pts[1:], strict=False))
    for a in range(len(legs)):
        for b in range(a + 2, len(legs)):
            assert not _crosses(*legs[a], *legs[b]), (a, b)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_routes(n):
    stops = [(114.201, 35.231), (114.205, 35.232)][:n]
    route = routing.plan_route(START, stops)
    assert sorted(route.order) == list(range(n)) and len(route.legs_m) == n


def test_identical_points_are_visited_once_each():
    stops = [(114.201, 35.231)] * 5 + [(114.202, 35.232)] * 3
    route = routing.plan_route(START, stops)
    assert sorted(route.order) == list(range(8))
    assert sum(1 for d in route.legs_m if d == 0) == 6


def test_legs_are_geodesic():
    stops = [(114.21, 35.24), (114.25, 35.20)]
    route = routing.plan_route(START, stops)
    geod = Geod(ellps="WGS84")
    pts = [START] + [stops[i] for i in route.order]
    expected = [geod.inv(a[0], a[1], b[0], b[1])[2] for a, b in zip(pts, pts[1:], strict=False)]
    assert route.legs_m == pytest.approx(expected, rel=1e-12)


def test_the_projection_keeps_geodesic_distances():
    # Across a whole county (some 50 km), projected straight lines stay within 1e-5 of the geodesic.
    rng = np.random.default_rng(1)
    lon = 114.0 + rng.random(400) * 0.5
    lat = 35.0 + rng.random(400) * 0.5
    x, y = routing.project(lon, lat)
    i, j = rng.integers(0, 400, 2000), rng.integers(0, 400, 2000)
    keep = i != j
    i, j = i[keep], j[keep]
    planar = np.hypot(x[i] - x[j], y[i] - y[j])
    _, _, geodesic = Geod(ellps="WGS84").inv(lon[i], lat[i], lon[j], lat[j])
    assert np.max(np.abs(planar / geodesic - 1)) < 1e-5


def test_a_thousand_stops_are_routed():
    # The benchmark measures the time; here only that it completes and is sound.
    rng = random.Random(1000)
    stops = scatter(rng, 1000, spread=0.05, clusters=25)
    route = routing.plan_route(START, stops)
    assert sorted(route.order) == list(range(1000))
    assert route.length_m <= routing.path_length_m(
        START, stops, routing.nearest_neighbour(START, stops)
    )
