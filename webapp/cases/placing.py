"""Placing a load's points in their grids: the set-based spatial join of ``cases.bulk``.

The points (``ord``, ``geom``) are copied into a temporary table and indexed (GiST, a
sorted build); every point strictly inside a grid is placed by a polygon-first join
(for each of the ~1,000 grids, probe the points' index: ``ST_Contains`` on a valid
coverage puts an interior point in exactly one grid); the few left over (on a shared
border) take the rule of a single report: the covering grids, lowest code first.

A load that stages its rows places them in its own transaction (:func:`place`, on its
own connection). A load copied straight into ``cases`` only needs each point's grid,
which it reads back anyway: its points are placed in parts, each in a session of its
own, at the same time (:func:`place_beside`): the index builds and the joins of a
million points then run on every core instead of one (at a million on two cores:
4.0 s → see BENCHMARKS.md). Those sessions write nothing but temporary tables and roll
back; they read ``areas`` as committed, so the load checks first that the grids it
sees are those (:func:`grids_fingerprint`), and places the points itself otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from webapp.cases import pgcopy
from webapp.cases.beside import run_beside

POINTS_DDL = (
    "CREATE TEMP TABLE {points} (ord bigint NOT NULL, geom geometry(Point, 4326) NOT NULL) "
    "ON COMMIT DROP"
)

# Polygon first: for each grid, probe the points' index. OFFSET 0 keeps the planner from
# turning the join around (starting from the points is many times slower).
_INTERIOR = """
    CREATE TEMP TABLE {out} ON COMMIT DROP AS
    SELECT l.ord, g.id AS grid_id, g.code
    FROM (SELECT id, code, geom FROM areas WHERE level = 'grid') g
    CROSS JOIN LATERAL (
        SELECT ord FROM {points} l WHERE ST_Contains(g.geom, l.geom) OFFSET 0
    ) l
"""

# Points on a shared border (in no grid's interior): the same rule as one report.
_BORDER = """
    INSERT INTO {out} (ord, grid_id, code)
    SELECT l.ord, g.id, g.code
    FROM {points} l
    JOIN LATERAL (
        SELECT g.id, g.code FROM areas g
        WHERE g.level = 'grid' AND ST_Covers(g.geom, l.geom)
        ORDER BY g.code LIMIT 1
    ) g ON true
    WHERE NOT EXISTS (SELECT 1 FROM {out} p WHERE p.ord = l.ord)
"""

# The grids a placement reads, as one digest (ids, codes and shapes).
FINGERPRINT_SQL = (
    "SELECT md5(string_agg(id::text || ':' || code || ':' || md5(ST_AsEWKB(geom)), ',' "
    "ORDER BY id)) FROM areas WHERE level = 'grid'"
)

# Sessions placing the points of a direct load at the same time (the cores of the
# machine this was measured on).
PARTS = 2


def index_points(cur, points: str = "case_point") -> None:
    cur.execute(f"CREATE INDEX ON {points} USING gist (geom)")
    cur.execute(f"ANALYZE {points}")


def place(cur, loaded: int, points: str = "case_point", out: str = "case_place") -> int:
    """Place the indexed points of ``points`` into ``out`` (ord, grid_id, code); the border count.

    ``loaded``: how many points there are (the border rule runs only if some are left).
    """
    cur.execute(_INTERIOR.format(out=out, points=points))
    cur.execute(f"SELECT count(*) FROM {out}")
    if cur.fetchone()[0] >= loaded:
        return 0
    cur.execute(_BORDER.format(out=out, points=points))
    return cur.rowcount


# One row of ``COPY (SELECT ord, grid_id ...) TO STDOUT (FORMAT binary)``: two bigints.
_PLACED_ROW = np.dtype(
    [("n", ">i2"), ("l1", ">i4"), ("ord", ">i8"), ("l2", ">i4"), ("grid", ">i8")]
)


def read_placed(cur, out: str = "case_place") -> np.ndarray:
    """(ord, grid) of every row of ``out``, in no particular order, read in binary."""
    buf = io.BytesIO()
    cur.copy_expert(
        f"COPY (SELECT ord::int8, grid_id::int8 FROM {out}) TO STDOUT (FORMAT binary)", buf
    )
    data = buf.getbuffer()
    start = 19 + int.from_bytes(data[15:19], "big")  # signature, flags, header extension
    return np.frombuffer(data[start : len(data) - 2], dtype=_PLACED_ROW)


def place_rows(cur, columns: Sequence, a: int, b: int) -> tuple[np.ndarray, int]:
    """Rows ``a``..``b`` of the point columns placed in this cursor's session: (placed, border)."""
    cur.execute(POINTS_DDL.format(points="place_point"))
    cur.copy_expert(
        "COPY place_point (ord, geom) FROM STDIN (FORMAT binary)",
        pgcopy.ChunkReader(pgcopy.copy_rows(columns, pgcopy.chunks(a, b))),
        size=1 << 20,
    )
    index_points(cur, "place_point")
    border = place(cur, b - a, "place_point", "place_out")
    placed = read_placed(cur, "place_out").copy()
    cur.execute("DROP TABLE place_point, place_out")
    return placed, border


def grids_fingerprint(cur) -> str | None:
    cur.execute(FINGERPRINT_SQL)
    return cur.fetchone()[0]


def place_beside(
    session, columns: Sequence, n: int, parts: int = PARTS
) -> tuple[np.ndarray, int] | None:
    """Place the point columns (``ord``, ``geom``) in ``parts`` sessions at once.

    Returns every placed row's (ord, grid) (a row on an overlap of grids once per grid)
    and the number placed by the border rule; None when a session saw other grids than
    the load's own transaction (grids changed and not committed): the load places the
    points itself then.
    """
    own = session.connection().connection.dbapi_connection
    with own.cursor() as cur:
        mine = grids_fingerprint(cur)
    engine = session.get_bind().engine
    bounds = np.linspace(0, n, parts + 1).astype(np.int64)
    futures: list[Future] = []
    for k in range(parts):
        a, b = int(bounds[k]), int(bounds[k + 1])
        future, _ = run_beside(
            engine,
            lambda cur, a=a, b=b: _place_if_same_grids(cur, columns, a, b, mine),
            "place-beside",
        )
        futures.append(future)
    results = [f.result() for f in futures]  # raises the first session's error
    if any(r is None for r in results):
        return None
    placed = np.concatenate([r[0] for r in results])
    return placed, sum(r[1] for r in results)


def _place_if_same_grids(cur, columns: Sequence, a: int, b: int, fingerprint: str | None):
    """:func:`place_rows` in a session that sees the grids ``fingerprint`` names, else None."""
    if grids_fingerprint(cur) != fingerprint:
        return None
    return place_rows(cur, columns, a, b)
