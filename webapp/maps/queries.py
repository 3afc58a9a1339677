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
import re
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.grid.models import AreaLevel
from webapp.grid.queries import CASE_CODE_COLUMN, get_area
from webapp.hotspots import gistar
from webapp.hotspots.queries import CaseFilter, hot_spots, ragged_days, tally_query
from webapp.maps.figures import AREA_FIGURE_KEYS, AreaFigures
from webapp.stats.models import HEAT_COARSE, HEAT_PER_DEGREE_X, HEAT_PER_DEGREE_Y
from webapp.stats.queries import AREA_SCOPE, Filters, Grouping, Period, StatsQuery, figure_rows

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
        text(
            "SELECT code, name FROM areas WHERE level = :level AND code LIKE :prefix ORDER BY code"
        ),
        {"level": child.value, "prefix": area.code + "%"},
    ).all()
    return [(r[0], r[1]) for r in rows]


def simplify_tolerance(bounds: tuple[float, float, float, float]) -> float:
    """A tolerance (degrees) about a pixel wide when the area fills a large screen."""
    w, s, e, n = bounds
    return max(e - w, n - s) / 3000.0


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
    session: Session,
    level: AreaLevel,
    within: str,
    period: Period,
    filters: Filters,
    scope: Scope,
    keys: tuple[str, ...] = AREA_FIGURE_KEYS,
) -> dict[str, AreaFigures]:
    """The map's figures ``keys`` for each area of ``level`` inside ``within`` (areas without cases too).

    Computed by the statistics queries, so a map's figures are the dashboard's and the
    API's for the same area, period, filters and scope. A map asks only for the figures
    it shows (the rates cost the most: at a million cases the county's 1,026 grids took
    ~55 ms for all of them); with no ``keys`` there is no query at all.
    """
    if not keys:
        return {}
    area = get_area(session, within)
    if area is None:
        return {}
    query = StatsQuery(
        area=area,
        period=period,
        grouping=Grouping("area", level),
        filters=filters,
        scope=scope,
        only=keys,
    )
    return {r["code"]: AreaFigures(r, r["population"]) for r in figure_rows(session, query)}


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


@dataclass(frozen=True)
class Lattice:
    """A heat lattice made of the heat tally's fixed cells (``stats.models.HeatTally``).

    A cell is ``cells`` fine cells a side, or, finer than the fine cells, one fine cell
    split ``split`` times a side (one of the two is 1). Column ``x0 + i`` of the lattice
    holds the points whose ``heat_cell(lon, HEAT_PER_DEGREE_X * split, cells)`` is it
    (rows likewise), so a lattice of whole fine cells is a re-binning of the tally's.
    """

    cells: int
    split: int
    x0: int
    y0: int
    cols: int
    rows: int
    cell_m: float

    @property
    def per_degree(self) -> tuple[int, int]:
        return HEAT_PER_DEGREE_X * self.split, HEAT_PER_DEGREE_Y * self.split

    @property
    def dx(self) -> float:
        return self.cells / self.per_degree[0]

    @property
    def dy(self) -> float:
        return self.cells / self.per_degree[1]

    @property
    def west(self) -> float:
        return self.x0 * self.dx

    @property
    def south(self) -> float:
        return self.y0 * self.dy


def _fine_cell_m(bounds: tuple[float, float, float, float]) -> tuple[float, float]:
    """The width and height in metres of a fine cell in the middle of ``bounds``."""
    _, s, _, n = bounds
    coslat = max(math.cos(math.radians((s + n) / 2)), 0.01)
    return METRES_PER_DEGREE * coslat / HEAT_PER_DEGREE_X, METRES_PER_DEGREE / HEAT_PER_DEGREE_Y


def _coarser(cells: int, split: int) -> tuple[int, int]:
    """The next lattice size up: a fine cell split less, then 2, 3, 4 fine cells, then
    multiples of a coarse cell (which the tally's coarse cells give)."""
    if split > 1:
        return 1, split - 1
    if cells < HEAT_COARSE - 1:
        return cells + 1, 1
    return HEAT_COARSE * (cells // HEAT_COARSE + 1), 1


def lattice_for(
    bounds: tuple[float, float, float, float], cell_m: float, min_cell_m: float = 0.0
) -> Lattice:
    """A lattice of cells of about ``cell_m`` over ``bounds``, capped in size.

    Cells are whole fine cells of the heat tally (from 4.5 fine cells up, whole coarse
    cells), or a fine cell split in 2 to 4 for a view that asks for cells under 3/4 of
    one. No side is under ``min_cell_m``; the lattice has at most
    :data:`MAX_HEAT_CELLS` cells (cells grow until it fits).
    """
    w, s, e, n = bounds
    fine_x, fine_y = _fine_cell_m(bounds)
    ratio = cell_m / math.sqrt(fine_x * fine_y)
    if ratio < 0.75:
        cells, split = 1, min(4, max(2, round(1 / ratio)))
    elif ratio < HEAT_COARSE - 0.5:
        cells, split = max(1, round(ratio)), 1
    else:
        cells, split = HEAT_COARSE * round(ratio / HEAT_COARSE), 1
    while True:
        side = cells / split
        per_x, per_y = HEAT_PER_DEGREE_X * split, HEAT_PER_DEGREE_Y * split
        x0, y0 = (
            math.floor(math.floor(w * per_x) / cells),
            math.floor(math.floor(s * per_y) / cells),
        )
        cols = math.floor(math.floor(e * per_x) / cells) - x0 + 1
        rows = math.floor(math.floor(n * per_y) / cells) - y0 + 1
        small = side * min(fine_x, fine_y) < min_cell_m
        if not small and cols * rows <= MAX_HEAT_CELLS:
            return Lattice(cells, split, x0, y0, cols, rows, side * math.sqrt(fine_x * fine_y))
        cells, split = _coarser(cells, split)


def heat_within_sql(code: str, alias: str = "c") -> tuple[str, dict]:
    """SQL condition: the case (or tally row) is in the area ``code``, with its ancestors' codes.

    The ancestors' codes (prefixes of ``code``) hold for every case of the area; naming
    them lets the heat tally's key (county, township, month, ...) be searched by range.
    Both heat paths use this condition, so they select the same cases.
    """
    level = level_of(code)
    params = {"h_county": code[:6]}
    parts = [f"{alias}.county_code = :h_county"]
    if level is not AreaLevel.COUNTY:
        parts.append(f"{alias}.township_code = :h_township")
        params["h_township"] = code[:9]
    if level in (AreaLevel.VILLAGE, AreaLevel.GRID):
        parts.append(f"{alias}.village_code = :h_village")
        params["h_village"] = code[:12]
    if level is AreaLevel.GRID:
        parts.append(f"{alias}.grid_code = :h_grid")
        params["h_grid"] = code
    return " AND ".join(parts), params


# A scope the coarse heat cells (keyed by county and township) can apply.
_TALLY_SCOPE = re.compile(r"true|c\.(county|township)_code = :scope_[a-z_]+")


@dataclass(frozen=True)
class HeatPlan:
    """Where a heat lattice's whole months come from: the heat tally's cells of ``scale``."""

    scale: int  # HEAT_COARSE
    months: tuple[date, date]  # [from, to), local months
    ragged: tuple[tuple[datetime, datetime], ...]  # the instants read from the cases


def heat_plan(
    session: Session, area: AreaInfo, lattice: Lattice, case_filter: CaseFilter, scope: Scope
) -> HeatPlan | None:
    """How :func:`heat_lattice` reads the tally for ``lattice``, or None: from the cases only.

    The tally answers where the case tallies do (``hotspots.queries.tally_query``: no
    kind of case chosen, an area scope, no time stored ahead of now, a whole month in
    the period) for a lattice of whole coarse cells over a county or a township, under
    a scope of a county or a township (the tally's rows carry no village or grid).

    A village's or a grid's view reads its own cases: coarse cells cross village
    borders, so they cannot say which of their cases lie in the village (or in a
    village informant's scope), and a fine level cost a copy of the cases (w01).
    """
    if lattice.split != 1 or lattice.cells % HEAT_COARSE != 0:
        return None
    if level_of(area.code) not in (AreaLevel.COUNTY, AreaLevel.TOWNSHIP):
        return None
    if not _TALLY_SCOPE.fullmatch(scope[0].strip()):
        return None  # the statistics answer a unit's scope from the tallies; the heat cannot
    planned = tally_query(session, level_of(area.code), area.code, case_filter, scope)
    if planned is None:
        return None
    months = planned[1].months
    return HeatPlan(HEAT_COARSE, months, tuple(ragged_days(case_filter, months)))


def heat_lattice(
    session: Session,
    area: AreaInfo,
    cell_m: float,
    case_filter: CaseFilter,
    scope: Scope,
    weight: str = "people",
    min_cell_m: float = 0.0,
    raw: bool = False,
) -> HeatLattice:
    """Sum the cases of ``area`` (or their people) into the cells of :func:`lattice_for`.

    The whole months of the period come from the heat tally when that gives exactly
    the cases' sums (:func:`heat_plan`): its cells re-binned to the lattice in SQL. The
    ragged days at either end come from the cases. Otherwise, or with ``raw``, every
    case of the period is read (the tests compare both).
    """
    lat = lattice_for(area.bounds, cell_m, min_cell_m)
    per_x, per_y = lat.per_degree
    plan = None if raw else heat_plan(session, area, lat, case_filter, scope)
    where, params = heat_within_sql(area.code)
    ssql, sparams = scope
    params.update(sparams)
    params.update({"cells": lat.cells, "per_x": per_x, "per_y": per_y})
    raw_cells = (
        "SELECT heat_cell(ST_X(c.location), :per_x, :cells) AS x,"
        " heat_cell(ST_Y(c.location), :per_y, :cells) AS y, 1 AS cases, c.people_count AS people"
        f" FROM cases c WHERE {where} AND ({ssql})"
    )
    if plan is None:
        fsql, fparams = case_filter.sql("c")
        params.update(fparams)
        parts = [f"{raw_cells} AND {fsql}"]
    else:
        parts = []
        if plan.ragged:
            arms = []
            for i, (lo, hi) in enumerate(plan.ragged):
                arms.append(f"(c.reported_at >= :r_from_{i} AND c.reported_at < :r_to_{i})")
                params.update({f"r_from_{i}": lo, f"r_to_{i}": hi})
            parts.append(f"{raw_cells} AND ({' OR '.join(arms)})")
        params.update(
            {
                "scale": plan.scale,
                "per_scale": lat.cells // plan.scale,
                "m_from": plan.months[0],
                "m_to": plan.months[1],
            }
        )
        parts.append(
            "SELECT floor(c.cx::float8 / :per_scale)::integer AS x,"
            " floor(c.cy::float8 / :per_scale)::integer AS y, c.cases, c.people"
            f" FROM heat_tallies c WHERE c.scale = :scale AND {where} AND ({ssql})"
            " AND c.month >= :m_from AND c.month < :m_to"
        )
    union = "\n            UNION ALL\n            ".join(parts)
    result = session.execute(
        text(
            f"""
            SELECT x - :x0, y - :y0, sum(cases), sum(people)
            FROM (
            {union}
            ) cell
            GROUP BY x, y
            """
        ),
        {**params, "x0": lat.x0, "y0": lat.y0},
    ).all()
    grid = np.zeros((lat.rows, lat.cols))
    cases = people = 0
    if result:
        # Plain tuples: numpy probes each Row for array interfaces, which costs more than the query.
        arr = np.array([tuple(r) for r in result], dtype=float)
        i = np.clip(arr[:, 0].astype(int), 0, lat.cols - 1)
        j = np.clip(arr[:, 1].astype(int), 0, lat.rows - 1)
        np.add.at(grid, (j, i), arr[:, 3] if weight == "people" else arr[:, 2])
        cases, people = int(arr[:, 2].sum()), int(arr[:, 3].sum())
    return HeatLattice(lat.west, lat.south, lat.dx, lat.dy, lat.cell_m, grid, cases, people, weight)


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


def count_cases(
    session: Session, within: str, case_filter: CaseFilter, scope: Scope, raw: bool = False
) -> int:
    """How many cases of the area ``within`` match the filter in the scope.

    Whole months from the case tallies where they give the cases' count
    (``hotspots.queries.tally_query``), the ragged days from the cases; all from the
    cases otherwise, or with ``raw``.
    """
    ssql, sparams = scope
    params = {**sparams, "within": within}
    planned = None
    if not raw and AREA_SCOPE.fullmatch(ssql.strip()):  # the tallies carry no unit
        planned = tally_query(session, level_of(within), within, case_filter, scope)
    if planned is None:
        fsql, fparams = case_filter.sql("c")
        return session.execute(
            text(f"SELECT count(*) FROM cases c WHERE {within_sql(within)} AND {fsql} AND {ssql}"),
            {**params, **fparams},
        ).scalar_one()
    months = planned[1].months
    arms = ["false"]
    for i, (lo, hi) in enumerate(ragged_days(case_filter, months)):
        arms.append(f"(c.reported_at >= :r_from_{i} AND c.reported_at < :r_to_{i})")
        params.update({f"r_from_{i}": lo, f"r_to_{i}": hi})
    return session.execute(
        text(
            f"""
            SELECT (SELECT coalesce(sum(c.cases), 0) FROM case_tallies c
                    WHERE {within_sql(within)} AND {ssql}
                      AND c.month >= :m_from AND c.month < :m_to)
                 + (SELECT count(*) FROM cases c
                    WHERE {within_sql(within)} AND {ssql} AND ({" OR ".join(arms)}))
            """
        ),
        {**params, "m_from": months[0], "m_to": months[1]},
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
