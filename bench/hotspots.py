"""Workload 5: Gi* hot spots on every grid, against esda on the same data; a province of grids.

The app's path (``hotspots.queries.hot_spots``: counts per grid in SQL, queen
neighbours in PostGIS, z-scores in numpy) against PySAL: the same counts, queen
weights built by libpysal from the same polygons, ``esda.G_Local(star=True,
transform="B")`` with analytic inference only (``permutations=0``), as the app's. The
z-scores are compared before any time counts. The province: 100,000 synthetic grids
(a Voronoi cover of a province-sized square, in a database of their own) with cases
in them, analysed by the app's same function in a child process whose peak memory is
read from the kernel, the database backend's included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
from sqlalchemy import create_engine, text

from bench.common import Timing, app_for, create_db, drop_db, repeat
from webapp.db import database


def county(url: str, repeats: int, log) -> dict:
    import esda
    import libpysal
    import shapely

    from webapp.grid.models import AreaLevel
    from webapp.hotspots import queries, weights

    app = app_for(url)
    with app.app_context():
        session = database(app).sessions()
        f = queries.CaseFilter()

        def ours():
            return queries.hot_spots(session, AreaLevel.GRID, None, f)

        result = ours()
        # esda on the same data: the counts from the same query, the weights from the polygons.
        codes, counts, _pops = queries.area_counts(session, AreaLevel.GRID, None, f)
        rows = session.execute(
            text("SELECT code, ST_AsBinary(geom) FROM areas WHERE level = 'grid' ORDER BY code")
        ).all()
        polys = shapely.from_wkb([bytes(r[1]) for r in rows])

        def theirs():
            w = libpysal.weights.Queen.from_iterable(polys, ids=[r[0] for r in rows])
            w.transform = "B"
            return esda.G_Local(counts, w, star=True, transform="B", permutations=0)

        g = theirs()
        if not np.allclose(g.Zs, result.z, atol=1e-9):
            raise AssertionError("Gi* z-scores differ from esda's")
        nb = weights.queen(session, AreaLevel.GRID, None)
        w_given = libpysal.weights.W(
            {i: list(js) for i, js in nb.as_dict().items()}, silence_warnings=True
        )

        def theirs_given_weights():
            return esda.G_Local(counts, w_given, star=True, transform="B", permutations=0)

        def ours_given_weights():
            from webapp.hotspots import gistar

            return gistar.analyse(counts, nb)

        def ours_cold():
            weights.clear_cache()  # the neighbours computed, as on the first request
            return ours()

        t_ours = repeat(ours_cold, repeats)
        t_ours_kept = repeat(ours, repeats)
        t_theirs = repeat(theirs, repeats)
        t_ours_z = repeat(ours_given_weights, repeats)
        t_theirs_z = repeat(theirs_given_weights, repeats)
        session.rollback()
        session.close()
        database(app).engine.dispose()
    log(
        f"  Gi* on {len(codes)} grids: app {t_ours.median * 1000:.0f} ms "
        f"({t_ours_kept.median * 1000:.0f} ms with the neighbours kept), "
        f"esda {t_theirs.median * 1000:.0f} ms (z only: {t_ours_z.median * 1000:.1f} vs "
        f"{t_theirs_z.median * 1000:.1f} ms); z-scores equal"
    )
    return {
        "grids": len(codes),
        "app": t_ours.to_dict(),
        "app_neighbours_kept": t_ours_kept.to_dict(),
        "esda": t_theirs.to_dict(),
        "ratio": t_ours.median / t_theirs.median,
        "app_z_only": t_ours_z.to_dict(),
        "esda_z_only": t_theirs_z.to_dict(),
        "hot_grids": int((result.bins > 0).sum()),
    }


# -- a province of grids ---------------------------------------------------------------------

PROVINCE_DB = "gridcase_bench_province"


def build_province(base: str, grids: int, cases: int, seed: int, log) -> tuple[str, dict]:
    """A copy of the base with ``grids`` Voronoi grids (own codes) and ``cases`` cases in them."""
    import shapely

    from webapp.cases import bulk, pgcopy

    url = create_db(PROVINCE_DB, template=base)
    rng = np.random.default_rng(seed)
    # About 1.7 km² a grid: 100,000 grids cover a square of ~410 km (a province).
    side = 0.0045 * np.sqrt(grids) * 0.9
    x0, y0 = 111.0, 32.0
    pts = np.column_stack([x0 + rng.random(grids) * side, y0 + rng.random(grids) * side])
    started = time.perf_counter()
    box = shapely.box(x0, y0, x0 + side, y0 + side)
    cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=box)
    cells = shapely.intersection(shapely.get_parts(cells), box)
    order = np.lexsort(
        (
            shapely.get_coordinates(shapely.centroid(cells))[:, 0],
            np.floor(shapely.get_coordinates(shapely.centroid(cells))[:, 1] / (side / 100)),
        )
    )
    cells = cells[order]
    n = len(cells)
    # Codes: 100 counties (419001..), 10 townships each, villages of about 3 grids.
    idx = np.arange(n)
    per_county = int(np.ceil(n / 100))
    county = idx // per_county
    within = idx % per_county
    township = within * 10 // per_county
    village = (within % max(per_county // 10, 1)) // 3
    grid_no = within % 3 + 1
    codes = [
        f"{419001 + c:06d}{t + 1:03d}{v + 1:03d}{g:03d}"
        for c, t, v, g in zip(
            county.tolist(), township.tolist(), village.tolist(), grid_no.tolist(), strict=True
        )
    ]
    if len(set(codes)) != n:
        raise RuntimeError("province codes collide")
    engine = create_engine(url)
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.execute("CREATE TEMP TABLE province_grid (code text, wkb bytea)")
            import io

            buf = io.StringIO()
            wkb = shapely.to_wkb(cells, hex=True)
            for c, w in zip(codes, wkb, strict=True):
                buf.write(f"{c}\t\\\\x{w}\n")
            buf.seek(0)
            cur.copy_expert("COPY province_grid (code, wkb) FROM STDIN", buf)
        conn.execute(
            text(
                """
                INSERT INTO areas (code, name, level, county_code, township_code, village_code,
                                   geom, label_point, area_m2)
                SELECT code, '网格' || code, 'grid', left(code, 6), left(code, 9), left(code, 12),
                       ST_SetSRID(ST_Multi(ST_CollectionExtract(ST_GeomFromWKB(wkb), 3)), 4326),
                       ST_PointOnSurface(ST_SetSRID(ST_GeomFromWKB(wkb), 4326)),
                       ST_Area(ST_SetSRID(ST_GeomFromWKB(wkb), 4326)::geography)
                FROM province_grid
                """
            )
        )
        conn.execute(text("ANALYZE areas"))
    engine.dispose()
    built = time.perf_counter() - started
    # Cases: clustered around a few hundred hot centres plus a uniform background.
    centres = pts[rng.choice(n, 300, replace=False)]
    k = rng.random(cases) < 0.4
    lon = np.where(k, 0, x0 + rng.random(cases) * side)
    lat = np.where(k, 0, y0 + rng.random(cases) * side)
    c = rng.integers(0, len(centres), cases)
    lon[k] = centres[c[k], 0] + rng.normal(0, 0.01, int(k.sum()))
    lat[k] = centres[c[k], 1] + rng.normal(0, 0.01, int(k.sum()))
    lon = np.clip(lon, x0 + 1e-6, x0 + side - 1e-6)
    lat = np.clip(lat, y0 + 1e-6, y0 + side - 1e-6)
    app = app_for(url)
    with app.app_context():
        session = database(app).sessions()
        cat = session.execute(text("SELECT id FROM categories ORDER BY id LIMIT 1")).scalar_one()
        now = time.time()
        cols = bulk.CaseColumns(
            {
                "ord": pgcopy.int8(np.arange(cases)),
                "client_id": pgcopy.Ascii(
                    np.zeros((cases, 16), np.uint8), null=np.ones(cases, bool)
                ),
                "title": pgcopy.Categorical(np.zeros(cases, np.int64), ["全省模拟事项"]),
                "description": pgcopy.Categorical(np.zeros(cases, np.int64), ["演示数据"]),
                "category_id": pgcopy.int4(np.full(cases, cat)),
                "channel": pgcopy.Categorical(np.zeros(cases, np.int64), ["visit"]),
                "case_class": pgcopy.Categorical(np.zeros(cases, np.int64), ["request"]),
                "people_count": pgcopy.int4(np.ones(cases, np.int64)),
                "batch_count": pgcopy.int4(np.ones(cases, np.int64)),
                "geom": pgcopy.Point(lon, lat),
                "location_approx": pgcopy.boolean(np.zeros(cases, bool)),
                "status": pgcopy.Categorical(np.zeros(cases, np.int64), ["registered"]),
                "reported_at": pgcopy.timestamptz(
                    np.sort(now - rng.random(cases) * 3 * 365 * 86400)
                ),
                "accepted_at": pgcopy.timestamptz(np.zeros(cases), null=np.ones(cases, bool)),
                "concluded_at": pgcopy.timestamptz(np.zeros(cases), null=np.ones(cases, bool)),
                "resolved_at": pgcopy.timestamptz(np.zeros(cases), null=np.ones(cases, bool)),
                "due_at": pgcopy.timestamptz(np.zeros(cases), null=np.ones(cases, bool)),
                "opinion": pgcopy.Categorical(np.full(cases, -1), ["x"]),
                "satisfaction": pgcopy.Categorical(np.full(cases, -1), ["x"]),
                "resolved_level": pgcopy.Categorical(np.full(cases, -1), ["x"]),
                "is_first": pgcopy.boolean(np.ones(cases, bool)),
                "repeat_ord": pgcopy.int8(np.zeros(cases), null=np.ones(cases, bool)),
                "skip_level": pgcopy.boolean(np.zeros(cases, bool)),
                "petitioner_name": pgcopy.Categorical(np.full(cases, -1), ["x"]),
                "petitioner_phone": pgcopy.Categorical(np.full(cases, -1), ["x"]),
                "petitioner_id_number": pgcopy.Categorical(np.full(cases, -1), ["x"]),
            }
        )
        t0 = time.perf_counter()
        result = bulk.bulk_insert_cases(session, cols, total=cases)
        session.commit()
        loaded = time.perf_counter() - t0
        session.close()
        database(app).engine.dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM (ANALYZE) cases"))
    engine.dispose()
    log(f"  province: {n:,} grids in {built:.1f} s, {result.inserted:,} cases in {loaded:.1f} s")
    return url, {
        "grids": n,
        "cases": result.inserted,
        "build_grids_s": built,
        "load_cases_s": loaded,
    }


_CHILD = r"""
import json, os, resource, sys, time
from sqlalchemy import text
from bench.common import app_for
from webapp.db import database
from webapp.grid.models import AreaLevel
from webapp.hotspots import queries

def hwm(pid):
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024
    return None

app = app_for(sys.argv[1])
with app.app_context():
    session = database(app).sessions()
    backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    t0 = time.perf_counter()
    r = queries.hot_spots(session, AreaLevel.GRID, None, queries.CaseFilter())
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    nb_only = None
    print(json.dumps({
        "seconds": elapsed,
        "grids": len(r.codes),
        "hot": int((r.bins > 0).sum()),
        "cold": int((r.bins < 0).sum()),
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork and exec, so it would
        # report the bench process's own peak (2.3 GB after a million-case run).
        "python_peak_bytes": hwm(os.getpid()),
        "backend_peak_bytes": hwm(backend),
    }))
"""


def province(url: str, repeats: int, log) -> dict:
    """Gi* on every grid of the province, each run in a fresh process (time and peak memory)."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, url], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    t = Timing([r["seconds"] for r in runs])
    peak = max(r["python_peak_bytes"] for r in runs)
    backend = max(r["backend_peak_bytes"] or 0 for r in runs)
    log(
        f"  province Gi*: {runs[0]['grids']:,} grids in {t.median:.1f} s (median of {len(runs)}), "
        f"peak {peak / 2**20:.0f} MB app + {backend / 2**20:.0f} MB database backend"
    )
    return {
        "grids": runs[0]["grids"],
        "time": t.to_dict(),
        "python_peak_bytes": peak,
        "backend_peak_bytes": backend,
        "hot": runs[0]["hot"],
        "cold": runs[0]["cold"],
    }


def drop_province() -> None:
    drop_db(PROVINCE_DB)
