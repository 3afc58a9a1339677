"""Loading the demo county: its boundaries through the importer, then synthetic cases."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.cases.bulk import BulkResult, bulk_insert_cases, put_back
from webapp.cases.models import OPEN_SQL
from webapp.demo import synthetic
from webapp.grid.importer import ImportReport, import_areas
from webapp.grid.models import AreaLevel
from webapp.grid.queries import set_setting
from webapp.roads.importer import RoadImportReport, import_roads

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "gis_data" / "yanjin"
DEMO_COUNTY = "410726"
FILES = [
    (AreaLevel.COUNTY, "county.geojson"),
    (AreaLevel.TOWNSHIP, "townships.geojson"),
    (AreaLevel.VILLAGE, "villages.geojson"),
    (AreaLevel.GRID, "grids.geojson"),
]
ROADS_FILE = "roads.geojson"  # made by gis_data/make_demo_roads.py


@dataclass
class DemoReport:
    imports: list[ImportReport] = field(default_factory=list)
    cases: BulkResult | None = None
    events: int = 0
    hot_spots: list[synthetic.HotSpot] = field(default_factory=list)
    skipped_cases: int = 0  # cases already there, not loaded again


def load_boundaries(
    session: Session, progress=None, data_dir: Path = DEMO_DIR
) -> list[ImportReport]:
    """Import the demo county's four levels (idempotent) and mark the database as demo."""
    reports = [
        import_areas(session, data_dir / name, level, progress=progress) for level, name in FILES
    ]
    set_setting(session, "demo_county", DEMO_COUNTY)
    return reports


def load_roads(session: Session, progress=None, data_dir: Path = DEMO_DIR) -> RoadImportReport:
    """Import the demo county's (fictional) road network, replacing any there was."""
    return import_roads(
        session, data_dir / ROADS_FILE, DEMO_COUNTY, replace=True, progress=progress
    )


def road_count(session: Session) -> int:
    return session.execute(
        text("SELECT count(*) FROM roads WHERE county_code = :c"), {"c": DEMO_COUNTY}
    ).scalar_one()


def case_count(session: Session) -> int:
    return session.execute(text("SELECT count(*) FROM cases")).scalar_one()


def load_cases(
    session: Session,
    n: int,
    seed: int,
    now: datetime | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    events: str = "all",
) -> tuple[BulkResult, int, list[synthetic.HotSpot]]:
    """Generate and bulk-load ``n`` synthetic cases, and their event history.

    ``events``: ``all`` (every case's history), ``open`` (only the cases still being
    handled, whose case files staff work in), ``none``; ``auto``: all up to
    :data:`FULL_HISTORY_MAX` cases, else open (see :func:`history_for`).
    """
    started = time.perf_counter()
    # The points now, the other columns in a thread while PostgreSQL places the points
    # (a first load into empty cases; any other load waits for them before it starts).
    rows, spots = synthetic.generate_in_background(session, n, seed=seed, now=now)
    generated = time.perf_counter()
    # The history goes in before the indexes and keys of a rebuilding load come back:
    # its foreign key to the cases is then checked by one join, not once per event.
    result = bulk_insert_cases(session, rows, progress=progress, total=n, defer_restore=True)
    result.timings = {"generate": generated - started, **result.timings}
    written = 0
    history = history_for(n, events)
    if history != "none" and result.first_id is not None:
        started = time.perf_counter()
        written = synthesize_events(
            session, result.first_id, result.last_id, only_open=history == "open"
        )
        result.timings["events"] = time.perf_counter() - started
    put_back(session, result, progress)
    return result, written, spots


# Up to this many cases every demo case gets its history; a bigger load writes the
# history of the open cases only: the 6.7 million events of a million cases take two
# minutes to write, where the cases themselves load in well under one.
FULL_HISTORY_MAX = 200_000


def history_for(n: int, events: str) -> str:
    """Which cases of a load of ``n`` get an event history: all, open or none."""
    if events == "auto":
        return "all" if n <= FULL_HISTORY_MAX else "open"
    return events


# The condition of the partial index of open cases, so the open cases come through it.
OPEN_ONLY = f"AND c.status NOT IN {OPEN_SQL}"


def synthesize_events(
    session: Session, first_id: int, last_id: int, only_open: bool = False
) -> int:
    """Write the event history the demo cases' timestamps imply, in one statement.

    ``only_open``: only for the cases still open (not resolved, closed or refused).
    """
    which = OPEN_ONLY if only_open else ""
    result = session.execute(
        text(
            f"""
            INSERT INTO case_events (case_id, action, at, actor_name, from_status, to_status, note)
            SELECT c.id, e.action, e.at, '演示数据', e.from_status, e.to_status, e.note
            FROM cases c
            CROSS JOIN LATERAL (VALUES
                ('register', c.reported_at, NULL, 'registered', '登记'),
                ('accept', c.accepted_at, 'registered', 'accepted', '受理'),
                ('assign', c.accepted_at + interval '2 hours', 'accepted', 'assigned', '交办至属地乡镇'),
                ('start', c.accepted_at + interval '1 day', 'assigned', 'in_progress', '开始办理'),
                ('conclude', c.concluded_at, 'in_progress', 'concluded', '出具处理意见书'),
                ('resolve', c.resolved_at, 'concluded', 'resolved', '回访后化解'),
                ('close', c.resolved_at + interval '1 day', 'resolved', 'closed', '销号')
            ) AS e(action, at, from_status, to_status, note)
            WHERE c.id BETWEEN :lo AND :hi
              AND e.at IS NOT NULL
              AND e.at <= now()
              AND (e.action <> 'close' OR c.status = 'closed')
              AND (e.action NOT IN ('assign', 'start') OR c.status NOT IN ('accepted', 'registered', 'not_accepted'))
              AND (e.action <> 'start' OR c.status <> 'assigned')
              {which}
            """
        ),
        {"lo": first_id, "hi": last_id},
    )
    if only_open:
        return result.rowcount or 0
    session.execute(
        text(
            """
            INSERT INTO case_events (case_id, action, at, actor_name, from_status, to_status, note)
            SELECT c.id, 'not_accept', c.reported_at + interval '3 days', '演示数据',
                   'registered', 'not_accepted', '不属于信访受理范围，已告知依法途径'
            FROM cases c WHERE c.id BETWEEN :lo AND :hi AND c.status = 'not_accepted'
            """
        ),
        {"lo": first_id, "hi": last_id},
    )
    return result.rowcount or 0
