"""The data behind the maps, aggregated in PostGIS: what a map ships never grows with the cases.

Every function takes the session first and a ``scope`` (SQL condition on alias ``c``
and its parameters, from ``auth.permissions.case_scope_sql``), so a user's map counts
only the cases they may see. Areas come from the code prefix rule; boundaries leave
the database as GeoJSON, simplified to the view's scale. Case coordinates leave it
only in :func:`case_points`, which the views call for roles that may see single cases.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.cases.vocab import FINAL_STATUSES, RESOLVED_STATUSES
from webapp.grid.models import AreaLevel
from webapp.grid.queries import CASE_CODE_COLUMN
from webapp.hotspots import gistar
from webapp.hotspots.queries import CaseFilter, hot_spots
from webapp.maps.figures import AreaFigures

Scope = tuple[str, dict]
METRES_PER_DEGREE = 111_320.0
# A heat lattice never has more cells than this, whatever the area's size.
MAX_HEAT_CELLS = 40_000
# Gi* needs enough areas to compare; ArcGIS warns below 30.
MIN_HOTSPOT_AREAS = 30


def level_of(code: str) -> AreaLevel:
    """The level of an area from the length of its code."""
    return {6: AreaLevel.COUNTY, 9: AreaLevel.TOWNSHIP, 12: AreaLevel.VILLAGE}.get(
        len(code), AreaLevel.GRID
    )


def within_sql(code: str, alias: str = "c") -> str:
    """SQL condition: the case lies in the area ``:within`` (by the code column of its level)."""
    return f"{alias}.{CASE_CODE_COLUMN[level_of(code)]} = :within"


def _in(values) -> str:
    return "(" + ",".join(f"'{v}'" for v in sorted(str(s) for s in values)) + ")"


@dataclass(frozen=True)
class AreaInfo:
    code: str
    name: str
    level: AreaLevel
    population: int | None
    bounds: tuple[float, float, float, float]  # west, south, east, north (WGS84)

    @property
    def centre(self) -> tuple[float, float]:
        w, s, e, n = self.bounds
        return (w + e) / 2, (s + n) / 2


_AREA_COLUMNS = (
    "code, name, level, population, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)"
)


def _info(row) -> AreaInfo:
    return AreaInfo(row[0], row[1], AreaLevel(row[2]), row[3], (row[4], row[5], row[6], row[7]))


def area_info(session: Session, code: str) -> AreaInfo | None:
    row = session.execute(
        text(f"SELECT {_AREA_COLUMNS} FROM areas WHERE code = :code"), {"code": code}
    ).first()
    return _info(row) if row else None


def area_trail(session: Session, code: str) -> list[AreaInfo]:
    """The area's ancestors, county first (by the prefixes of its code)."""
    prefixes = [code[:n] for n in (6, 9, 12) if n < len(code)]
    if not prefixes:
        return []
    rows = session.execute(
        text(f"SELECT {_AREA_COLUMNS} FROM areas WHERE code = ANY(:codes) ORDER BY length(code)"),
        {"codes": prefixes},
    ).all()
    return [_info(r) for r in rows]


def child_areas(session: Session, area: AreaInfo) -> list[tuple[str, str]]:
    """(code, name) of the areas one level below ``area``, in code order."""
    child = area.level.child
    if child is None:
        return []
    rows = session.execute(
        text("SELECT code, name FROM areas WHERE level = :level AND code LIKE :prefix ORDER BY code"),
        {"level": child.value, "prefix": area.code + "%"},
    ).all()
    return [(r[0], r[1]) for r in rows]


def simplify_tolerance(bounds: tuple[float, float, float, float]) -> float:
    """A tolerance (degrees) about a pixel wide when the area fills a large screen."""
    w, s, e, n = bounds
    return max(e - w, n - s) / 3000.0


def area_features(session: Session, level: AreaLevel, within: str, tolerance: float) -> dict:
    """The areas of ``level`` inside the area ``within`` as a GeoJSON FeatureCollection (made in SQL).

    Properties: ``code``, ``name``, ``population``, ``label`` ([lon, lat] of a point
    inside the area). Geometries are simplified by ``tolerance`` degrees and rounded
    to 5 decimals (about a metre).
    """
    fc = session.execute(
        text(
            """
            SELECT json_build_object(
                'type', 'FeatureCollection',
                'features', coalesce(json_agg(json_build_object(
                    'type', 'Feature',
                    'properties', json_build_object(
                        'code', a.code, 'name', a.name, 'population', a.population,
                        'label', json_build_array(round(ST_X(a.label_point)::numeric, 6),
                                                  round(ST_Y(a.label_point)::numeric, 6))),
                    'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), 5)::json
                ) ORDER BY a.code), '[]'::json))
            FROM areas a
            WHERE a.level = :level AND a.code LIKE :prefix
            """
        ),
        {"level": level.value, "prefix": within + "%", "tol": tolerance},
    ).scalar_one()
    return fc if isinstance(fc, dict) else json.loads(fc)


def area_outline(session: Session, code: str, tolerance: float) -> dict:
    """The boundary of one area as a GeoJSON geometry."""
    out = session.execute(
        text(
            "SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tol), 5) FROM areas WHERE code = :code"
        ),
        {"code": code, "tol": tolerance},
    ).scalar_one()
    return json.loads(out)


def area_figures(
    session: Session, level: AreaLevel, within: str, case_filter: CaseFilter, scope: Scope
) -> dict[str, AreaFigures]:
    """Every figure's counts for each area of ``level`` inside ``within`` (areas without cases too)."""
    column = CASE_CODE_COLUMN[level]
    fsql, fparams = case_filter.sql("c")
    ssql, sparams = scope
    rows = session.execute(
        text(
            f"""
            SELECT a.code, a.population,
                   coalesce(n.raised, 0), coalesce(n.people, 0), coalesce(n.resolved, 0),
                   coalesce(n.overdue, 0), coalesce(n.followed_up, 0), coalesce(n.satisfied, 0),
                   coalesce(n.repeats, 0)
            FROM areas a
            LEFT JOIN (
                SELECT c.{column} AS code,
                       count(*) AS raised,
                       sum(c.people_count) AS people,
                       count(*) FILTER (WHERE c.status IN {_in(RESOLVED_STATUSES)}) AS resolved,
                       count(*) FILTER (WHERE c.concluded_at IS NULL AND c.due_at < now()
                                          AND c.status NOT IN {_in(FINAL_STATUSES)}) AS overdue,
                       count(*) FILTER (WHERE c.satisfaction IS NOT NULL) AS followed_up,
                       count(*) FILTER (WHERE c.satisfaction IN ('satisfied', 'basically')) AS satisfied,
                       count(*) FILTER (WHERE NOT c.is_first) AS repeats
                FROM cases c
                WHERE {within_sql(within)} AND {fsql} AND {ssql}
                GROUP BY c.{column}
            ) n ON n.code = a.code
            WHERE a.level = :level AND a.code LIKE :prefix
            """
        ),
        {**fparams, **sparams, "within": within, "level": level.value, "prefix": within + "%"},
    ).all()
    return {
        r[0]: AreaFigures(
            int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7]), int(r[8]), r[1]
        )
        for r in rows
    }


# -- heat ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeatLattice:
    """Case weights summed over a regular lattice of cells covering an area (WGS84 degrees).

    ``weights[j, i]`` is the cell ``i`` columns east of ``west`` and ``j`` rows north
    of ``south``. Only these sums leave the database, never a case's coordinates.
    """

    west: float
    south: float
    dx: float
    dy: float
    cell_m: float
    weights: np.ndarray  # (rows, cols)
    cases: int
    people: int
    weight: str  # "people" or "cases"

    @property
    def rows(self) -> int:
        return int(self.weights.shape[0])

    @property
    def cols(self) -> int:
        return int(self.weights.shape[1])


def lattice_for(
    bounds: tuple[float, float, float, float], cell_m: float
) -> tuple[float, float, int, int, float]:
    """(dx, dy, cols, rows, cell_m) of a lattice of ~``cell_m`` cells over ``bounds``, capped in size."""
    w, s, e, n = bounds
    coslat = max(math.cos(math.radians((s + n) / 2)), 0.01)
    while True:
        dy = cell_m / METRES_PER_DEGREE
        dx = cell_m / (METRES_PER_DEGREE * coslat)
        cols = max(1, math.ceil((e - w) / dx))
        rows = max(1, math.ceil((n - s) / dy))
        if cols * rows <= MAX_HEAT_CELLS:
            return dx, dy, cols, rows, cell_m
        cell_m *= 1.25


def heat_lattice(
    session: Session,
    area: AreaInfo,
    cell_m: float,
    case_filter: CaseFilter,
    scope: Scope,
    weight: str = "people",
) -> HeatLattice:
    """Sum the cases of ``area`` (or their people) into lattice cells with ST_SnapToGrid."""
    w, s, _, _ = area.bounds
    dx, dy, cols, rows, cell_m = lattice_for(area.bounds, cell_m)
    x0, y0 = w + dx / 2, s + dy / 2  # the centre of cell (0, 0): snapping goes to cell centres
    fsql, fparams = case_filter.sql("c")
    ssql, sparams = scope
    result = session.execute(
        text(
            f"""
            WITH cell AS (
                SELECT ST_SnapToGrid(c.location, :x0, :y0, :dx, :dy) AS centre, c.people_count
                FROM cases c
                WHERE {within_sql(area.code)} AND {fsql} AND {ssql}
            )
            SELECT round((ST_X(centre) - :x0) / :dx)::int, round((ST_Y(centre) - :y0) / :dy)::int,
                   count(*), sum(people_count)
            FROM cell GROUP BY centre
            """
        ),
        {**fparams, **sparams, "within": area.code, "x0": x0, "y0": y0, "dx": dx, "dy": dy},
    ).all()
    grid = np.zeros((rows, cols))
    cases = people = 0
    if result:
        arr = np.array(result, dtype=float)
        i = np.clip(arr[:, 0].astype(int), 0, cols - 1)
        j = np.clip(arr[:, 1].astype(int), 0, rows - 1)
        np.add.at(grid, (j, i), arr[:, 3] if weight == "people" else arr[:, 2])
        cases, people = int(arr[:, 2].sum()), int(arr[:, 3].sum())
    return HeatLattice(w, s, dx, dy, cell_m, grid, cases, people, weight)


# -- single cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CasePoint:
    """What a case marker shows: no personal data."""

    id: int
    number: str
    title: str
    category: str
    status: str
    lon: float
    lat: float
    approximate: bool


def count_cases(session: Session, within: str, case_filter: CaseFilter, scope: Scope) -> int:
    fsql, fparams = case_filter.sql("c")
    ssql, sparams = scope
    return session.execute(
        text(f"SELECT count(*) FROM cases c WHERE {within_sql(within)} AND {fsql} AND {ssql}"),
        {**fparams, **sparams, "within": within},
    ).scalar_one()


def case_points(
    session: Session, within: str, case_filter: CaseFilter, scope: Scope, limit: int
) -> list[CasePoint]:
    """The newest ``limit`` cases of the area, for markers (only for roles that may see single cases)."""
    fsql, fparams = case_filter.sql("c")
    ssql, sparams = scope
    rows = session.execute(
        text(
            f"""
            SELECT c.id, c.number, c.title, k.name, c.status, ST_X(c.location), ST_Y(c.location),
                   c.location_approx
            FROM cases c JOIN categories k ON k.id = c.category_id
            WHERE {within_sql(within)} AND {fsql} AND {ssql}
            ORDER BY c.reported_at DESC, c.id DESC
            LIMIT :limit
            """
        ),
        {**fparams, **sparams, "within": within, "limit": limit},
    ).all()
    return [CasePoint(*r) for r in rows]


# -- hot spots --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HotSpotAnalysis:
    """Gi* over the areas of ``level`` in ``region``; the map shows those inside the view area."""

    result: gistar.HotSpots | None  # None: too few areas to analyse
    region: AreaInfo
    level: AreaLevel
    units: int  # areas in the region
    per_1000: bool


def count_areas(session: Session, level: AreaLevel, within: str) -> int:
    return session.execute(
        text("SELECT count(*) FROM areas WHERE level = :level AND code LIKE :prefix"),
        {"level": level.value, "prefix": within + "%"},
    ).scalar_one()


def analysis_region(session: Session, area: AreaInfo, level: AreaLevel, root: str) -> AreaInfo:
    """The area Gi* runs over: ``area``, or its nearest ancestor within ``root`` with enough areas.

    Gi* compares each area with the whole region, so a village's three grids make no
    analysis: the region widens (never beyond what the user may see) until it holds
    :data:`MIN_HOTSPOT_AREAS` areas of ``level``.
    """
    region = area
    if count_areas(session, level, area.code) >= MIN_HOTSPOT_AREAS:
        return region
    for ancestor in reversed(area_trail(session, area.code)):
        if not ancestor.code.startswith(root):
            break
        region = ancestor
        if count_areas(session, level, ancestor.code) >= MIN_HOTSPOT_AREAS:
            break
    return region


def area_hot_spots(
    session: Session,
    area: AreaInfo,
    level: AreaLevel,
    root: str,
    case_filter: CaseFilter,
    scope: Scope,
    per_1000: bool = False,
    neighbourhood: str = "queen",
    band_m: float | None = None,
    fdr: bool = False,
) -> HotSpotAnalysis:
    """Gi* hot spots of case counts per area of ``level`` (see :func:`analysis_region`)."""
    region = analysis_region(session, area, level, root)
    units = count_areas(session, level, region.code)
    result = None
    if units >= 3:
        result = hot_spots(
            session,
            level,
            region.code,
            case_filter,
            scope,
            per_1000=per_1000,
            neighbourhood=neighbourhood,
            threshold_m=band_m,
            fdr=fdr,
        )
    return HotSpotAnalysis(result, region, level, units, per_1000)
