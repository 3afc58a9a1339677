"""Gi* hot spots: agreement with PySAL esda, binning, FDR, weights from PostGIS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sqlalchemy import text

from webapp.grid.models import AreaLevel
from webapp.hotspots import gistar, weights
from webapp.hotspots.queries import CaseFilter, hot_spots


def esda_z(values, nb: weights.Neighbours):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libpysal/esda emit deprecation and island warnings
        from esda.getisord import G_Local
        from libpysal.weights import W

        w = W(nb.as_dict(), silence_warnings=True)
        g = G_Local(np.asarray(values, dtype=float), w, transform="B", star=True, permutations=0)
    return g.Zs, g.p_norm


@pytest.fixture(scope="module")
def grid_queen(template_url):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    engine = create_engine(template_url)
    with Session(engine) as s:
        nb = weights.queen(s, AreaLevel.GRID, "410726")
        band = weights.distance_band(s, AreaLevel.GRID, 2500.0, "410726")
        counts = dict(
            s.execute(text("SELECT grid_code, count(*) FROM cases GROUP BY grid_code")).all()
        )
    engine.dispose()
    return nb, band, np.array([counts.get(c, 0) for c in nb.codes], dtype=float)


@pytest.mark.parametrize("which", ["queen", "distance"])
def test_z_scores_agree_with_esda(grid_queen, which):
    queen, band, counts = grid_queen
    nb = queen if which == "queen" else band
    ours = gistar.gi_star(counts, nb)
    theirs, p_one_sided = esda_z(counts, nb)
    assert np.max(np.abs(ours - theirs)) < 1e-6
    # esda's p_norm is one-sided; ours is two-sided.
    assert np.allclose(gistar.normal_two_sided_p(ours), 2 * p_one_sided, atol=1e-9)


def test_queen_neighbours_of_the_demo_grids(grid_queen):
    nb, band, _ = grid_queen
    k = nb.cardinalities()
    assert nb.n > 900 and k.min() >= 1 and 5 <= k.mean() <= 7  # a planar partition averages ~6
    assert set(zip(nb.i.tolist(), nb.j.tolist(), strict=True)) == set(
        zip(nb.j.tolist(), nb.i.tolist(), strict=True)
    )
    assert (
        band.kind == "distance" and band.threshold_m == 2500.0 and band.cardinalities().mean() > 1
    )


def test_neighbours_are_kept_until_the_areas_change(session):
    township = session.execute(
        text("SELECT code FROM areas WHERE level = 'township' ORDER BY code LIMIT 1")
    ).scalar_one()
    first = weights.queen(session, AreaLevel.GRID, township)
    assert weights.queen(session, AreaLevel.GRID, township) is first  # kept, not recomputed
    assert not first.i.flags.writeable  # shared between requests
    moved = first.codes[0]
    assert first.cardinalities()[0] > 0
    session.execute(
        text("UPDATE areas SET geom = ST_Translate(geom, 1.0, 0) WHERE code = :c"), {"c": moved}
    )
    after = weights.queen(session, AreaLevel.GRID, township)
    assert after is not first and after.codes == first.codes
    assert after.cardinalities()[0] == 0  # the moved grid touches nothing any more
    band = weights.distance_band(session, AreaLevel.GRID, 2500.0, township)
    assert weights.distance_band(session, AreaLevel.GRID, 2500.0, township) is band


def lattice(n: int) -> weights.Neighbours:
    """Queen neighbours of an n x n lattice of cells."""
    codes = tuple(f"{r:02d}{c:02d}" for r in range(n) for c in range(n))
    pairs = []
    for r in range(n):
        for c in range(n):
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    if (dr or dc) and 0 <= r + dr < n and 0 <= c + dc < n:
                        pairs.append((r * n + c, (r + dr) * n + c + dc))
    i, j = np.array(pairs).T
    return weights.Neighbours(codes, i, j, "queen")


def test_a_hot_centre_and_a_cold_corner_on_a_lattice():
    nb = lattice(7)
    values = np.full(49, 5.0)
    values[[23, 24, 25, 16, 17, 18, 30, 31, 32]] = 30.0  # a 3 x 3 hot block in the centre
    values[[0, 1, 7, 8]] = 0.0  # a cold corner
    result = gistar.analyse(values, nb)
    assert result.bins[24] == 3 and result.z[24] == result.z.max()
    assert result.bins[0] < 0
    assert (result.bins[[44, 45, 46, 47, 48]] == 0).all()
    theirs, _ = esda_z(values, nb)
    assert np.max(np.abs(result.z - theirs)) < 1e-6


def test_no_variation_means_no_hot_spots():
    nb = lattice(4)
    result = gistar.analyse(np.full(16, 3.0), nb)
    assert (result.z == 0).all() and (result.bins == 0).all() and (result.p == 1).all()


def test_binning_thresholds():
    z = np.array([2.58, 2.57, 1.96, 1.95, 1.645, 1.64, 0, -1.7, -2.0, -3.0])
    p = gistar.normal_two_sided_p(z)
    assert gistar.confidence_bins(z, p).tolist() == [3, 2, 2, 1, 1, 0, 0, -1, -2, -3]


def test_benjamini_hochberg():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # BH at 5 %: ranks k with p_(k) <= k/10 * 0.05 → only 0.001 (≤ .005) and 0.008 (≤ .010).
    assert gistar.bh_critical_p(p, 0.05) == 0.008
    assert gistar.bh_critical_p(np.array([0.5, 0.9]), 0.05) == 0.0
    z = np.array([3.3, 2.65, 2.06, 2.04, 2.03, 1.88, 1.79, 1.27, 1.25, 1.24])
    bins = gistar.confidence_bins(z, gistar.normal_two_sided_p(z), fdr=True)
    assert bins[0] >= 2 and (bins[5:] == 0).all()
    assert (np.abs(bins) <= np.abs(gistar.confidence_bins(z, gistar.normal_two_sided_p(z)))).all()


def test_hot_spots_of_the_demo_county_find_the_planted_hot_spots(session):
    """The demo's demolition site, housing estate and factory are significant hot spots."""
    result = hot_spots(session, AreaLevel.GRID, "410726", CaseFilter())
    rows = {r["code"]: r for r in result.rows()}
    busiest = (
        session.execute(
            text("SELECT grid_code FROM cases GROUP BY grid_code ORDER BY count(*) DESC LIMIT 3")
        )
        .scalars()
        .all()
    )
    assert all(rows[c]["bin"] == 3 for c in busiest)
    assert result.inference.startswith("解析推断")


def test_per_1000_residents_leaves_out_areas_without_population(session):
    session.execute(
        text(
            "UPDATE areas SET population = NULL WHERE code = (SELECT min(code) FROM areas WHERE level = 'village')"
        )
    )
    result = hot_spots(session, AreaLevel.VILLAGE, "410726", CaseFilter(), per_1000=True)
    assert len(result.codes) == 341 and np.isfinite(result.values).all()
