"""Coordinate conversions, checked against an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
from coord_convert.transform import wgs2gcj

from webapp.geo import distance_m, gcj02_to_wgs84, parse_crs, wgs84_to_gcj02


@pytest.mark.parametrize(
    ("lon", "lat"), [(114.2, 35.25), (116.397, 39.909), (121.47, 31.23), (87.6, 43.8)]
)
def test_gcj02_forward_matches_independent_library(lon, lat):
    glon, glat = wgs84_to_gcj02(lon, lat)
    ref = wgs2gcj(lon, lat)
    assert distance_m(float(glon), float(glat), *ref) < 0.01
    # The offset in China is hundreds of metres, not a constant.
    assert 50 < distance_m(lon, lat, float(glon), float(glat)) < 1000


def test_gcj02_inverse_round_trips_to_a_millimetre():
    rng = np.random.default_rng(1)
    lon = rng.uniform(74, 134, 1000)
    lat = rng.uniform(18, 53, 1000)
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    err = max(distance_m(a, b, c, d) for a, b, c, d in zip(lon, lat, *back, strict=True))
    assert err < 0.001


def test_outside_china_is_unchanged():
    assert tuple(map(float, wgs84_to_gcj02(2.35, 48.85))) == (2.35, 48.85)


def test_parse_crs():
    assert parse_crs("gcj02").name == "gcj02"
    assert parse_crs("4490").name == "EPSG:4490"
    gk = parse_crs("EPSG:4526")
    assert not gk.geographic and gk.bounds[0] == pytest.approx(112.5, abs=0.01)
    with pytest.raises(ValueError):
        parse_crs("EPSG:99999999")
