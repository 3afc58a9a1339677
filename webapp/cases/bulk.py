"""Bulk loading of cases: binary COPY into a staging table, then a set-based spatial join.

Used by the demo loader and the ledger import. Grid assignment happens in SQL before
the rows reach ``cases``, never by a later UPDATE:

1. ``COPY`` the rows in PostgreSQL's binary format (``cases.pgcopy``: numpy writes
   whole columns, the point arrives as EWKB, nothing is parsed from text) into a
   temporary table, and index its points (GiST, a sorted build);
2. place every point strictly inside a grid with a polygon-first join (for each of
   the ~1,000 grids, probe the points' GiST index; ``ST_Contains`` on a valid
   coverage puts an interior point in exactly one grid) into a narrow table;
3. place the few points left over (those on a shared border) with the same rule as
   a single report: the covering grids, lowest code first;
4. number the placed rows from the cases' own sequence in load order, so a repeat
   can name the id of the earlier row it repeats before either is stored;
5. insert the cases from the staging table joined to their places, in load order
   (which keeps the table in time order), repeats already linked; rows with no place
   are outside every grid and are reported by their row number.

Into an empty ``cases`` table (the demo loader's first load) the secondary indexes
are dropped first and built again after the insert, as ``pg_restore`` does: sorted
builds of whole indexes cost a fraction of a million single insertions (measured in
BENCHMARKS.md). A load into a table that already holds cases keeps every index and
the table readable throughout.

Such a rebuilding load given as columns without client ids (the demo loader) skips the
staging of whole rows: its points are placed in parts, each by a session of its own at
the same time (``cases.placing``: steps 1-3 on every core), the placed rows are
numbered here from one range of the sequence taken at once (step 4), and step 5 is a
binary COPY straight into ``cases`` of the given columns with their ids and grids
(:func:`_copy_into_cases`). Into empty tallies (a first load) the tally function runs
meanwhile in another session on the same columns (``cases.tallies_beside``), and its
groups are copied into the tallies after the indexes (:func:`put_back`). The case
number is not written by any of these: it is a generated column of ``cases``
(``models.NUMBER_SQL``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import psycopg2
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.cases import pgcopy, placing
from webapp.cases.tallies_beside import TalliesBeside
from webapp.stats.tallies import ALL_TABLES as TALLY_TABLES

# The columns of a row, in the order callers give them (``rows`` of tuples).
COLUMNS: tuple[str, ...] = (
    "ord",
    "client_id",
    "title",
    "description",
    "category_id",
    "channel",
    "case_class",
    "people_count",
    "batch_count",
    "lon",
    "lat",
    "location_approx",
    "status",
    "reported_at",
    "accepted_at",
    "concluded_at",
    "resolved_at",
    "due_at",
    "opinion",
    "satisfaction",
    "resolved_level",
    "is_first",
    "repeat_ord",
    "skip_level",
    "petitioner_name",
    "petitioner_phone",
    "petitioner_id_number",
)

# The staging table, column by column with its type: the binary COPY sends exactly these.
STAGE: tuple[tuple[str, str], ...] = (
    ("ord", "bigint NOT NULL"),
    ("client_id", "uuid"),
    ("title", "text NOT NULL"),
    ("description", "text NOT NULL"),
    ("category_id", "integer NOT NULL"),
    ("channel", "text NOT NULL"),
    ("case_class", "text NOT NULL"),
    ("people_count", "integer NOT NULL"),
    ("batch_count", "integer NOT NULL"),
    ("geom", "geometry(Point, 4326) NOT NULL"),
    ("location_approx", "boolean NOT NULL"),
    ("status", "text NOT NULL"),
    ("reported_at", "timestamptz NOT NULL"),
    ("accepted_at", "timestamptz"),
    ("concluded_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("due_at", "timestamptz"),
    ("opinion", "text"),
    ("satisfaction", "text"),
    ("resolved_level", "text"),
    ("is_first", "boolean NOT NULL"),
    ("repeat_ord", "bigint"),
    ("skip_level", "boolean NOT NULL"),
    ("petitioner_name", "text"),
    ("petitioner_phone", "text"),
    ("petitioner_id_number", "text"),
    # Optional: where the case was assigned and when it was last answered in writing.
    ("assigned_at", "timestamptz"),
    ("assigned_level", "text"),
    ("assigned_unit", "text"),
    ("answered_at", "timestamptz"),
    # Optional: the 三无 events the matter led to (the demo's cases carry a few).
    ("beijing_abnormal_at", "timestamptz"),
    ("province_collective_at", "timestamptz"),
    ("extreme_incident_at", "timestamptz"),
)
# Columns a caller may leave out: they are staged as NULL.
OPTIONAL: dict[str, str] = {
    "assigned_at": "time",
    "assigned_level": "text",
    "assigned_unit": "text",
    "answered_at": "time",
    "beijing_abnormal_at": "time",
    "province_collective_at": "time",
    "extreme_incident_at": "time",
}
STAGE_NAMES = tuple(name for name, _ in STAGE)

_STAGING_DDL = (
    "CREATE TEMP TABLE case_load ("
    + ", ".join(f"{name} {kind}" for name, kind in STAGE)
    + ") ON COMMIT DROP"
)

# The points alone, for the spatial join: its index and its probes touch 40 bytes a
# row instead of the whole staged case.
_POINTS_DDL = placing.POINTS_DDL.format(points="case_point")

_TARGET = """
    id, client_id, title, description, category_id, channel, case_class,
    people_count, batch_count, location, location_approx,
    grid_id, grid_code, village_code, township_code, county_code,
    status, reported_at, accepted_at, concluded_at, resolved_at, due_at,
    opinion, satisfaction, resolved_level, is_first, repeat_of_id, skip_level,
    petitioner_name, petitioner_phone, petitioner_id_number,
    assigned_at, assigned_level, assigned_unit, answered_at,
    beijing_abnormal_at, province_collective_at, extreme_incident_at
"""

_SOURCE = """
    p.id, l.client_id, l.title, l.description, l.category_id, l.channel, l.case_class,
    l.people_count, l.batch_count, l.geom, l.location_approx,
    g.id, g.code, g.village_code, g.township_code, g.county_code,
    l.status, l.reported_at, l.accepted_at, l.concluded_at, l.resolved_at, l.due_at,
    l.opinion, l.satisfaction, l.resolved_level, l.is_first, r.id, l.skip_level,
    l.petitioner_name, l.petitioner_phone, l.petitioner_id_number,
    l.assigned_at, l.assigned_level, l.assigned_unit, l.answered_at,
    l.beijing_abnormal_at, l.province_collective_at, l.extreme_incident_at
"""

# Loads at least this big into an empty table rebuild the indexes instead of
# maintaining them row by row.
REBUILD_MIN_ROWS = 20_000


@dataclass
class BulkResult:
    loaded: int = 0
    inserted: int = 0
    on_border: int = 0
    duplicates: int = 0
    outside: list[int] = field(default_factory=list)  # ``ord`` of rows outside every grid
    first_id: int | None = None
    last_id: int | None = None
    rebuilt_indexes: bool = False
    # ``cases`` was truncated by this load (new files: written without WAL, and a COPY
    # may store its rows frozen).
    truncated: bool = False
    # Copied straight into ``cases`` (only the points and a sample staged: see
    # :func:`_can_copy_directly`).
    copied_directly: bool = False
    # The DDL that puts back what a rebuilding load took apart, while it is pending
    # (``defer_restore``; see :func:`put_back`).
    restore: list[str] = field(default_factory=list)
    # The tallies of a first load being computed beside it, until put_back copies them in.
    tallies_beside: TalliesBeside | None = field(default=None, repr=False)
    # Seconds per stage (copy, index, place, insert, rebuild ...), for benchmarks and logs.
    timings: dict[str, float] = field(default_factory=dict)


class CaseColumns:
    """Cases as columns (``cases.pgcopy`` columns, one per ``STAGE`` name), all of one length.

    The fast way in: a generator that already holds numpy arrays hands them over
    without making a Python object per value.
    """

    def __init__(self, columns: Mapping[str, object]) -> None:
        missing = [name for name in STAGE_NAMES if name not in columns and name not in OPTIONAL]
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)}")
        n = len(columns["ord"])
        self.columns = [
            columns[name] if name in columns else _null_column(OPTIONAL[name], n)
            for name in STAGE_NAMES
        ]
        lengths = {len(c) for c in self.columns}
        if len(lengths) > 1:
            raise ValueError("columns differ in length")
        self.n = lengths.pop() if lengths else 0
        self.has_client_ids = bool(_nonnull(columns["client_id"]))

    @property
    def point_columns(self) -> list:
        return [self.columns[STAGE_NAMES.index("ord")], self.columns[STAGE_NAMES.index("geom")]]

    def chunks(self, chunk: int) -> Iterator[tuple[CaseColumns, int, int]]:
        """(self, start, stop) for consecutive slices of at most ``chunk`` rows."""
        for a in range(0, self.n, chunk):
            yield self, a, min(a + chunk, self.n)


class PendingColumns:
    """Cases as columns of which only the points are known yet, the rest being made meanwhile.

    ``points``: every case's point (``ord`` is its row number); ``rest``: a future of the
    whole :class:`CaseColumns` (the same points, ``ord`` from 0, no client ids: checked
    when it comes). A rebuilding load copies such cases straight into ``cases`` and
    waits for the rest only once the points are placed, so the rows are made while
    PostgreSQL places the points (the demo load at a million: generation 2.5 s → 1.2 s
    + 0.1 s of waiting); any other load waits for them first.
    """

    def __init__(self, points: pgcopy.Point, rest: Future[CaseColumns]) -> None:
        self.points = points
        self.rest = rest
        self.n = len(points)

    def result(self) -> CaseColumns:
        rows = self.rest.result()
        ords = rows.columns[STAGE_NAMES.index("ord")]
        if (
            rows.n != self.n
            or rows.has_client_ids
            or not np.array_equal(ords.values, np.arange(self.n))
        ):
            raise ValueError("pending columns: not the promised rows (0..n-1, no client ids)")
        return rows

    @property
    def point_columns(self) -> list:
        return [pgcopy.int8(np.arange(self.n)), self.points]


def _null_column(kind: str, n: int):
    if kind == "time":
        return pgcopy.timestamptz(np.zeros(n), null=np.ones(n, dtype=bool))
    return pgcopy.Categorical(np.full(n, -1, dtype=np.int64), [""])


def _nonnull(column) -> int:
    null = getattr(column, "null", None)
    if null is None:
        return len(column)
    return int((~null).sum())


def columns_from_rows(rows: Sequence[Sequence]) -> CaseColumns:
    """Turn row tuples (``COLUMNS`` order; times as datetimes or ISO strings) into columns."""
    if rows:
        cols = dict(zip(COLUMNS, zip(*rows, strict=True), strict=True))
    else:
        cols = {c: () for c in COLUMNS}

    def ints(name: str, maker):
        values = cols[name]
        null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        return maker(np.array([0 if v is None else v for v in values], dtype=np.int64), null)

    def times(name: str):
        seconds, null = pgcopy.epoch_seconds(cols[name])
        return pgcopy.timestamptz(seconds, null)

    def texts(name: str, not_null: bool = False):
        values = cols[name]
        if not_null:
            values = ["" if v is None else str(v) for v in values]
        else:
            values = [None if v is None else str(v) for v in values]
        return pgcopy.Text(values)

    def bools(name: str):
        return pgcopy.boolean(np.array([bool(v) for v in cols[name]], dtype=bool))

    out = {
        "ord": ints("ord", pgcopy.int8),
        "client_id": pgcopy.uuids(cols["client_id"]),
        "title": texts("title", True),
        "description": texts("description", True),
        "category_id": ints("category_id", pgcopy.int4),
        "channel": texts("channel", True),
        "case_class": texts("case_class", True),
        "people_count": ints("people_count", pgcopy.int4),
        "batch_count": ints("batch_count", pgcopy.int4),
        "geom": pgcopy.Point(
            np.array(cols["lon"], dtype=np.float64), np.array(cols["lat"], dtype=np.float64)
        ),
        "location_approx": bools("location_approx"),
        "status": texts("status", True),
        "reported_at": times("reported_at"),
        "accepted_at": times("accepted_at"),
        "concluded_at": times("concluded_at"),
        "resolved_at": times("resolved_at"),
        "due_at": times("due_at"),
        "opinion": texts("opinion"),
        "satisfaction": texts("satisfaction"),
        "resolved_level": texts("resolved_level"),
        "is_first": bools("is_first"),
        "repeat_ord": ints("repeat_ord", pgcopy.int8),
        "skip_level": bools("skip_level"),
        "petitioner_name": texts("petitioner_name"),
        "petitioner_phone": texts("petitioner_phone"),
        "petitioner_id_number": texts("petitioner_id_number"),
    }
    return CaseColumns(out)


def bulk_insert_cases(
    session: Session,
    rows: Iterable[Sequence] | CaseColumns | PendingColumns,
    progress: Callable[[str, int, int], None] | None = None,
    total: int | None = None,
    chunk: int = 50_000,
    rebuild_indexes: bool | None = None,
    defer_restore: bool = False,
) -> BulkResult:
    """Load ``rows`` as cases in their grids; flush, no commit.

    ``rows`` are tuples in ``COLUMNS`` order, a :class:`CaseColumns`, or a
    :class:`PendingColumns`. A row whose
    ``client_id`` is already stored, or repeats one earlier in the load, is skipped
    (counted in ``duplicates``). ``repeat_ord`` links a row to an earlier row of the
    same load as its repeat. ``rebuild_indexes`` (default: when ``cases`` is empty and
    the load is big) drops the secondary indexes of ``cases`` and builds them again
    at the end, holding the table locked until the transaction ends; with
    ``defer_restore`` the caller does that with :func:`put_back` in the same
    transaction.
    """
    import time

    tick = progress or (lambda stage, done, n: None)
    result = BulkResult()
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result.timings[stage] = result.timings.get(stage, 0.0) + now - clock
        clock = now

    session.execute(text("SET LOCAL work_mem = '256MB'"))
    session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
    for table in ("case_load", "case_point", "case_place", "case_ids"):
        session.execute(text(f"DROP TABLE IF EXISTS {table}"))
    session.execute(text(_STAGING_DDL))
    if isinstance(rows, PendingColumns) and not (
        rows.n and _rebuilds(session, rows.n, rebuild_indexes)
    ):
        rows = rows.result()  # only a rebuilding load goes direct: the rows are needed now
    if isinstance(rows, PendingColumns) or _can_copy_directly(session, rows, rebuild_indexes):
        result.copied_directly = True
        result.loaded = rows.n
        tick("写入暂存表", result.loaded, result.loaded)
        if isinstance(rows, CaseColumns):
            _stage_sample(session, rows)
        lap("copy")
        _place_and_insert(session, result, tick, lap, False, True, defer_restore, direct=rows)
        return result
    session.execute(text(_POINTS_DDL))  # a direct load places its points elsewhere
    has_client_ids = False
    points: list[bytes] = [pgcopy.HEADER]

    def stream() -> Iterator[bytes]:
        nonlocal has_client_ids
        yield pgcopy.HEADER
        pieces = rows.chunks(chunk) if isinstance(rows, CaseColumns) else _row_chunks(rows, chunk)
        for cols, a, b in pieces:
            has_client_ids = has_client_ids or cols.has_client_ids
            points.append(pgcopy.encode(cols.point_columns, a, b).tobytes())
            result.loaded += b - a
            yield pgcopy.encode(cols.columns, a, b).tobytes()
            tick("写入暂存表", result.loaded, total or result.loaded)
        yield pgcopy.TRAILER

    _copy(
        session,
        f"COPY case_load ({', '.join(STAGE_NAMES)}) FROM STDIN (FORMAT binary)",
        pgcopy.ahead(stream()),
    )
    points.append(pgcopy.TRAILER)
    _copy(session, "COPY case_point (ord, geom) FROM STDIN (FORMAT binary)", iter(points))
    del points[:]
    tick("写入暂存表", result.loaded, total or result.loaded)
    lap("copy")
    if result.loaded == 0:
        session.execute(text("DROP TABLE case_load"))
        session.execute(text("DROP TABLE case_point"))
        return result
    rebuild = _rebuilds(session, result.loaded, rebuild_indexes)
    _place_and_insert(session, result, tick, lap, has_client_ids, rebuild, defer_restore)
    return result


# -- Straight into ``cases`` -------------------------------------------------------------
#
# A rebuilding load of columns (the demo loader) need not stage the whole cases only to
# read them back once: it stages the points, places them (the same polygon-first join,
# the same border rule, the same numbering from the cases' sequence), reads back each
# placed row's id and grid (24 bytes a row), and copies the cases into ``cases``
# themselves, with their grid's codes and their repeat link. The wide rows then cross the
# server once instead of three times (COPY into the staging table, read by the INSERT's
# joins, written into ``cases``). PostgreSQL still decides every place, in this
# transaction, before any case is stored; the number is the table's own (a generated
# column, migration k01), computed from the id, county and time copied here.

# Whole rows staged for the predicates of the partial indexes (``_sparse_in_load``):
# blocks spread over the load, so that a time-ordered load is sampled over its whole span.
SAMPLE_BLOCKS = 20
SAMPLE_BLOCK_ROWS = 1_000


def _can_copy_directly(session: Session, rows, rebuild_indexes: bool | None) -> bool:
    """Whether ``rows`` may be copied straight into ``cases`` (see above).

    Only a rebuilding load of :class:`CaseColumns` without client ids (nothing to
    deduplicate, no ON CONFLICT) whose ``ord`` rises strictly from row to row (load
    order is row order, and a repeat's target is found by a binary search).
    """
    if not isinstance(rows, CaseColumns) or rows.n == 0 or rows.has_client_ids:
        return False
    ords = rows.columns[STAGE_NAMES.index("ord")]
    values = getattr(ords, "values", None)
    if values is None or _nonnull(ords) != rows.n:
        return False
    if not bool(np.all(np.diff(np.asarray(values, dtype=np.int64)) > 0)):
        return False
    return _rebuilds(session, rows.n, rebuild_indexes)


def _rebuilds(session: Session, n: int, rebuild_indexes: bool | None) -> bool:
    """Whether a load of ``n`` rows drops and rebuilds the indexes (None: by size, into empty cases)."""
    if rebuild_indexes is None:
        return n >= REBUILD_MIN_ROWS and _cases_empty(session)
    return bool(rebuild_indexes)


def _copy(session: Session, sql: str, chunks: Iterator[bytes]) -> int:
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(sql, pgcopy.ChunkReader(chunks), size=1 << 20)
        return cur.rowcount


def _stage_sample(session: Session, rows: CaseColumns) -> None:
    """COPY a sample of whole rows into ``case_load`` (for ``_sparse_in_load``)."""
    if rows.n <= SAMPLE_BLOCKS * SAMPLE_BLOCK_ROWS:
        blocks = [(0, rows.n)]
    else:
        starts = np.linspace(0, rows.n - SAMPLE_BLOCK_ROWS, SAMPLE_BLOCKS).astype(np.int64)
        blocks = [(int(a), int(a) + SAMPLE_BLOCK_ROWS) for a in starts]

    _copy(
        session,
        f"COPY case_load ({', '.join(STAGE_NAMES)}) FROM STDIN (FORMAT binary)",
        pgcopy.copy_rows(rows.columns, blocks),
    )


def _copy_into_cases(
    session: Session,
    rows: CaseColumns,
    placed: np.ndarray,
    result: BulkResult,
    tally_beside: bool = False,
    stage_ids: bool = False,
) -> tuple[int, TalliesBeside | None]:
    """COPY the placed rows straight into ``cases``, numbered here from the cases' sequence.

    ``placed``: (ord, grid) of every placed row, a row on an overlap of grids once per
    grid (``placing.place_beside``). Every value the INSERT of a staged load derives,
    derived alike: one grid per row (the lowest code, as ``DISTINCT ON (ord) ... ORDER
    BY ord, code`` there), ids from the sequence in load order (a range taken at once,
    :func:`_take_ids`), the grid's codes from its row of ``areas``, the repeat link
    from the id of the row ``repeat_ord`` names (none when that row is outside every
    grid). Rows outside every grid are left out and listed in ``result.outside``.
    Returns the number of cases copied and, with ``tally_beside``, their tallies being
    computed in a second session meanwhile (``cases.tallies_beside``; None if it cannot).
    ``stage_ids``: also write (ord, grid_id, id) into ``case_ids``, for a tally pass over
    the loaded cases only (a load beside existing cases).
    """
    ords = np.asarray(rows.columns[STAGE_NAMES.index("ord")].values, dtype=np.int64)
    n = rows.n
    grids = session.execute(
        text(
            "SELECT id, code, village_code, township_code, county_code "
            "FROM areas WHERE level = 'grid' ORDER BY id"
        )
    ).all()
    grid_ids = np.array([g[0] for g in grids], dtype=np.int64)
    code_rank = np.argsort(np.argsort(np.array([g[1] for g in grids])))
    at = np.searchsorted(ords, placed["ord"].astype(np.int64))
    where = np.searchsorted(grid_ids, placed["grid"].astype(np.int64))
    order = np.lexsort((code_rank[where], at))  # by row, then code
    at, where = at[order], where[order]
    first = np.ones(len(at), dtype=bool)
    first[1:] = at[1:] != at[:-1]
    at, where = at[first], where[first]
    is_placed = np.zeros(n, dtype=bool)
    is_placed[at] = True
    first_id = _take_ids(session, len(at))
    ids = np.full(n, -1, dtype=np.int64)
    ids[at] = first_id + np.arange(len(at), dtype=np.int64)  # ``at`` rises: load order
    if len(at):
        result.first_id, result.last_id = first_id, first_id + len(at) - 1
    grid = np.full(n, -1, dtype=np.int64)  # index into ``grids``
    grid[at] = where
    if stage_ids:  # for the tally pass over the loaded ids (cases.tallies: t01)
        session.execute(
            text(
                "CREATE TEMP TABLE case_ids (ord bigint, grid_id bigint, id bigint) ON COMMIT DROP"
            )
        )
        _copy(
            session,
            "COPY case_ids (ord, grid_id, id) FROM STDIN (FORMAT binary)",
            pgcopy.copy_chunks(
                [pgcopy.int8(ords[at]), pgcopy.int8(grid_ids[where]), pgcopy.int8(ids[at])]
            ),
        )

    def codes(k: int) -> pgcopy.Categorical:
        return pgcopy.Categorical(grid, [g[k] for g in grids])

    rep = rows.columns[STAGE_NAMES.index("repeat_ord")]
    rep_ord = np.asarray(rep.values, dtype=np.int64)
    target = np.minimum(np.searchsorted(ords, rep_ord), n - 1)
    found = ~rep.null & (ords[target] == rep_ord)
    repeat_id = np.where(found, ids[target], -1)
    derived = {
        "id": pgcopy.int8(np.maximum(ids, 0)),
        "location": rows.columns[STAGE_NAMES.index("geom")],
        "grid_id": pgcopy.int4(grid_ids[np.maximum(grid, 0)]),
        "grid_code": codes(1),
        "village_code": codes(2),
        "township_code": codes(3),
        "county_code": codes(4),
        "repeat_of_id": pgcopy.int8(np.maximum(repeat_id, 0), null=repeat_id < 0),
    }
    names = [c.strip() for c in _TARGET.split(",")]
    columns = [derived[c] if c in derived else rows.columns[STAGE_NAMES.index(c)] for c in names]
    # Runs of consecutive placed rows (all rows but the few outside), in chunks.
    keep = np.flatnonzero(is_placed)
    runs = [
        (int(r[0]), int(r[-1]) + 1)
        for r in np.split(keep, np.flatnonzero(np.diff(keep) > 1) + 1)
        if len(r)
    ]

    slices = [s for a, b in runs for s in pgcopy.chunks(a, b)]
    beside = TalliesBeside.start(session, names, columns, slices) if tally_beside else None
    try:
        # Into the table's new files the rows go in frozen and their pages all-visible,
        # as VACUUM FREEZE would leave them: no reader sets hint bits on them later.
        freeze = ", FREEZE" if result.truncated else ""
        copied = _copy(
            session,
            f"COPY cases ({', '.join(names)}) FROM STDIN (FORMAT binary{freeze})",
            pgcopy.ahead(pgcopy.copy_rows(columns, slices)),
        )
    except BaseException:
        if beside is not None:
            beside.cancel()
        raise
    result.outside = [int(o) for o in ords[~is_placed]]
    return copied, beside


def _take_ids(session: Session, count: int) -> int:
    """The first of ``count`` consecutive ids taken from the cases' sequence at once.

    The table is held against inserts first (a single report takes its id inside its
    INSERT, which waits), so no id of the range goes to anyone else.
    """
    if count == 0:
        return 0
    session.execute(text("LOCK TABLE cases IN SHARE ROW EXCLUSIVE MODE"))
    last = session.execute(
        text(
            "SELECT setval(CAST(s AS regclass), nextval(CAST(s AS regclass)) + :k - 1) "
            "FROM pg_get_serial_sequence('cases', 'id') s"
        ),
        {"k": count},
    ).scalar_one()
    return last - count + 1


def _row_chunks(rows: Iterable[Sequence], chunk: int) -> Iterator[tuple[CaseColumns, int, int]]:
    it = iter(rows)
    while part := list(islice(it, chunk)):
        cols = columns_from_rows(part)
        yield cols, 0, cols.n


def _empty(session: Session, table: str) -> bool:
    return not session.execute(text(f"SELECT EXISTS (SELECT 1 FROM {table})")).scalar_one()


def _cases_empty(session: Session) -> bool:
    return _empty(session, "cases")


def _place_and_insert(
    session: Session,
    result: BulkResult,
    tick,
    lap,
    has_client_ids: bool,
    rebuild: bool,
    defer_restore: bool,
    direct: CaseColumns | PendingColumns | None = None,
) -> None:
    """Place the staged points, then insert the cases; ``direct``: COPY them from these columns.

    Without ``direct`` the cases come from the staging table ``case_load`` (an INSERT
    joined to their places); with it (:func:`_can_copy_directly`) only the points and a
    sample were staged, and the cases are copied straight into ``cases`` with the ids
    and grids the placement gave them (:func:`_copy_into_cases`).
    """
    if has_client_ids:
        # Resends: rows whose client id is already a case, or came earlier in this load
        # (numbered by a window, hashed against the cases: no self-join of the staging).
        session.execute(text("ANALYZE case_load"))
        dup = session.execute(
            text(
                """
                DELETE FROM case_load l
                USING (
                    SELECT s.ord
                    FROM (SELECT ord, client_id,
                                 row_number() OVER (PARTITION BY client_id ORDER BY ord) AS nth
                          FROM case_load WHERE client_id IS NOT NULL) s
                    LEFT JOIN cases c ON c.client_id = s.client_id
                    WHERE s.nth > 1 OR c.id IS NOT NULL
                ) d
                WHERE l.ord = d.ord
                """
            )
        )
        result.duplicates = dup.rowcount or 0
        if result.duplicates:
            session.execute(
                text(
                    "DELETE FROM case_point p WHERE NOT EXISTS "
                    "(SELECT 1 FROM case_load l WHERE l.ord = p.ord)"
                )
            )
        lap("duplicates")
    tick("空间匹配网格", 0, result.loaded)
    if direct is not None:
        placed = _place_direct(session, direct, result)
        lap("join")
    else:
        _place_staged(session, result, lap)
    tick("空间匹配网格", result.loaded, result.loaded)

    if isinstance(direct, PendingColumns):
        # Made in their thread while the points were placed; the sample of whole rows
        # the partial indexes' predicates are counted on goes in now.
        direct = direct.result()
        _stage_sample(session, direct)
        lap("generate_rest")
    restore: list[str] = []
    if rebuild:
        restore = _take_apart(session, result)
        result.rebuilt_indexes = True
        lap("drop_indexes")
    tick("写入案件表", 0, result.loaded)
    # Rows with client ids may race a report sent at the same moment: skip, not fail.
    # Without client ids there is nothing to conflict on (and no speculative insertion).
    on_conflict = (
        "ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING" if has_client_ids else ""
    )
    # The case tallies' triggers (stats.models: case and heat tallies) wait for this one
    # statement: the cases are tallied below, one pass for the three tallies, in this same
    # transaction. A rebuilding load, which holds the table exclusively anyway, drops the
    # insert trigger for the statement and creates it again after: while it exists, even
    # disabled, PostgreSQL keeps a copy of every inserted row for its transition table
    # (at a million cases some 400 MB written to temporary files and read back).
    was_empty = _cases_empty(session)
    if was_empty and not rebuild:
        # Into an empty table the tally pass reads every case: a report committed
        # between this check and that pass would be tallied by its trigger and again by
        # the pass. Hold reports off until the load commits (a rebuilding load holds the
        # table exclusively already), then look again.
        session.execute(text("LOCK TABLE cases IN SHARE ROW EXCLUSIVE MODE"))
        was_empty = _cases_empty(session)
    insert_trigger = None
    if rebuild:
        insert_trigger = session.execute(
            text(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = 'cases'::regclass AND tgname = 'case_tallies_insert'"
            )
        ).scalar_one_or_none()
        if insert_trigger:
            session.execute(text("DROP TRIGGER case_tallies_insert ON cases"))
    session.execute(text("SELECT set_config('gridcase.defer_case_tallies', 'on', true)"))
    # A first load of columns into empty tallies has its tallies computed beside the
    # copy of its cases, on the other core (cases.tallies_beside).
    beside = None
    if direct is not None:
        first = rebuild and was_empty and all(_empty(session, t) for t in TALLY_TABLES)
        if first:  # and they stay empty until the groups computed beside are in
            session.execute(text(f"LOCK TABLE {', '.join(TALLY_TABLES)} IN EXCLUSIVE MODE"))
        result.inserted, beside = _copy_into_cases(
            session, direct, placed, result, tally_beside=first, stage_ids=not was_empty
        )
    else:
        inserted = session.execute(
            text(
                f"""
                INSERT INTO cases ({_TARGET})
                SELECT {_SOURCE}
                FROM case_load l
                JOIN case_ids p ON p.ord = l.ord
                JOIN areas g ON g.id = p.grid_id
                LEFT JOIN case_ids r ON r.ord = l.repeat_ord
                {on_conflict}
                """
            )
        )
        result.inserted = inserted.rowcount or 0
    session.execute(text("SELECT set_config('gridcase.defer_case_tallies', 'off', true)"))
    if insert_trigger:
        session.execute(text(insert_trigger))
    tick("写入案件表", result.loaded, result.loaded)
    lap("insert")
    # Into an empty table every case is a loaded one: tallied with no look-up of which
    # cases were loaded and no repeat outside the load. The three tallies (grid,
    # category, heat: stats.models, migrations m01, y01, u01, k02) are filled in one call:
    # into empty tallies both case tallies' groups by one hash of ``cases`` and the heat
    # tally's by another, inserted without ON CONFLICT; otherwise one upserting pass
    # over the loaded cases.
    ids = {"ids": "cases" if was_empty else "case_ids"}
    result.restore = restore
    if beside is not None:
        # Copied in by put_back, after the indexes (here, or by the caller that defers
        # them): the longer the other core has for them, the less the load waits.
        result.tallies_beside = beside
    else:
        # Empty tallies of a rebuilding load (locked with ``cases``: nothing reads them
        # until the commit) take their groups without their keys and indexes, built
        # once after.
        bare = _take_indexes_off(session, TALLY_TABLES) if rebuild and was_empty else []
        session.execute(text("SELECT case_tallies_add_cases(:ids)"), ids)
        for ddl in bare:
            session.execute(text(ddl))
        if was_empty:
            _analyze_tallies(session)
        lap("tallies")
    if not defer_restore:
        put_back(session, result, tick)
        lap("put_back")
    if direct is None and result.inserted + result.duplicates < result.loaded:
        result.outside = list(
            session.execute(
                text(
                    "SELECT l.ord FROM case_load l "
                    "WHERE NOT EXISTS (SELECT 1 FROM case_ids p WHERE p.ord = l.ord) ORDER BY l.ord"
                )
            ).scalars()
        )
    if direct is None:
        result.first_id, result.last_id = session.execute(
            text("SELECT min(id), max(id) FROM case_ids")
        ).one()
    for table in ("case_load", "case_point", "case_place", "case_ids"):
        session.execute(text(f"DROP TABLE IF EXISTS {table}"))
    session.flush()
    lap("finish")
    result.timings.pop("put_back", None)  # put_back's own stages are in the timings


def _place_direct(
    session: Session, rows: CaseColumns | PendingColumns, result: BulkResult
) -> np.ndarray:
    """(ord, grid) of the placed points of a direct load, placed in sessions of their own.

    ``placing.place_beside``: the points in parts, each part placed by its own session
    at the same time; in this session alone if those do not see the grids it sees.
    """
    got = placing.place_beside(session, rows.point_columns, rows.n)
    if got is None:
        raw = session.connection().connection.dbapi_connection
        with raw.cursor() as cur:
            got = placing.place_rows(cur, rows.point_columns, 0, rows.n)
    placed, result.on_border = got
    return placed


def _place_staged(session: Session, result: BulkResult, lap) -> None:
    """Place the staged points (``case_point``) into ``case_ids`` (ord, grid_id, id).

    One grid per row (overlapping grids: the lowest code, the rule of one report), and
    ids from the cases' sequence in load order (nextval runs after the sort), so the
    table stays in time order and a repeat knows its target's id before the insert.
    """
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        placing.index_points(cur)
        lap("index")
        result.on_border = placing.place(cur, result.loaded - result.duplicates)
        lap("join")
    seq = session.execute(text("SELECT pg_get_serial_sequence('cases', 'id')")).scalar_one()
    session.execute(
        text(
            f"""
            CREATE TEMP TABLE case_ids ON COMMIT DROP AS
            SELECT DISTINCT ON (ord) ord, grid_id, nextval('{seq}'::regclass) AS id
            FROM case_place ORDER BY ord, code
            """
        )
    )
    lap("place")
    session.execute(text("ANALYZE case_ids"))
    lap("analyze")


def put_back(session: Session, result: BulkResult, progress=None) -> None:
    """Build again the indexes and constraints a rebuilding load took apart (``result.restore``).

    :func:`bulk_insert_cases` does it itself unless told ``defer_restore``: then the
    caller may first add rows that refer to the new cases (the demo's event history)
    while their foreign keys are away, checked afterwards by one join each. The
    tallies of a first load, computed beside the load (``result.tallies_beside``), are
    copied in here too, last.
    """
    import time

    tick = progress or (lambda stage, done, n: None)
    restore, result.restore = result.restore, []
    beside, result.tallies_beside = result.tallies_beside, None
    try:
        if restore:
            started = time.perf_counter()
            for i, ddl in enumerate(restore):
                session.execute(text(ddl))
                tick("重建索引", i + 1, len(restore))
            built = time.perf_counter()
            # The planner's statistics of a table that was empty a moment ago.
            session.execute(text("ANALYZE cases"))
            result.timings["rebuild_indexes"] = built - started
            result.timings["analyze"] = (
                result.timings.get("analyze", 0.0) + time.perf_counter() - built
            )
        if beside is not None:
            started = time.perf_counter()
            bare = _take_indexes_off(session, TALLY_TABLES)
            beside.copy_into(session)
            for ddl in bare:
                session.execute(text(ddl))
            _analyze_tallies(session)
            result.timings["tallies"] = time.perf_counter() - started
            result.timings["tallies_beside"] = beside.seconds
    except BaseException:
        if beside is not None:
            beside.cancel()
        raise


def _analyze_tallies(session: Session) -> None:
    """The planner's statistics of the tallies, empty a moment ago.

    Without them the statistics of 342 villages took 130-150 ms at a million cases
    instead of 70-95.
    """
    session.execute(text(f"ANALYZE {', '.join(TALLY_TABLES)}"))


def _take_indexes_off(session: Session, tables: Sequence[str]) -> list[str]:
    """Drop the indexes (primary keys included) of ``tables`` if they are all empty.

    Returns the DDL that builds them again, primary keys first. For the tallies of a
    first load: inserting their groups (400,000 at a million cases) into bare tables and
    building the four indexes and three keys after took 1.8 s against 3.0 s with the
    indexes in place (on a loaded million; the demo load's tally stage: 6.3 → 6.0 s,
    medians of four alternated loads).
    """
    if not all(_empty(session, t) for t in tables):
        return []
    rows = session.execute(
        text(
            """
            SELECT x.indrelid::regclass::text, i.relname, pg_get_indexdef(x.indexrelid),
                   c.conname, pg_get_constraintdef(c.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
                 AND c.contype IN ('p', 'u', 'x')
            WHERE x.indrelid = ANY(CAST(:tables AS regclass[]))
              AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                              WHERE f.contype = 'f' AND f.conindid = x.indexrelid)
            ORDER BY 1, 2
            """
        ),
        {"tables": list(tables)},
    ).all()
    restore = []
    for table, index, definition, constraint, constraint_def in rows:
        if constraint:
            session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"'))
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraint_def}')
        else:
            session.execute(text(f'DROP INDEX "{index}"'))
            restore.append(definition)
    return sorted(restore, key=lambda ddl: "PRIMARY KEY" not in ddl)


# Kept during a rebuild: the unique index ON CONFLICT names as its arbiter, and the
# primary key while a foreign key refers to it (see _take_apart).
_KEEP_INDEXES = ("pk_cases", "uq_cases_client_id")


# Every column an inserted case gets from the load (staged, or derived: its place, id,
# repeat link; its number is generated from those); the others stay NULL.
_LOADED_COLUMNS = frozenset(c.strip() for c in _TARGET.split(",")) | {"number"}

# A partial index that few loaded rows enter costs the load little when kept (its
# predicate is checked per row, a few entries are added), where building it again
# afterwards costs a scan of the whole table.
_NOT_NULL = re.compile(r"^\((\w+) IS NOT NULL\)$")
SPARSE_SHARE = 0.10


def _sparse_in_load(session: Session, predicates: Sequence[str | None]) -> set[str]:
    """The index predicates that at most 10 % of the staged rows meet.

    A predicate is evaluated on the staging table (same column names) when it reads
    only staged columns; ``(column IS NOT NULL)`` on a column the load does not stage
    at all (leader, reporter ...) holds for no row.
    """
    readable, meeting = [], {}
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        for predicate in sorted({p for p in predicates if p}):
            # Planned only, to learn whether it reads unstaged columns, in a savepoint
            # released either way: the load goes on in the subtransaction that took
            # the table apart (COPY FREEZE needs it to be the current one).
            cur.execute("SAVEPOINT sparse_probe")
            try:
                cur.execute(f"EXPLAIN SELECT 1 FROM case_load WHERE {predicate}")
                readable.append(predicate)
            except psycopg2.Error:  # reads a column the load does not stage
                cur.execute("ROLLBACK TO SAVEPOINT sparse_probe")
                m = _NOT_NULL.match(predicate)
                meeting[predicate] = 0 if m and m.group(1) not in _LOADED_COLUMNS else None
            cur.execute("RELEASE SAVEPOINT sparse_probe")
    # The staged rows that meet each readable predicate, all counted in one scan.
    counts = ", ".join(["count(*)"] + [f"count(*) FILTER (WHERE {p})" for p in readable])
    total, *met = session.execute(text(f"SELECT {counts} FROM case_load")).one()
    meeting.update(zip(readable, met, strict=True))
    return {p for p, m in meeting.items() if m is not None and m <= SPARSE_SHARE * total}


def _take_apart(session: Session, result: BulkResult) -> list[str]:
    """Prepare an empty ``cases`` for a big load; return the DDL that puts it back together.

    Drops the secondary indexes (an index that backs a unique constraint goes with
    its constraint) and the foreign keys of ``cases``: building an index from all rows
    at once sorts them once, and adding a foreign key checks all rows with one join,
    where a row-by-row load pays an index insertion per index and a trigger per key
    for every row. With ``wal_level = minimal`` the table and the tables that refer to
    it (all empty, or the load would not be here) is truncated first, so that
    PostgreSQL writes the new data files without WAL and syncs them at commit. The
    empty tables that refer to ``cases`` lose their foreign keys to it until the end
    (re-adding one to an empty table checks nothing) rather than being truncated with
    it: some of them (the case event log) refuse TRUNCATE, even when empty. The tally
    tables, empty when ``cases`` is, are truncated with it.
    A partial index that (almost) no loaded row enters is kept as it is
    (:func:`_sparse_in_load`): maintaining it costs the load nothing, rebuilding it
    would cost a scan of the whole table.
    """
    restore: list[str] = []
    if session.execute(text("SHOW wal_level")).scalar_one() == "minimal":
        referring = session.execute(
            text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f' AND confrelid = 'cases'::regclass "
                "AND conrelid <> confrelid ORDER BY 1, 2"
            )
        ).all()
        if all(_empty(session, t) for t in ("cases", *{r[0] for r in referring})):
            for table, name, definition in referring:
                session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
                restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            session.execute(text("TRUNCATE cases"))
            result.truncated = True
            # The tallies of no cases are empty too: new files for them as well, so that
            # the tally pass writes them without WAL like the cases (checked, not assumed).
            if all(_empty(session, t) for t in TALLY_TABLES):
                session.execute(text(f"TRUNCATE {', '.join(TALLY_TABLES)}"))
    constraints = session.execute(
        text(
            """
            SELECT c.conname, pg_get_constraintdef(c.oid), c.contype
            FROM pg_constraint c
            WHERE c.conrelid = 'cases'::regclass AND c.contype IN ('f', 'u')
              AND NOT (c.conname = ANY(:keep))
            ORDER BY c.contype DESC, c.conname
            """
        ),
        {"keep": list(_KEEP_INDEXES)},
    ).all()
    for name, definition, _ in constraints:
        session.execute(text(f'ALTER TABLE cases DROP CONSTRAINT "{name}"'))
        restore.append(f'ALTER TABLE cases ADD CONSTRAINT "{name}" {definition}')
    # The primary key too, once no foreign key refers to it (the repeat link's is away;
    # those of other tables only when they were empty and taken away above): kept, it
    # costs the insert about 1.5 s a million rows, built again from the sorted ids well
    # under one. The load needs no unique id index (the ids come from the sequence).
    primary = session.execute(
        text(
            "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.conrelid = 'cases'::regclass AND c.contype = 'p' AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.confrelid = 'cases'::regclass)"
        )
    ).one_or_none()
    if primary is not None:
        session.execute(text(f'ALTER TABLE cases DROP CONSTRAINT "{primary[0]}"'))
        restore.append(f'ALTER TABLE cases ADD CONSTRAINT "{primary[0]}" {primary[1]}')
    indexes = session.execute(
        text(
            """
            SELECT i.relname, pg_get_indexdef(x.indexrelid), pg_get_expr(x.indpred, x.indrelid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'cases'::regclass AND NOT (i.relname = ANY(:keep))
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            ORDER BY i.relname
            """
        ),
        {"keep": list(_KEEP_INDEXES)},
    ).all()
    sparse = _sparse_in_load(session, [predicate for _, _, predicate in indexes])
    for name, definition, predicate in indexes:
        if predicate in sparse:
            continue  # kept: the load gives it (almost) no entries
        session.execute(text(f'DROP INDEX "{name}"'))
        restore.append(definition)
    # The primary key first, indexes next (the unique one included), foreign keys last
    # (each check is one join; the repeat link's needs the primary key). Of the
    # indexes, the GiST and BRIN ones first: PostgreSQL builds them on one core, while
    # a first load's tally session still has the other (btrees take both). Index
    # rebuild at a million cases 7.86 -> 7.41 s, medians of 3 alternated loads.
    return sorted(
        restore,
        key=lambda ddl: (
            "PRIMARY KEY" not in ddl,
            "FOREIGN KEY" in ddl,
            "USING gist" not in ddl and "USING brin" not in ddl,
        ),
    )
