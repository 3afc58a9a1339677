"""Bulk loading of cases: COPY into a staging table, then a set-based spatial join.

Used by the demo loader and the ledger import. Grid assignment happens in SQL before
the rows reach ``cases``, never by a later UPDATE:

1. ``COPY`` the rows (CSV) into a temporary table whose point column is generated
   from lon/lat and whose ``id`` comes from the cases' own sequence;
2. place every point strictly inside a grid with a polygon-first join (for each of
   the ~1,000 grids, probe the points' GiST index; ``ST_Contains`` on a valid
   coverage puts an interior point in exactly one grid) into a narrow table;
3. place the few points left over (those on a shared border) with the same rule as
   a single report: the covering grids, lowest code first;
4. insert the cases from the staging table joined to their places, in load order
   (which keeps the table in time order); rows with no place are outside every grid
   and are reported by their row number;
5. link repeats to the earlier rows they repeat, once both are stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

# The staging columns, in the order callers give them in each row.
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

_STAGING_DDL = """
CREATE TEMP TABLE case_load (
    ord bigint NOT NULL,
    client_id uuid,
    title text NOT NULL,
    description text NOT NULL,
    category_id integer NOT NULL,
    channel text NOT NULL,
    case_class text NOT NULL,
    people_count integer NOT NULL,
    batch_count integer NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    location_approx boolean NOT NULL,
    status text NOT NULL,
    reported_at timestamptz NOT NULL,
    accepted_at timestamptz,
    concluded_at timestamptz,
    resolved_at timestamptz,
    due_at timestamptz,
    opinion text,
    satisfaction text,
    resolved_level text,
    is_first boolean NOT NULL,
    repeat_ord bigint,
    skip_level boolean NOT NULL,
    petitioner_name text,
    petitioner_phone text,
    petitioner_id_number text,
    id bigint NOT NULL DEFAULT nextval(pg_get_serial_sequence('cases', 'id')),
    geom geometry(Point, 4326) GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED
) ON COMMIT DROP
"""

_TARGET = """
    id, number, client_id, title, description, category_id, channel, case_class,
    people_count, batch_count, location, location_approx,
    grid_id, grid_code, village_code, township_code, county_code,
    status, reported_at, accepted_at, concluded_at, resolved_at, due_at,
    opinion, satisfaction, resolved_level, is_first, repeat_of_id, skip_level,
    petitioner_name, petitioner_phone, petitioner_id_number
"""

_SOURCE = """
    l.id,
    g.county_code || '-' || to_char(l.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY')
        || '-' || lpad(l.id::text, 7, '0'),
    l.client_id, l.title, l.description, l.category_id, l.channel, l.case_class,
    l.people_count, l.batch_count, l.geom, l.location_approx,
    g.id, g.code, g.village_code, g.township_code, g.county_code,
    l.status, l.reported_at, l.accepted_at, l.concluded_at, l.resolved_at, l.due_at,
    l.opinion, l.satisfaction, l.resolved_level, l.is_first, NULL::bigint, l.skip_level,
    l.petitioner_name, l.petitioner_phone, l.petitioner_id_number
"""


@dataclass
class BulkResult:
    loaded: int = 0
    inserted: int = 0
    on_border: int = 0
    duplicates: int = 0
    outside: list[int] = field(default_factory=list)  # ``ord`` of rows outside every grid
    first_id: int | None = None
    last_id: int | None = None


# Text columns that keep an empty string as '' rather than NULL in CSV COPY.
_NOT_NULL_TEXT = ("title", "description", "channel", "case_class", "status")


def bulk_insert_cases(
    session: Session,
    rows: Iterable[Sequence],
    progress: Callable[[str, int, int], None] | None = None,
    total: int | None = None,
    chunk: int = 100_000,
) -> BulkResult:
    """Load ``rows`` (tuples in ``COLUMNS`` order) as cases in their grids; flush, no commit.

    A row whose ``client_id`` is already stored is skipped (counted in ``duplicates``).
    ``repeat_ord`` links a row to an earlier row of the same load as its repeat.
    """
    tick = progress or (lambda stage, done, n: None)
    result = BulkResult()
    _bigger_temp_buffers(session)
    session.execute(text("DROP TABLE IF EXISTS case_load"))
    session.execute(text(_STAGING_DDL))
    raw = session.connection().connection.dbapi_connection
    copy_sql = (
        f"COPY case_load ({', '.join(COLUMNS)}) FROM STDIN "
        f"WITH (FORMAT csv, NULL '', FORCE_NOT_NULL ({', '.join(_NOT_NULL_TEXT)}))"
    )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    pending = 0

    def flush() -> None:
        nonlocal pending
        buf.seek(0)
        with raw.cursor() as cur:
            cur.copy_expert(copy_sql, buf)
        buf.seek(0)
        buf.truncate()
        pending = 0

    for row in rows:
        writer.writerow(row)
        pending += 1
        result.loaded += 1
        if pending >= chunk:
            flush()
            tick("写入暂存表", result.loaded, total or result.loaded)
    if pending:
        flush()
    tick("写入暂存表", result.loaded, total or result.loaded)
    if result.loaded == 0:
        return result
    _place_and_insert(session, result, tick)
    return result


def _bigger_temp_buffers(session: Session) -> None:
    """Give this connection room for the staging table (only possible before its first temp table)."""
    try:
        with session.begin_nested():
            session.execute(text("SET temp_buffers = '512MB'"))
    except DBAPIError:
        pass  # the connection already used temporary tables: keep its setting


def _place_and_insert(session: Session, result: BulkResult, tick) -> None:
    session.execute(text("CREATE INDEX ON case_load USING gist (geom)"))
    session.execute(text("ANALYZE case_load"))
    # Resends: rows whose client id is already a case are not loaded again.
    dup = session.execute(
        text(
            "DELETE FROM case_load l USING cases c WHERE l.client_id IS NOT NULL "
            "AND c.client_id = l.client_id"
        )
    )
    result.duplicates = dup.rowcount or 0

    tick("空间匹配网格", 0, result.loaded)
    # Polygon first: for each grid, probe the points' index. OFFSET 0 keeps the planner
    # from turning the join around (starting from the points is many times slower).
    session.execute(
        text(
            """
            CREATE TEMP TABLE case_place ON COMMIT DROP AS
            SELECT l.ord, g.id AS grid_id
            FROM (SELECT id, geom FROM areas WHERE level = 'grid') g
            CROSS JOIN LATERAL (
                SELECT ord FROM case_load l WHERE ST_Contains(g.geom, l.geom) OFFSET 0
            ) l
            """
        )
    )
    # Points on a shared border (in no grid's interior): the same rule as one report.
    border = session.execute(
        text(
            """
            INSERT INTO case_place (ord, grid_id)
            SELECT l.ord, g.id
            FROM case_load l
            JOIN LATERAL (
                SELECT g.id FROM areas g
                WHERE g.level = 'grid' AND ST_Covers(g.geom, l.geom)
                ORDER BY g.code LIMIT 1
            ) g ON true
            WHERE NOT EXISTS (SELECT 1 FROM case_place p WHERE p.ord = l.ord)
            """
        )
    )
    result.on_border = border.rowcount or 0
    session.execute(text("ANALYZE case_place"))
    tick("空间匹配网格", result.loaded, result.loaded)

    tick("写入案件表", 0, result.loaded)
    inserted = session.execute(
        text(
            f"""
            INSERT INTO cases ({_TARGET})
            SELECT {_SOURCE}
            FROM case_load l
            JOIN case_place p ON p.ord = l.ord
            JOIN areas g ON g.id = p.grid_id
            ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
            """
        )
    )
    result.inserted = inserted.rowcount or 0
    tick("写入案件表", result.loaded, result.loaded)

    result.outside = list(
        session.execute(
            text(
                "SELECT l.ord FROM case_load l "
                "WHERE NOT EXISTS (SELECT 1 FROM case_place p WHERE p.ord = l.ord) ORDER BY l.ord"
            )
        ).scalars()
    )
    # Repeats point at earlier rows of the same load; linked once both are stored.
    session.execute(
        text(
            """
            UPDATE cases c SET repeat_of_id = r.id
            FROM case_load l JOIN case_load r ON r.ord = l.repeat_ord
            WHERE c.id = l.id AND l.repeat_ord IS NOT NULL
              AND EXISTS (SELECT 1 FROM case_place p WHERE p.ord = r.ord)
              AND EXISTS (SELECT 1 FROM case_place p WHERE p.ord = l.ord)
            """
        )
    )
    bounds = session.execute(
        text("SELECT min(l.id), max(l.id) FROM case_load l JOIN case_place p ON p.ord = l.ord")
    ).one()
    result.first_id, result.last_id = bounds
    session.execute(text("DROP TABLE case_load"))
    session.execute(text("DROP TABLE case_place"))
    session.flush()
