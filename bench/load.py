"""Workload 1: bulk load with grid assignment, against the floor.

The floor is the least any loader could do with the same rows: ``COPY`` them (the
same binary stream the loader sends) into a bare table with no defaults, constraints
or indexes, index their points and run one set-based polygon-first spatial join
(each grid probes the points' GiST index) into a table of (row, grid). The loaders:

* the demo loader (``flask demo load --no-events``): generate, ``cases.bulk`` into an
  empty ``cases`` (the 三无 escalations are generated columns), commit;
* the ledger import (``exchange.importer.import_ledger``): read and check a CSV
  ledger, then ``cases.bulk`` into a ``cases`` table already holding the scale's
  cases, every index maintained (the table stays readable), rolled back afterwards.
"""

from __future__ import annotations

import csv
import re
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from bench.common import Timing, app_for, create_db, stopwatch
from webapp.cases import bulk, pgcopy
from webapp.db import database

SEED = 2026


def build_base(name: str) -> str:
    """A database with the schema and the demo county's boundaries (no cases): the template."""
    from webapp.demo import accounts, loader
    from webapp.migrate import upgrade

    url = create_db(name)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    app = app_for(url)
    with app.app_context():
        session = database(app).sessions()
        loader.load_boundaries(session)
        accounts.create_demo_accounts(session, loader.DEMO_COUNTY)
        session.commit()
        session.close()
        database(app).engine.dispose()
    return url


def _floor(session, cols: bulk.CaseColumns) -> dict:
    """COPY the rows into a bare table, index the points, one polygon-first join. Seconds."""
    raw = session.connection().connection.dbapi_connection
    ddl = ", ".join(f"{name} {kind.replace(' NOT NULL', '')}" for name, kind in bulk.STAGE)
    out = {}
    with stopwatch() as total:
        with stopwatch() as t:
            session.execute(text(f"CREATE TABLE floor_rows ({ddl})"))
            with raw.cursor() as cur:
                cur.copy_expert(
                    f"COPY floor_rows ({', '.join(bulk.STAGE_NAMES)}) FROM STDIN (FORMAT binary)",
                    pgcopy.ChunkReader(pgcopy.copy_chunks(cols.columns)),
                    size=1 << 20,
                )
            out["copy"] = t()
        with stopwatch() as t:
            session.execute(text("CREATE INDEX ON floor_rows USING gist (geom)"))
            session.execute(text("ANALYZE floor_rows"))
            out["index"] = t()
        with stopwatch() as t:
            session.execute(
                text(
                    """
                    CREATE TABLE floor_place AS
                    SELECT l.ord, g.id AS grid_id
                    FROM (SELECT id, geom FROM areas WHERE level = 'grid') g
                    CROSS JOIN LATERAL (
                        SELECT ord FROM floor_rows l WHERE ST_Contains(g.geom, l.geom) OFFSET 0
                    ) l
                    """
                )
            )
            out["join"] = t()
        session.commit()
        out["total"] = total()
    session.execute(text("DROP TABLE floor_rows, floor_place"))
    session.commit()
    return out


def _join_plan(session) -> str:
    """EXPLAIN of the loader's placement join on a small staging table (polygon first?)."""
    session.execute(text("CREATE TEMP TABLE plan_points (ord bigint, geom geometry(Point, 4326))"))
    session.execute(
        text(
            "INSERT INTO plan_points SELECT g, ST_SetSRID(ST_MakePoint(114.1 + random() * 0.4, "
            "35.1 + random() * 0.3), 4326) FROM generate_series(1, 20000) g"
        )
    )
    session.execute(text("CREATE INDEX ON plan_points USING gist (geom)"))
    session.execute(text("ANALYZE plan_points"))
    plan = (
        session.execute(
            text(
                """
            EXPLAIN SELECT l.ord, g.id
            FROM (SELECT id, code, geom FROM areas WHERE level = 'grid') g
            CROSS JOIN LATERAL (
                SELECT ord FROM plan_points l WHERE ST_Contains(g.geom, l.geom) OFFSET 0
            ) l
            """
            )
        )
        .scalars()
        .all()
    )
    session.rollback()
    return "\n".join(plan)


SCHEMA_SQL = """
SELECT 'index ' || pg_get_indexdef(x.indexrelid)
FROM pg_index x WHERE x.indrelid = ANY(
    ARRAY['cases', 'case_tallies', 'case_category_tallies', 'heat_tallies']::regclass[])
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conrelid = ANY(ARRAY['case_tallies', 'case_category_tallies', 'heat_tallies']::regclass[])
UNION ALL
SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE conrelid = 'cases'::regclass OR confrelid = 'cases'::regclass
UNION ALL
SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname
FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1
"""


_CAST = re.compile(r"::(?:character varying|[a-z_]+)(?:\[\])?")


def schema_of_cases(session) -> list[str]:
    """The indexes and constraints of ``cases`` (and those referring to it) and of the
    tallies (a first load takes both apart), every trigger.

    Compared up to casts, brackets and spaces: PostgreSQL spells an index predicate
    again differently once it has been through ``pg_get_indexdef`` and back
    (``(status)::text <> ALL ((ARRAY[...])::text[])`` becomes ``ARRAY[(...)::text, ...]``).
    """
    rows = session.execute(text(SCHEMA_SQL)).scalars()
    return sorted(re.sub(r"[()\s]", "", _CAST.sub("", r)) for r in rows)


def demo_load(
    base: str,
    name: str,
    n: int,
    repeats: int,
    now: datetime,
    log,
    rebuild_indexes: bool | None = None,
) -> dict:
    """Load ``n`` demo cases ``repeats`` times (a fresh copy of the base each time), floor beside.

    After each load the indexes, constraints and triggers must be what they were before
    (a load that rebuilds the indexes takes them apart first). ``rebuild_indexes`` as in
    ``bulk_insert_cases`` (None: the loader decides by size).
    """
    from webapp.demo import synthetic

    loads, floors, generate = Timing(), Timing(), Timing()
    stages: list[dict] = []
    floor_stages: list[dict] = []
    result = None
    for r in range(repeats):
        url = create_db(name, template=base)
        app = app_for(url)
        with app.app_context():
            session = database(app).sessions()
            with stopwatch() as t:
                cols, _spots = synthetic.generate(session, n, seed=SEED, now=now)
            generate.samples.append(t())
            # Floor and loader take turns going first, so neither always meets a warm cache.
            order = ("floor", "load") if r % 2 == 0 else ("load", "floor")
            for what in order:
                if what == "floor":
                    f = _floor(session, cols)
                    floors.samples.append(f["total"])
                    floor_stages.append(f)
                else:
                    schema = schema_of_cases(session)
                    with stopwatch() as t:
                        result = bulk.bulk_insert_cases(
                            session, cols, total=n, rebuild_indexes=rebuild_indexes
                        )
                        session.commit()
                    loads.samples.append(t())
                    after = schema_of_cases(session)
                    if after != schema:
                        lost = sorted(set(schema) - set(after))
                        gained = sorted(set(after) - set(schema))
                        raise AssertionError(
                            f"the load changed the schema of cases: lost {lost[:5]}, "
                            f"gained {gained[:5]}"
                        )
                    stages.append(dict(result.timings))
            log(
                f"  load {n:>9,}: loader {loads.samples[-1]:6.1f} s, floor {floors.samples[-1]:6.1f} s"
                f" (generate {generate.samples[-1]:.1f} s)"
            )
            plan = _join_plan(session) if r == repeats - 1 else None
            session.close()
            database(app).engine.dispose()
    # What the other workloads read: statistics and visibility as autovacuum would leave them.
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM (ANALYZE) cases"))
        counts = conn.execute(
            text("SELECT count(*), pg_total_relation_size('cases') FROM cases")
        ).one()
    engine.dispose()
    return {
        "rows": n,
        "inserted": result.inserted,
        "outside": len(result.outside),
        "on_border": result.on_border,
        "rebuilt_indexes": result.rebuilt_indexes,
        "cases_in_table": counts[0],
        "cases_bytes": counts[1],
        "generate": generate.to_dict(),
        "loader": loads.to_dict(),
        "floor": floors.to_dict(),
        "ratio": loads.median / floors.median,
        "loader_stages": _median_stages(stages),
        "floor_stages": _median_stages(floor_stages),
        "join_plan": plan,
        "demo_total": generate.median + loads.median,
    }


def _median_stages(runs: list[dict]) -> dict:
    keys = sorted({k for r in runs for k in r})
    return {k: float(np.median([r.get(k, 0.0) for r in runs])) for k in keys}


# -- the ledger import -------------------------------------------------------------------

HEADER = [
    "序号",
    "登记日期",
    "信访人",
    "联系电话",
    "身份证号",
    "问题类别",
    "来源",
    "人数",
    "乡镇",
    "村(社区)",
    "经度",
    "纬度",
    "坐标系",
    "事由",
    "主要诉求",
    "办理状态",
    "办结日期",
]


def write_ledger(session, path: Path, rows: int, seed: int = SEED) -> Path:
    """A CSV ledger of ``rows`` petitions at random points of random grids (fixed seed)."""
    import shapely

    grids = (
        session.execute(
            text("SELECT ST_AsBinary(geom) FROM areas WHERE level = 'grid' ORDER BY code")
        )
        .scalars()
        .all()
    )
    geoms = shapely.from_wkb([bytes(g) for g in grids])
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    cats = session.execute(text("SELECT name FROM categories ORDER BY id")).scalars().all()
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(geoms), rows)
    lon = np.empty(rows)
    lat = np.empty(rows)
    todo = np.arange(rows)
    while len(todo):
        b = bounds[which[todo]]
        x = b[:, 0] + rng.random(len(todo)) * (b[:, 2] - b[:, 0])
        y = b[:, 1] + rng.random(len(todo)) * (b[:, 3] - b[:, 1])
        ok = shapely.contains_xy(geoms[which[todo]], x, y)
        lon[todo[ok]], lat[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    channels = ["来访", "来信", "网上信访", "电话", "网格员排查"]
    statuses = ["办理中", "已办结", "已化解", "已受理"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        months = rng.integers(1, 13, rows)
        days = rng.integers(1, 29, rows)
        for i in range(rows):
            status = statuses[i % len(statuses)]
            done = f"2025-{months[i]:02d}-28" if status in ("已办结", "已化解") else ""
            w.writerow(
                [
                    i + 1,
                    f"2025-{months[i]:02d}-{days[i]:02d}",
                    f"台账{i}",
                    f"139{i:08d}",
                    "",
                    cats[i % len(cats)],
                    channels[i % len(channels)],
                    1 + i % 3,
                    "",
                    "",
                    f"{lon[i]:.6f}",
                    f"{lat[i]:.6f}",
                    "WGS84",
                    f"台账导入事项{i}",
                    "反映问题，请求解决",
                    status,
                    done,
                ]
            )
    return path


def ledger_import(url: str, path: Path, rows: int, repeats: int, log) -> dict:
    """Import the ledger ``repeats`` times into the loaded database (each rolled back), floor beside."""
    from webapp.exchange import importer

    app = app_for(url)
    totals, bulks, floors = Timing(), Timing(), Timing()
    stages: list[dict] = []
    imported = 0
    captured: list[bulk.BulkResult] = []
    real_bulk = bulk.bulk_insert_cases

    def spy(*args, **kwargs):
        started = time.perf_counter()
        result = real_bulk(*args, **kwargs)
        result.timings["total"] = time.perf_counter() - started
        captured.append(result)
        return result

    with app.app_context():
        for _ in range(repeats):
            session = database(app).sessions()
            importer.bulk.bulk_insert_cases = spy
            try:
                with stopwatch() as t:
                    report = importer.import_ledger(session, path)
                    session.flush()
                totals.samples.append(t())
            finally:
                importer.bulk.bulk_insert_cases = real_bulk
            imported = report.imported
            bulks.samples.append(captured[-1].timings["total"])
            stages.append(dict(captured[-1].timings))
            # The same rows the importer loaded, for the floor.
            good = [importer._bulk_row(x) for x in report.rows if x.status_code == "ok"]
            session.rollback()
            cols = bulk.columns_from_rows(good)
            f = _floor(session, cols)
            floors.samples.append(f["total"])
            session.close()
            log(
                f"  ledger {rows:>7,} rows: import {totals.samples[-1]:6.1f} s "
                f"(bulk {bulks.samples[-1]:5.1f} s), floor {floors.samples[-1]:5.1f} s"
            )
        database(app).engine.dispose()
    return {
        "rows": rows,
        "imported": imported,
        "import_total": totals.to_dict(),
        "bulk": bulks.to_dict(),
        "floor": floors.to_dict(),
        "ratio": bulks.median / floors.median,
        "bulk_stages": _median_stages(stages),
    }
