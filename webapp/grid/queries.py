"""Queries on areas: locating a point, listing members of a level, summaries."""

from __future__ import annotations

import json
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
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'features', coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'properties', json_build_object(
                'code', a.code, 'name', a.name, 'population', a.population,
                'label', json_build_array(round(ST_X(a.label_point)::numeric, 6),
                                          round(ST_Y(a.label_point)::numeric, 6))),
            'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), :digits)::json
        ) ORDER BY a.code), '[]'::json))
    FROM areas a
    WHERE a.level = :level AND a.code LIKE :prefix
"""


def area_features(
    session: Session, level: AreaLevel, within: str, tolerance: float, digits: int = 5
) -> dict:
    """The areas of ``level`` inside the area ``within`` as a GeoJSON FeatureCollection (made in SQL).

    Properties: ``code``, ``name``, ``population``, ``label`` ([lon, lat] of a point
    inside the area). Boundaries are simplified by ``tolerance`` degrees (topology kept)
    and rounded to ``digits`` decimals (5: about a metre). Areas in code order.
    """
    fc = session.execute(
        text(AREA_FEATURES_SQL),
        {"level": AreaLevel(level).value, "prefix": within + "%", "tol": tolerance, "digits": digits},
    ).scalar_one()
    return fc if isinstance(fc, dict) else json.loads(fc)
