"""Queries on areas: locating a point, listing members of a level, summaries."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.grid.models import Area, AreaLevel, Setting

# The one rule that decides which grid a point is in: the grids that cover it
# (boundary included), the lowest code first. A point on a border between grids
# therefore always lands in the same one of them.
LOCATE_SQL = """
    SELECT g.id AS grid_id, g.code AS grid_code, g.name AS grid_name,
           v.code AS village_code, v.name AS village_name,
           t.code AS township_code, t.name AS township_name,
           g.county_code AS county_code
    FROM areas g
    JOIN areas v ON v.code = g.village_code
    JOIN areas t ON t.code = g.township_code
    WHERE g.level = 'grid' AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    ORDER BY g.code
    LIMIT 1
"""


@dataclass(frozen=True)
class Located:
    grid_id: int
    grid_code: str
    grid_name: str
    village_code: str
    village_name: str
    township_code: str
    township_name: str
    county_code: str

    def to_dict(self) -> dict:
        return {
            "grid": {"code": self.grid_code, "name": self.grid_name},
            "village": {"code": self.village_code, "name": self.village_name},
            "township": {"code": self.township_code, "name": self.township_name},
            "county": {"code": self.county_code},
        }


def locate(session: Session, lon: float, lat: float) -> Located | None:
    """Return the grid, village and township a WGS84 point lies in, or None."""
    row = session.execute(text(LOCATE_SQL), {"lon": lon, "lat": lat}).mappings().first()
    return Located(**row) if row else None


def get_area(session: Session, code: str) -> Area | None:
    return session.scalar(select(Area).where(Area.code == code))


def areas_at_level(session: Session, level: AreaLevel, within: str | None = None):
    """Return a Select of the areas of ``level``, optionally within the area coded ``within``."""
    stmt = select(Area).where(Area.level == level.value).order_by(Area.code)
    if within:
        stmt = stmt.where(Area.code.startswith(within, autoescape=True))
    return stmt


def is_demo(session: Session) -> bool:
    return session.get(Setting, "demo_county") is not None


def set_setting(session: Session, key: str, value: str) -> None:
    session.execute(
        text(
            "INSERT INTO settings (key, value) VALUES (:k, :v) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        ),
        {"k": key, "v": value},
    )
    session.flush()


# Which column of ``cases`` holds the code of an area of each level.
CASE_CODE_COLUMN = {
    AreaLevel.COUNTY: "county_code",
    AreaLevel.TOWNSHIP: "township_code",
    AreaLevel.VILLAGE: "village_code",
    AreaLevel.GRID: "grid_code",
}


@dataclass(frozen=True)
class AreaSummary:
    code: str
    name: str
    level: str
    population: int | None
    cases: int
    open_cases: int


def children_with_case_counts(
    session: Session, parent: Area, scope: tuple[str, dict] = ("true", {})
) -> list[AreaSummary]:
    """Return the areas one level below ``parent`` with their total and open case counts.

    ``scope`` is a (SQL condition on alias ``c``, parameters) pair, from
    ``auth.permissions.case_scope_sql``: only the cases it admits are counted.
    """
    child_level = AreaLevel(parent.level).child
    if child_level is None:
        return []
    column = CASE_CODE_COLUMN[child_level]
    scope_sql, scope_params = scope
    rows = session.execute(
        text(
            f"""
            SELECT a.code, a.name, a.level, a.population,
                   coalesce(n.total, 0) AS cases, coalesce(n.open, 0) AS open_cases
            FROM areas a
            LEFT JOIN (
                SELECT c.{column} AS code, count(*) AS total,
                       count(*) FILTER (WHERE c.status NOT IN ('resolved','closed','not_accepted')) AS open
                FROM cases c
                WHERE c.{CASE_CODE_COLUMN[AreaLevel(parent.level)]} = :parent AND {scope_sql}
                GROUP BY c.{column}
            ) n ON n.code = a.code
            WHERE a.parent_id = :parent_id
            ORDER BY a.code
            """
        ),
        {"parent": parent.code, "parent_id": parent.id, **scope_params},
    ).all()
    return [AreaSummary(*r) for r in rows]


def county(session: Session, code: str | None = None) -> Area | None:
    """Return the county (the one with ``code``, or the only one)."""
    stmt = select(Area).where(Area.level == AreaLevel.COUNTY.value).order_by(Area.code)
    if code:
        stmt = stmt.where(Area.code == code)
    return session.scalars(stmt).first()


def ancestors(session: Session, area: Area) -> list[Area]:
    """Return the chain from the county down to ``area``'s parent."""
    chain: list[Area] = []
    current = area
    while current.parent_id is not None:
        current = session.get(Area, current.parent_id)
        chain.append(current)
    return list(reversed(chain))


AREA_FEATURES_SQL = """
    SELECT a.code, a.name, a.population,
           round(ST_X(a.label_point)::numeric, 6)::float8, round(ST_Y(a.label_point)::numeric, 6)::float8,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), :digits)
    FROM areas a
    WHERE a.level = :level AND a.code LIKE :prefix
    ORDER BY a.code
"""
# The stamp that any change to ``areas`` replaces (a statement trigger, migration p01).
BOUNDARIES_VERSION_SQL = "SELECT value FROM settings WHERE key = 'boundaries_version'"
# Simplified areas kept per process: (database, stamp, level, area, tolerance, digits).
AREA_FEATURES_CACHED = 64


class GeoJSONGeometry(dict):
    """A GeoJSON geometry (a plain dict to every reader) that keeps the JSON text it came as.

    A writer of the map document can put ``json`` into the page as it is instead of
    serialising the coordinates again (:class:`webapp.maps.elements.GeoJsonLayer`).
    """

    __slots__ = ("json",)

    def __init__(self, text_: str) -> None:
        super().__init__(json.loads(text_))
        self.json = text_


class _FeatureCache:
    """An LRU of simplified areas, keyed by the boundaries' version stamp.

    Every lookup reads the stamp from the database (one small query), so an import in
    any process, or any other change to ``areas``, is noticed by every worker at once;
    a rolled-back change leaves the old stamp, and a new stamp is never reused
    (``gen_random_uuid()``). Entries are never handed out: callers get copies of the
    features (the geometries, read-only by convention, are shared).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, key: tuple, load) -> tuple:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        value = load()
        with self._lock:
            self.misses += 1
            stale = [k for k in self._entries if k[:1] == key[:1] and k[1] != key[1]]
            for k in stale:  # the boundaries changed: older stamps will not come back
                del self._entries[k]
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_features = _FeatureCache(AREA_FEATURES_CACHED)


def boundaries_version(session: Session) -> str | None:
    """The stamp of the current boundaries (changes with every change to ``areas``)."""
    return session.execute(text(BOUNDARIES_VERSION_SQL)).scalar()


def area_features(
    session: Session, level: AreaLevel, within: str, tolerance: float, digits: int = 5
) -> dict:
    """The areas of ``level`` inside the area ``within`` as a GeoJSON FeatureCollection.

    Properties: ``code``, ``name``, ``population``, ``label`` ([lon, lat] of a point
    inside the area). Boundaries are simplified by ``tolerance`` degrees (topology kept,
    in SQL) and rounded to ``digits`` decimals (5: about a metre); each geometry is a
    :class:`GeoJSONGeometry`. Areas in code order. Simplified once per process for each
    version of the boundaries (see :class:`_FeatureCache`); the collection, the features
    and their properties are the caller's own, the geometries shared and never changed.
    """
    level = AreaLevel(level)
    bind = session.get_bind()
    key = (
        bind.engine.url.render_as_string(hide_password=True),
        boundaries_version(session),
        level.value,
        within,
        float(tolerance),
        int(digits),
    )

    def load() -> tuple:
        rows = session.execute(
            text(AREA_FEATURES_SQL),
            {"level": level.value, "prefix": within + "%", "tol": tolerance, "digits": digits},
        ).all()
        return tuple(
            (code, name, population, [lon, lat], GeoJSONGeometry(geometry) if geometry else None)
            for code, name, population, lon, lat, geometry in rows
        )

    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": c, "name": n, "population": p, "label": list(label)},
                "geometry": g,
            }
            for c, n, p, label, g in _features.get(key, load)
        ],
    }
