"""The road network in SQL: its state, its topology, and distances and paths along it.

Routing needs two things: the county's road layer (``roads`` with their junctions in
``road_vertices``) and the ``pgrouting`` extension. :func:`network` says whether both
are there; without either, callers measure straight lines, and say so.

A point (a stop, a start) joins the network at its nearest junction, by a straight
line whose geodesic length is added to the walk ("access"). Two points that join at
the same junction are measured by their straight line; two points whose junctions the
network does not connect are measured straight too, and flagged ``no_path``. All
lengths are geodesic metres on the WGS84 ellipsoid. Functions take the session first,
flush but never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyproj import Geod
from sqlalchemy import text
from sqlalchemy.orm import Session

GEOD = Geod(ellps="WGS84")
# Line ends closer than this (in degrees, about a centimetre) are one junction.
SNAP_GRID_DEG = 1e-7
# Candidates by planar <-> distance (degrees) before the geodesic nearest is picked:
# a degree of longitude is shorter than one of latitude away from the equator.
SNAP_CANDIDATES = 8


@dataclass(frozen=True)
class RoadNetwork:
    """What a county has for routing along roads."""

    county_code: str
    pgrouting: str | None  # the extension's version; None when it is not installed
    edges: int  # road pieces of the county

    @property
    def routable(self) -> bool:
        return self.pgrouting is not None and self.edges > 0

    @property
    def status(self) -> str:
        """``roads``, ``no_roads`` (no layer for the county) or ``no_pgrouting``."""
        if self.edges == 0:
            return "no_roads"
        return "roads" if self.pgrouting else "no_pgrouting"

    @property
    def label(self) -> str:
        """What a planner reads about how routes are measured (Chinese)."""
        return {
            "roads": "路线沿道路计算（本县道路图层，pgRouting）",
            "no_roads": "本县尚未导入道路图层，路线按直线距离计算",
            "no_pgrouting": "数据库未安装 pgRouting 扩展，路线按直线距离计算",
        }[self.status]


def pgrouting_version(session: Session) -> str | None:
    """The installed pgRouting version (as ``pgr_version()`` reports it), or None."""
    return session.execute(
        text("SELECT extversion FROM pg_extension WHERE extname = 'pgrouting'")
    ).scalar()


def network(session: Session, county_code: str) -> RoadNetwork:
    """The road network of a county and whether it can be routed on."""
    edges = session.execute(
        text("SELECT count(*) FROM roads WHERE county_code = :c"), {"c": county_code}
    ).scalar_one()
    return RoadNetwork(county_code, pgrouting_version(session), edges)


def build_topology(session: Session, county_code: str) -> int:
    """Give the county's road pieces junction ids (``source``, ``target``); return the count.

    Done in SQL the way ``pgr_extractVertices`` does it: every piece's two ends,
    snapped to a one-centimetre grid, are the junctions; pieces whose ends coincide
    share one. (Pieces are split where they share an interior vertex when imported,
    so a road passing through a crossing meets the roads that end there.)
    """
    session.execute(text("DELETE FROM road_vertices WHERE county_code = :c"), {"c": county_code})
    session.execute(
        text(
            """
            WITH ends AS (
                SELECT id,
                       ST_AsBinary(ST_SnapToGrid(ST_StartPoint(geom), :grid)) AS s,
                       ST_AsBinary(ST_SnapToGrid(ST_EndPoint(geom), :grid)) AS t
                FROM roads WHERE county_code = :c
            ),
            keys AS (SELECT s AS k FROM ends UNION SELECT t FROM ends),
            made AS (
                INSERT INTO road_vertices (county_code, geom)
                SELECT :c, ST_SetSRID(ST_GeomFromWKB(k), 4326) FROM keys ORDER BY k
                RETURNING id, ST_AsBinary(geom) AS k
            )
            UPDATE roads r SET source = vs.id, target = vt.id
            FROM ends e JOIN made vs ON vs.k = e.s JOIN made vt ON vt.k = e.t
            WHERE r.id = e.id
            """
        ),
        {"c": county_code, "grid": SNAP_GRID_DEG},
    )
    session.flush()
    return session.execute(
        text("SELECT count(*) FROM road_vertices WHERE county_code = :c"), {"c": county_code}
    ).scalar_one()


def components(session: Session, county_code: str) -> int | None:
    """How many separate pieces the county's network falls into (None without pgRouting)."""
    if pgrouting_version(session) is None:
        return None
    return session.execute(
        text(f"SELECT count(DISTINCT component) FROM pgr_connectedComponents({EDGES_SQL})"),
        {"road_county": county_code},
    ).scalar_one()


# The edges pgRouting reads: the county's pieces, walkable both ways at their length.
# ``format(%L)`` quotes the county code inside the query text pgRouting runs.
EDGES_SQL = (
    "format('SELECT id, source, target, length_m AS cost FROM roads "
    "WHERE county_code = %L AND source IS NOT NULL', CAST(:road_county AS text))"
)


def nearest_vertex_sql(point: str) -> str:
    """A LATERAL subquery: the county's junction nearest (geodesically) to ``point``."""
    return f"""
        SELECT c.id, c.geom FROM (
            SELECT v.id, v.geom FROM road_vertices v
            WHERE v.county_code = :road_county
            ORDER BY v.geom <-> {point} LIMIT {SNAP_CANDIDATES}
        ) c
        ORDER BY ST_Distance(c.geom::geography, ({point})::geography), c.id LIMIT 1
    """


# -- distances between points (for ordering a route) ----------------------------------


@dataclass(frozen=True)
class DistanceMatrix:
    """Walking distances between points, and how each was measured."""

    metres: np.ndarray  # [i, j]: metres from point i to point j
    no_path: np.ndarray  # [i, j]: the network does not join them (measured straight)
    by_road: bool  # measured along roads at all (False: straight lines throughout)
    # [i]: the junction point i joins the network at (by road only), for measured_legs_sql
    junctions: np.ndarray | None = None


def straight_matrix(
    points: Sequence[tuple[float, float]], wanted: np.ndarray | None = None
) -> np.ndarray:
    """Geodesic distances between all pairs of (lon, lat) points, in metres.

    With ``wanted`` (a boolean matrix), only those pairs are measured; the others are 0.
    """
    n = len(points)
    lon = np.array([p[0] for p in points], dtype=float)
    lat = np.array([p[1] for p in points], dtype=float)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    if wanted is not None:
        upper &= wanted | wanted.T
    i, j = np.nonzero(upper)
    out = np.zeros((n, n))
    if len(i):
        _, _, d = GEOD.inv(lon[i], lat[i], lon[j], lat[j])
        out[i, j] = d
        out[j, i] = d
    return out


def junctions(
    session: Session, net: RoadNetwork, points: Sequence[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """The junction each (lon, lat) point joins the roads at, and its access in metres.

    One statement for any number of points (the routes of a whole plan at once).
    """
    if not points:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    vid, access = session.execute(
        text(
            f"""
            WITH pts AS (
                SELECT t.ord, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326) AS geom
                FROM unnest(CAST(:lon AS float8[]), CAST(:lat AS float8[]))
                     WITH ORDINALITY AS t(lon, lat, ord)
            )
            SELECT array_agg(v.id ORDER BY p.ord),
                   array_agg(ST_Distance(p.geom::geography, v.geom::geography) ORDER BY p.ord)
            FROM pts p CROSS JOIN LATERAL ({nearest_vertex_sql("p.geom")}) v
            """
        ),
        {
            "lon": [float(p[0]) for p in points],
            "lat": [float(p[1]) for p in points],
            "road_county": net.county_code,
        },
    ).one()
    return np.array(vid, dtype=np.int64), np.array(access, dtype=float)


def distance_matrix(
    session: Session,
    net: RoadNetwork,
    points: Sequence[tuple[float, float]],
    joined: tuple[np.ndarray, np.ndarray] | None = None,
) -> DistanceMatrix:
    """Distances between all pairs of ``points`` along the county's roads when it can.

    ``points[i]`` is (lon, lat). Along roads: access to the nearest junction + the
    shortest path (``pgr_dijkstraCostMatrix``) + access from the other junction;
    straight where both join at the same junction or the network does not join them.
    ``joined``: the points' :func:`junctions`, when already known.
    """
    n = len(points)
    no_path = np.zeros((n, n), dtype=bool)
    if not net.routable or n < 2:
        return DistanceMatrix(straight_matrix(points), no_path, False)
    vid, access = joined if joined is not None else junctions(session, net, points)
    nodes, k = np.unique(vid, return_inverse=True)
    # One row of three arrays: thousands of pairs a call, read without a row object each.
    a, b, c = session.execute(
        text(
            f"""
            SELECT array_agg(start_vid), array_agg(end_vid), array_agg(agg_cost)
            FROM pgr_dijkstraCostMatrix({EDGES_SQL}, CAST(:vids AS bigint[]), false)
            """
        ),
        {"vids": nodes.tolist(), "road_county": net.county_code},
    ).one()
    between = np.full((len(nodes), len(nodes)), np.nan)  # junction to junction
    np.fill_diagonal(between, 0.0)
    if a:
        a, b, c = np.array(a), np.array(b), np.array(c, dtype=float)
        between[np.searchsorted(nodes, a), np.searchsorted(nodes, b)] = c
    walk = between[k[:, None], k[None, :]]
    same = k[:, None] == k[None, :]
    no_path = np.isnan(walk)
    by_road = ~same & ~no_path
    straight = straight_matrix(points, ~by_road)  # the few pairs not measured by road
    metres = np.where(by_road, access[:, None] + np.nan_to_num(walk) + access[None, :], straight)
    return DistanceMatrix(metres, no_path, True, vid)


# -- legs along the network (for measuring and drawing a route) -----------------------


def measured_legs_sql(legs: str, net: RoadNetwork, joined: bool = False) -> str:
    """CTEs that measure the legs ``legs`` (a query of ``id, a, b``: two points each).

    The last CTE, ``measured``, has ``id, leg_m, leg_kind, leg_path``: along roads
    (``pgr_dijkstra`` on the pairs of junctions, its path edges turned to run from
    ``a`` to ``b`` and joined, with the access lines at both ends) when the network is
    routable, else straight. Parameters: ``:road_county``. With ``joined``, ``legs``
    also gives the junctions its ends join the network at (``va``, ``vb``: as
    :func:`distance_matrix` found them), which are then not looked up again.
    """
    if not net.routable:
        return f"""
            legs AS ({legs}),
            measured AS (
                SELECT id, ST_Distance(a::geography, b::geography) AS leg_m,
                       'straight'::text AS leg_kind, NULL::geometry AS leg_path
                FROM legs
            )
        """
    if joined:
        ends = """
        ends AS (
            SELECT l.id, l.a, l.b, l.va, ga.geom AS ga, l.vb, gb.geom AS gb
            FROM legs l
            LEFT JOIN road_vertices ga ON ga.id = l.va
            LEFT JOIN road_vertices gb ON gb.id = l.vb
        ),
        """
    else:
        ends = f"""
        -- Each distinct point joins the network once (a route's legs share their ends):
        -- the first of its copies looks the junction up, the others take it over. No
        -- join of the legs with their points, whose row counts the planner cannot know.
        ends_of_legs AS (
            SELECT p.*, ST_AsEWKB(p.geom) AS k FROM (
                SELECT l.id, false AS is_b, l.a AS geom FROM legs l
                UNION ALL
                SELECT l.id, true, l.b FROM legs l
            ) p
        ),
        firsts AS (
            SELECT e.*, row_number() OVER (PARTITION BY e.k ORDER BY e.id, e.is_b) = 1 AS first
            FROM ends_of_legs e
        ),
        looked_up AS (
            SELECT f.id, f.is_b, f.geom, f.k, f.first, v.id AS vid, v.geom AS vgeom
            FROM firsts f
            LEFT JOIN LATERAL (  -- OFFSET 0: looked up only for a first copy
                SELECT n.* FROM ({nearest_vertex_sql("f.geom")}) n WHERE f.first OFFSET 0
            ) v ON true
        ),
        shared AS (
            SELECT u.id, u.is_b, u.geom,
                   first_value(u.vid) OVER w AS vid, first_value(u.vgeom) OVER w AS vgeom
            FROM looked_up u
            WINDOW w AS (PARTITION BY u.k ORDER BY u.first DESC)
        ),
        ends AS (
            SELECT s.id,
                   (array_agg(s.geom) FILTER (WHERE NOT s.is_b))[1] AS a,
                   (array_agg(s.geom) FILTER (WHERE s.is_b))[1] AS b,
                   min(s.vid) FILTER (WHERE NOT s.is_b) AS va,
                   (array_agg(s.vgeom) FILTER (WHERE NOT s.is_b))[1] AS ga,
                   min(s.vid) FILTER (WHERE s.is_b) AS vb,
                   (array_agg(s.vgeom) FILTER (WHERE s.is_b))[1] AS gb
            FROM shared s
            GROUP BY s.id
        ),
        """
    return f"""
        legs AS ({legs}),
        {ends}
        pairs AS (SELECT DISTINCT va, vb FROM ends WHERE va <> vb),
        steps AS (
            SELECT d.start_vid, d.end_vid, d.path_seq, d.node, d.edge, d.cost
            FROM pgr_dijkstra(
                {EDGES_SQL},
                (SELECT format('SELECT unnest(%L::bigint[]) AS source, '
                               'unnest(%L::bigint[]) AS target',
                               array_agg(va ORDER BY va, vb), array_agg(vb ORDER BY va, vb))
                 FROM pairs),
                false) d
        ),
        paths AS MATERIALIZED (  -- built once, whatever join the caller makes of the legs
            SELECT s.start_vid, s.end_vid, sum(s.cost) AS cost,
                   ST_MakeLine(CASE WHEN s.node = r.source THEN r.geom ELSE ST_Reverse(r.geom) END
                               ORDER BY s.path_seq) AS line
            FROM steps s JOIN roads r ON r.id = s.edge
            GROUP BY s.start_vid, s.end_vid
        ),
        measured AS (
            SELECT e.id,
                   CASE WHEN p.cost IS NOT NULL
                        THEN ST_Distance(e.a::geography, e.ga::geography) + p.cost
                             + ST_Distance(e.gb::geography, e.b::geography)
                        ELSE ST_Distance(e.a::geography, e.b::geography) END AS leg_m,
                   CASE WHEN e.va IS NULL THEN 'straight'
                        WHEN e.va = e.vb OR p.cost IS NOT NULL THEN 'road'
                        ELSE 'no_path' END AS leg_kind,
                   CASE WHEN p.cost IS NOT NULL
                        THEN ST_RemoveRepeatedPoints(ST_MakeLine(ARRAY[e.a, p.line, e.b]))
                        WHEN e.va = e.vb THEN ST_MakeLine(e.a, e.b) END AS leg_path
            FROM ends e LEFT JOIN paths p ON p.start_vid = e.va AND p.end_vid = e.vb
        )
    """
