"""Early warning: Poisson spikes, Mann-Kendall, Emerging Hot Spot patterns."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from tests.test_hotspots import lattice
from webapp.grid.models import AreaLevel
from webapp.grid.queries import get_area
from webapp.stats import warning
from webapp.stats.warning import classify, mann_kendall, poisson_sf, space_time_patterns

# -- Poisson ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, lam",
    [
        (0, 1.0),
        (1, 0.02),
        (3, 0.1),
        (5, 2.0),
        (8, 0.2),
        (30, 12.5),
        (12, 20.0),
        (200, 150.0),
        (3, 0.0),
    ],
)
def test_poisson_tail_agrees_with_scipy(k, lam):
    from scipy.stats import poisson

    expected = float(poisson.sf(k - 1, lam)) if lam > 0 else float(k <= 0)
    assert poisson_sf(k, lam) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_poisson_tail_by_hand():
    # P(X >= 2 | λ = 1) = 1 − e^-1 (1 + 1) = 0.26424...
    assert poisson_sf(2, 1.0) == pytest.approx(1 - 2 * math.exp(-1))
    # P(X >= 3 | λ = 0.1) = 1 − e^-0.1 (1 + 0.1 + 0.005)
    assert poisson_sf(3, 0.1) == pytest.approx(1 - math.exp(-0.1) * 1.105)


# -- Mann-Kendall --------------------------------------------------------------------------


def test_mann_kendall_on_known_series():
    # A strictly rising series of 5: S = 10, Var(S) = 5·4·15/18 = 16.667,
    # Z = (10 − 1)/√16.667 = 2.2045, p = 0.0275 (the textbook value for n = 5).
    mk = mann_kendall([1, 2, 3, 4, 5])
    assert mk.s == 10 and mk.var_s == pytest.approx(50 / 3)
    assert mk.z == pytest.approx(2.2045, abs=1e-4) and mk.p == pytest.approx(0.0275, abs=1e-4)
    assert mk.tau == 1.0 and mk.trend() == "up"
    # With a tie: [1, 2, 2, 3]: five rising pairs, one tie, so S = 5;
    # Var(S) = (4·3·13 − 2·1·9)/18 = 7.667; Z = 4/√7.667 = 1.4446; p = 0.1486.
    mk = mann_kendall([1, 2, 2, 3])
    assert mk.s == 5 and mk.var_s == pytest.approx(138 / 18)
    assert mk.z == pytest.approx(1.4446, abs=1e-4) and mk.p == pytest.approx(0.1486, abs=1e-4)
    assert mk.trend() == "none"
    # Falling, and flat.
    assert mann_kendall([9, 7, 8, 5, 4, 3, 1, 0]).trend() == "down"
    flat = mann_kendall([2, 2, 2, 2])
    assert flat.s == 0 and flat.p == 1.0 and flat.trend() == "none"


def test_mann_kendall_agrees_with_kendalls_tau():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(0, 6, size=int(rng.integers(8, 30))).astype(float)  # many ties
        mk = mann_kendall(x)
        t = np.arange(len(x))
        tau_b, p = kendalltau(t, x, method="asymptotic")
        n0 = len(x) * (len(x) - 1) / 2
        _, ties = np.unique(x, return_counts=True)
        n2 = (ties * (ties - 1) / 2).sum()
        assert mk.s == pytest.approx(tau_b * math.sqrt(n0 * (n0 - n2)))
        # scipy's asymptotic test has no continuity correction: Z = S / √Var(S).
        if mk.var_s > 0:
            assert math.erfc(abs(mk.s) / math.sqrt(mk.var_s) / math.sqrt(2)) == pytest.approx(p)


# -- pattern classification -------------------------------------------------------------------

H, C, N = 3, -3, 0


@pytest.mark.parametrize(
    "bins, trend_z, trend_p, pattern",
    [
        ([N] * 11 + [H], 0.2, 0.8, "new_hot"),
        ([N] * 9 + [H, H, H], 1.4, 0.15, "consecutive_hot"),
        ([H] * 12, 3.5, 0.001, "intensifying_hot"),
        ([H] * 12, -0.6, 0.5, "persistent_hot"),
        ([N] + [H] * 11, -3.6, 0.001, "diminishing_hot"),
        ([N, H, N, H, N, N, H, N, N, H, N, H], 0.5, 0.6, "sporadic_hot"),
        ([C, N, N, H, N, N, N, N, N, N, N, H], 0.9, 0.3, "oscillating_hot"),
        ([H] * 11 + [N], -1.7, 0.09, "historical_hot"),
        ([N] * 11 + [C], -0.2, 0.8, "new_cold"),
        ([C] * 12, -3.5, 0.001, "intensifying_cold"),
        ([C] * 12, 3.5, 0.001, "diminishing_cold"),
        ([N, C, N, C, N, N, N, N, N, N, N, C], 0.0, 1.0, "sporadic_cold"),
        ([H, N, N, N, N, N, N, N, N, N, C, C], 0.0, 1.0, "oscillating_cold"),
        ([C] * 11 + [N], 0.0, 1.0, "historical_cold"),
        ([N, N, H, N, N, C, N, N, N, N, N, N], 0.0, 1.0, "no_pattern"),
        ([1] * 12, 0.0, 1.0, "no_pattern"),  # 90 % confidence does not count
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_classify(bins, trend_z, trend_p, pattern):
    assert classify(bins, trend_z, trend_p) == pattern


def test_space_time_patterns_on_a_lattice():
    """A 3 x 3 block in the middle of a 7 x 7 lattice, over noise, changing over 12 months."""
    nb = lattice(7)
    rng = np.random.default_rng(1)
    noise = rng.poisson(5, size=(49, 12)).astype(float)
    block = np.zeros(49)
    block[[16, 17, 18, 23, 24, 25, 30, 31, 32]] = 1
    cases = {
        "intensifying_hot": np.arange(4, 16),
        "diminishing_hot": np.arange(15, 3, -1),
        "new_hot": np.r_[np.zeros(11), 15],
        "persistent_hot": np.full(12, 12.0),
        "consecutive_hot": np.r_[np.zeros(9), 15, 15, 15],
        "historical_hot": np.r_[np.full(11, 12.0), 0],
    }
    for expected, strength in cases.items():
        z, bins, trends, patterns = space_time_patterns(noise + np.outer(block, strength), nb)
        assert patterns[24] == expected, (expected, bins[24], trends[24])
        assert patterns[0] == "no_pattern" and patterns[48] == "no_pattern"
    z, bins, trends, patterns = space_time_patterns(noise, nb)
    assert all(p == "no_pattern" or "sporadic" in p or "new" in p for p in patterns)


# -- spikes on the demo county ----------------------------------------------------------------


def _plant(session, grid: str, category: str, n: int, when: datetime) -> None:
    from webapp.cases.bulk import bulk_insert_cases

    lon, lat = session.execute(
        text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"), {"c": grid}
    ).one()
    cat = session.execute(
        text("SELECT id FROM categories WHERE code = :c"), {"c": category}
    ).scalar_one()
    rows = [
        (
            i,
            None,
            f"集中反映的问题{i}",
            "",
            cat,
            "visit",
            "request",
            1,
            1,
            lon,
            lat,
            False,
            "registered",
            when - timedelta(hours=3 * i),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            True,
            None,
            False,
            None,
            None,
            None,
        )
        for i in range(n)
    ]
    assert bulk_insert_cases(session, rows).inserted == n


def test_a_planted_spike_is_flagged_with_its_figures(session):
    now = datetime.now(UTC)
    grid = session.execute(
        text(
            """
            SELECT a.code FROM areas a WHERE a.level = 'grid' AND a.code LIKE '410726%'
            ORDER BY (SELECT count(*) FROM cases c WHERE c.grid_code = a.code), a.code LIMIT 1
            """
        )
    ).scalar_one()
    req = warning.WarningRequest(
        get_area(session, "410726"), "week", now, AreaLevel.VILLAGE, 12, ("true", {})
    )
    before = warning.alerts(session, req)
    assert grid not in {a.code for a in before.alerts}
    assert before.tested == {"grid": 1026, "village": 342, "category": 19}

    _plant(session, grid, "mass_finance", 8, now - timedelta(hours=1))
    after = warning.alerts(session, req)
    flagged = {(a.kind, a.code): a for a in after.alerts}
    spike = flagged[("grid", grid)]
    assert (
        spike.observed == 8
        and spike.p < 1e-6
        and spike.expected == pytest.approx(max(spike.history, 0.5) / 26)
    )
    assert spike.p == pytest.approx(poisson_sf(8, spike.expected))
    assert ("village", grid[:12]) in flagged
    cat_id = session.execute(
        text("SELECT id::text FROM categories WHERE code = 'mass_finance'")
    ).scalar_one()
    assert ("category", cat_id) in flagged
    assert all(a.p < 0.01 and a.observed >= 3 for a in after.alerts)


def test_few_cases_in_a_quiet_unit_are_not_a_warning():
    # No history: λ = 0.5/26; two cases would be p ≈ 1.8e-4 but fewer than 3 are never flagged.
    lam = 0.5 / 26
    assert poisson_sf(2, lam) < 0.01 and poisson_sf(1, lam) > 0.01
    assert warning.MIN_COUNT == 3


def test_the_warning_page_shows_a_planted_spike(client, login, session):
    login("county_staff")
    now = datetime.now(UTC)
    grid = session.execute(
        text("SELECT code FROM areas WHERE level = 'grid' ORDER BY code DESC LIMIT 1")
    ).scalar_one()
    _plant(session, grid, "mass_finance", 9, now - timedelta(hours=1))
    html = client.get("/stats/warning", query_string={"window": "week"}).get_data(as_text=True)
    assert f'data-code="{grid}" data-kind="grid"' in html
    assert "观测（件）" in html and "期望（件）" in html and "p 值" in html


def test_emerging_hot_spots_on_the_demo_county(session):
    req = warning.WarningRequest(
        get_area(session, "410726"), "month", datetime.now(UTC), AreaLevel.VILLAGE, 12, ("true", {})
    )
    result = warning.emerging_hot_spots(session, req)
    assert len(result.locations) == 342 and len(result.months) == 12
    assert sum(result.summary.values()) == 342
    assert all(len(loc.bins) == 12 and len(loc.counts) == 12 for loc in result.locations)
    # The counts per month are the cases of each village and month.
    total = sum(sum(loc.counts) for loc in result.locations)
    start = warning.month_starts(req.as_of, 12)[0]
    expected = session.execute(
        text(
            "SELECT count(*) FROM cases WHERE county_code = '410726'"
            " AND reported_at >= :s AND reported_at < :t"
        ),
        {"s": warning.local_midnight(start), "t": req.as_of},
    ).scalar_one()
    assert total == expected


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"months": "5"}, 400, "参数 months 应为 6 至 36 之间的整数"),
        ({"months": "x"}, 400, "参数 months 应为 6 至 36 之间的整数"),
        ({"colour": "red"}, 400, "不支持的参数：colour"),
        ({"area": "999999"}, 404, None),
    ],
)
def test_the_warning_page_refuses_bad_parameters(client, login, query, status, message):
    login("county_staff")
    response = client.get("/stats/warning", query_string=query)
    assert response.status_code == status
    if message:
        assert message in response.get_data(as_text=True)
