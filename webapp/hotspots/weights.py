"""Spatial weights between areas of one level, computed in PostGIS.

Neighbours come from the polygons (queen contiguity: sharing at least one boundary
point) or from a distance band between the areas' label points. Both are binary, as
in ArcGIS's Hot Spot Analysis; Gi* adds each area to its own neighbourhood.

Boundaries hardly ever change, and the polygon join is most of a hot-spot map's
time (about 120 ms for the county's 1,026 grids, the case counts a fraction of it), so
each process keeps the last few answers, keyed by the areas' version as the session
sees it: the database, the number of areas of the level and the newest row version
(``xmin``) among them. Any insert or update of those areas makes a new transaction
id and so a new key, a delete a smaller count; a rolled-back change never comes back.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.grid.models import AreaLevel

METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class Neighbours:
    """Symmetric binary neighbour pairs over ``codes`` (both directions, no self pairs)."""

    codes: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    kind: str  # "queen" or "distance"
    threshold_m: float | None = None

    @property
    def n(self) -> int:
        return len(self.codes)

    def cardinalities(self) -> np.ndarray:
        """Number of neighbours of each area (self not counted)."""
        return np.bincount(self.i, minlength=self.n)

    def as_dict(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {k: [] for k in range(self.n)}
        for a, b in zip(self.i.tolist(), self.j.tolist(), strict=True):
            out[a].append(b)
        return out


# Answers kept per process (each at most a few MB, for a province's 100,000 grids).
CACHE_ENTRIES = 16
_cache: OrderedDict[tuple, Neighbours] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _version(session: Session, level: AreaLevel, within: str | None) -> tuple:
    """What changes when the areas of ``level`` in ``within`` change, as this session sees them."""
    return tuple(
        session.execute(
            text(
                """
                SELECT (SELECT oid FROM pg_database WHERE datname = current_database()),
                       count(*), coalesce(max(xmin::text::bigint), 0)
                FROM areas WHERE level = :level AND code LIKE :prefix
                """
            ),
            {"level": level.value, "prefix": (within or "") + "%"},
        ).one()
    )


def _cached(key: tuple, compute) -> Neighbours:
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    nb = compute()
    nb.i.flags.writeable = False  # shared between requests: nobody may change it
    nb.j.flags.writeable = False
    with _cache_lock:
        _cache[key] = nb
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return nb


def _codes(session: Session, level: AreaLevel, within: str | None) -> tuple[str, ...]:
    rows = session.execute(
        text("SELECT code FROM areas WHERE level = :level AND code LIKE :prefix ORDER BY code"),
        {"level": level.value, "prefix": (within or "") + "%"},
    ).scalars()
    return tuple(rows)


def _pairs(codes: tuple[str, ...], kind: str, rows, threshold_m: float | None = None) -> Neighbours:
    index = {c: k for k, c in enumerate(codes)}
    a = np.fromiter((index[r[0]] for r in rows), dtype=np.int64)
    b = np.fromiter((index[r[1]] for r in rows), dtype=np.int64)
    return Neighbours(codes, np.concatenate([a, b]), np.concatenate([b, a]), kind, threshold_m)


def queen(
    session: Session, level: AreaLevel, within: str | None = None, tolerance_m: float = 0.0
) -> Neighbours:
    """Queen contiguity: areas whose boundaries share at least one point.

    ``tolerance_m`` > 0 also joins areas separated by slivers narrower than that
    (boundary files from different sources rarely meet exactly).
    """
    key = ("queen", _version(session, level, within), level.value, within, tolerance_m)
    return _cached(key, lambda: _queen(session, level, within, tolerance_m))


def _queen(
    session: Session, level: AreaLevel, within: str | None, tolerance_m: float
) -> Neighbours:
    codes = _codes(session, level, within)
    if tolerance_m > 0:
        touch = "ST_DWithin(x.geom, y.geom, :tol)"
    else:
        touch = "ST_Intersects(x.geom, y.geom)"
    # For each area, probe the others' GiST index (LATERAL): the plan stays an index
    # probe per area even before the table has statistics (right after an import).
    rows = session.execute(
        text(
            f"""
            SELECT x.code, y.code
            FROM areas x
            CROSS JOIN LATERAL (
                SELECT y.code FROM areas y
                WHERE y.geom && ST_Expand(x.geom, :tol) AND y.level = x.level AND x.code < y.code
                  AND y.code LIKE :prefix AND {touch}
                OFFSET 0
            ) y
            WHERE x.level = :level AND x.code LIKE :prefix
            """
        ),
        {
            "level": level.value,
            "prefix": (within or "") + "%",
            "tol": tolerance_m / METRES_PER_DEGREE,
        },
    ).all()
    return _pairs(codes, "queen", rows)


def distance_band(
    session: Session, level: AreaLevel, threshold_m: float, within: str | None = None
) -> Neighbours:
    """Areas whose label points lie within ``threshold_m`` metres of each other (geodesic)."""
    key = ("distance", _version(session, level, within), level.value, within, threshold_m)
    return _cached(key, lambda: _distance_band(session, level, threshold_m, within))


def _distance_band(
    session: Session, level: AreaLevel, threshold_m: float, within: str | None
) -> Neighbours:
    codes = _codes(session, level, within)
    lat = (
        session.execute(
            text(
                "SELECT max(abs(ST_YMax(geom))) FROM areas WHERE level = :level AND code LIKE :prefix"
            ),
            {"level": level.value, "prefix": (within or "") + "%"},
        ).scalar()
        or 0.0
    )
    # A box margin in degrees wide enough at the highest latitude of the areas.
    margin = threshold_m / (METRES_PER_DEGREE * max(math.cos(math.radians(min(lat, 89.0))), 0.01))
    rows = session.execute(
        text(
            """
            SELECT x.code, y.code
            FROM areas x
            CROSS JOIN LATERAL (
                SELECT y.code FROM areas y
                WHERE y.geom && ST_Expand(x.geom, :margin) AND y.level = x.level AND x.code < y.code
                  AND y.code LIKE :prefix
                  AND ST_DWithin(x.label_point::geography, y.label_point::geography, :d)
                OFFSET 0
            ) y
            WHERE x.level = :level AND x.code LIKE :prefix
            """
        ),
        {"level": level.value, "prefix": (within or "") + "%", "margin": margin, "d": threshold_m},
    ).all()
    return _pairs(codes, "distance", rows, threshold_m)
