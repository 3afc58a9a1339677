"""Coordinates: CRS transforms (pyproj, always x=lon/easting first) and GCJ-02.

Everything is stored in WGS84 (EPSG:4326). Files come in WGS84, CGCS2000
(EPSG:4490, within centimetres of WGS84), the CGCS2000 Gauss-Krüger zones
(EPSG:4513-4554), or GCJ-02, the obfuscated datum of AMap/Tencent maps, which has
no EPSG code. GCJ-02 is converted with its published forward formula and an
iterative inverse (to about 1e-9 degrees), not a constant offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

GCJ02 = "gcj02"
WGS84 = "EPSG:4326"

# Krasovsky 1940 ellipsoid, as the GCJ-02 formula uses it.
_A = 6378245.0
_EE = 0.00669342162296594323


class CRSProblem(ValueError):
    """A CRS that cannot be used, or coordinates impossible for the CRS."""


def in_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return where the GCJ-02 offset applies (the rough box the formula is defined on)."""
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = lon - 105.0
    y = lat - 35.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Return GCJ-02 coordinates of WGS84 points (unchanged outside China)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    inside = in_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(
    lon, lat, tol: float = 1e-10, max_iter: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """Return WGS84 coordinates of GCJ-02 points by inverting the forward formula.

    Fixed-point iteration: guess, map forward, correct by the residual. Converges to
    well under a millimetre in a handful of steps.
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        rlon, rlat = flon - glon, flat - glat
        wlon = wlon - rlon
        wlat = wlat - rlat
        if np.all(np.abs(rlon) < tol) and np.all(np.abs(rlat) < tol):
            break
    return wlon, wlat


@dataclass(frozen=True)
class SourceCRS:
    """A CRS the importer accepts: an EPSG CRS or GCJ-02."""

    name: str  # "gcj02" or "EPSG:nnnn"
    geographic: bool
    # Where the CRS may be used, in lon/lat: (west, south, east, north).
    bounds: tuple[float, float, float, float]

    @property
    def label(self) -> str:
        return "GCJ-02" if self.name == GCJ02 else self.name


def parse_crs(value: str) -> SourceCRS:
    """Parse ``gcj02``, ``EPSG:4490``, ``4526`` or a WKT/PROJ string into a SourceCRS."""
    text = value.strip()
    if text.lower().replace("-", "").replace("_", "") in {"gcj02", "gcj"}:
        return SourceCRS(GCJ02, True, (72.004, 0.8293, 137.8347, 55.8271))
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        crs = CRS.from_user_input(text)
    except CRSError as exc:
        raise CRSProblem(f"无法识别的坐标系 {value!r} (unknown CRS)") from exc
    epsg = crs.to_epsg()
    name = f"EPSG:{epsg}" if epsg else crs.to_string()
    aou = crs.area_of_use
    bounds = (aou.west, aou.south, aou.east, aou.north) if aou else (-180.0, -90.0, 180.0, 90.0)
    return SourceCRS(name, crs.is_geographic, bounds)


@lru_cache(maxsize=32)
def _transformer(name: str) -> Transformer:
    return Transformer.from_crs(name, WGS84, always_xy=True)


def check_source_coordinates(coords: np.ndarray, crs: SourceCRS) -> np.ndarray:
    """Return a boolean mask of coordinate rows impossible in ``crs`` (before transforming)."""
    x, y = coords[:, 0], coords[:, 1]
    bad = ~np.isfinite(x) | ~np.isfinite(y)
    if crs.geographic:
        bad |= (np.abs(x) > 180) | (np.abs(y) > 90)
    return bad


def to_wgs84_coords(coords: np.ndarray, crs: SourceCRS) -> np.ndarray:
    """Transform an (N, 2) array of coordinates in ``crs`` to WGS84 lon/lat."""
    if crs.name == GCJ02:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])
    if crs.name == WGS84:
        return coords.copy()
    lon, lat = _transformer(crs.name).transform(coords[:, 0], coords[:, 1])
    return np.column_stack([lon, lat])


def outside_area_of_use(lonlat: np.ndarray, crs: SourceCRS, margin: float = 1.0) -> np.ndarray:
    """Return a mask of WGS84 rows that fall outside ``crs``'s area of use (plus a margin)."""
    w, s, e, n = crs.bounds
    lon, lat = lonlat[:, 0], lonlat[:, 1]
    bad = ~np.isfinite(lon) | ~np.isfinite(lat)
    bad |= (lon < w - margin) | (lon > e + margin) | (lat < s - margin) | (lat > n + margin)
    return bad


def geometries_to_wgs84(geoms: np.ndarray, crs: SourceCRS) -> np.ndarray:
    """Transform an array of shapely geometries from ``crs`` to WGS84."""
    return shapely.transform(geoms, lambda c: to_wgs84_coords(c, crs))


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine on the mean Earth radius)."""
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))
