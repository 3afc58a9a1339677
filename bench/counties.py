"""Beyond one county: 20 counties in one database, a county's pages as counties are added.

The demo county's areas are copied 19 times side by side under new county codes, and
``cases_per_county`` synthetic cases are loaded into each (the same generator, the
points moved with their county; the bulk loader's spatial join puts them in the new
grids). Then for 1, 5, 10 and 20 counties, the cases of those counties are laid out
as a province's table would hold them, in the order they arrive (time order, the
counties interleaved), three ways:

* ``plain``: one table with the app's indexes (a county's rows are scattered);
* ``plain+county``: the same with a B-tree on (county_code, reported_at) as well;
* ``partitioned``: declarative LIST partitions by county code, the same indexes.

Four queries of one county's pages run against each: the statistics of the county by
township for a year (``stats.queries.build_sql``, as the dashboard runs it), the
counts per grid of the last 90 days (the maps' aggregate), the newest 50 cases (a
list), and the counts per grid for Gi* (``hotspots.queries.area_counts``' SQL).
"""

from __future__ import annotations

import re
from datetime import date, datetime

import numpy as np
from sqlalchemy import create_engine, text

from bench.common import Timing, app_for, create_db, drop_db, repeat
from webapp.db import database

DB = "gridcase_bench_counties"
CHECKPOINTS = (1, 5, 10, 20)
COLUMNS_PER_ROW = 5


def county_codes(n: int) -> list[str]:
    return ["410726", *[f"{419100 + i:06d}" for i in range(1, n)]]


def build(base: str, counties: int, cases_per_county: int, seed: int, log) -> str:
    """The database with ``counties`` counties and their cases in the app's ``cases`` table."""
    from webapp.cases import bulk, pgcopy
    from webapp.demo import synthetic

    url = create_db(DB, template=base)
    app = app_for(url)
    codes = county_codes(counties)
    with app.app_context():
        session = database(app).sessions()
        x0, y0, x1, y1 = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom) e FROM areas WHERE level = 'county') t"
            )
        ).one()
        dx, dy = (x1 - x0) * 1.05, (y1 - y0) * 1.05
        offsets = [
            ((i % COLUMNS_PER_ROW) * dx, (i // COLUMNS_PER_ROW) * dy) for i in range(counties)
        ]
        # The demo county's cases once, as columns; every county gets them moved to its place.
        cols, _ = synthetic.generate(session, cases_per_county, seed=seed)
        geom_at = bulk.STAGE_NAMES.index("geom")
        ord_at = bulk.STAGE_NAMES.index("ord")
        rec = cols.columns[geom_at].bytes.copy().view(pgcopy.Point._DTYPE).reshape(-1)
        for i, code in enumerate(codes[1:], start=1):
            ox, oy = offsets[i]
            session.execute(
                text(
                    """
                    INSERT INTO areas (code, name, level, county_code, township_code, village_code,
                                       population, households, geom, label_point, area_m2)
                    SELECT :code || substr(code, 7), name, level, :code,
                           CASE WHEN township_code IS NULL THEN NULL ELSE :code || substr(township_code, 7) END,
                           CASE WHEN village_code IS NULL THEN NULL ELSE :code || substr(village_code, 7) END,
                           population, households,
                           ST_Translate(geom, :ox, :oy), ST_Translate(label_point, :ox, :oy), area_m2
                    FROM areas WHERE county_code = '410726'
                    """
                ),
                {"code": code, "ox": ox, "oy": oy},
            )
        session.commit()
        session.execute(text("ANALYZE areas"))
        for i, code in enumerate(codes):
            ox, oy = offsets[i]
            columns = list(cols.columns)
            columns[geom_at] = pgcopy.Point(rec["x"] + ox, rec["y"] + oy)
            columns[ord_at] = pgcopy.int8(np.arange(cases_per_county) + i * cases_per_county)
            moved = bulk.CaseColumns(dict(zip(bulk.STAGE_NAMES, columns, strict=True)))
            result = bulk.bulk_insert_cases(session, moved, total=cases_per_county)
            session.commit()
            if result.inserted != cases_per_county - len(result.outside) or result.outside[5:]:
                raise RuntimeError(f"county {code}: {result.inserted} cases stored")
        session.close()
        database(app).engine.dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM (ANALYZE) cases"))
        per = conn.execute(
            text("SELECT county_code, count(*) FROM cases GROUP BY 1 ORDER BY 1")
        ).all()
    engine.dispose()
    log(f"  counties: {len(per)} counties, {sum(n for _, n in per):,} cases")
    return url


def _index_ddl(conn, table: str) -> list[str]:
    """The app's indexes of ``cases``, made for ``table``."""
    defs = conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'cases'")
    ).all()
    out = []
    for name, ddl in defs:
        ddl = ddl.replace(" ON public.cases ", f" ON {table} ")
        ddl = re.sub(r"INDEX \S+ ON", f"INDEX {table}_{name} ON", ddl)
        out.append(ddl.replace("UNIQUE INDEX", "INDEX"))  # partitions: uniqueness needs the key
    return out


def _layout(conn, k: int, codes: list[str]) -> dict[str, str]:
    """The three tables holding the cases of the first ``k`` counties, in arrival order."""
    chosen = codes[:k]
    tables = {
        "plain": f"prov_plain_{k}",
        "plain+county": f"prov_county_{k}",
        "partitioned": f"prov_part_{k}",
    }
    for t in tables.values():
        conn.execute(text(f"DROP TABLE IF EXISTS {t} CASCADE"))
    select = "SELECT * FROM cases WHERE county_code = ANY(:codes) ORDER BY reported_at, id"
    conn.execute(text(f"CREATE TABLE {tables['plain']} AS {select}"), {"codes": chosen})
    conn.execute(text(f"CREATE TABLE {tables['plain+county']} AS {select}"), {"codes": chosen})
    conn.execute(
        text(f"CREATE TABLE {tables['partitioned']} (LIKE cases) PARTITION BY LIST (county_code)")
    )
    for code in chosen:
        conn.execute(
            text(
                f"CREATE TABLE {tables['partitioned']}_{code} PARTITION OF {tables['partitioned']} "
                f"FOR VALUES IN ('{code}')"
            )
        )
    conn.execute(text(f"INSERT INTO {tables['partitioned']} {select}"), {"codes": chosen})
    for t in tables.values():
        for ddl in _index_ddl(conn, t):
            conn.execute(text(ddl))
    conn.execute(text(f"CREATE INDEX ON {tables['plain+county']} (county_code, reported_at)"))
    for t in tables.values():
        conn.execute(text(f"VACUUM (ANALYZE) {t}"))
    return tables


def _queries(session, county_code: str) -> dict[str, tuple[str, dict]]:
    from webapp.grid.models import Area, AreaLevel
    from webapp.stats.queries import Filters, Grouping, Period, StatsQuery, build_sql

    area = session.query(Area).filter_by(code=county_code).one()
    last_year = date.today().year - 1
    stats_sql, stats_params = build_sql(
        StatsQuery(
            area=area,
            period=Period(
                date(last_year, 1, 1), date(last_year, 12, 31), datetime.now().astimezone()
            ),
            grouping=Grouping("area", AreaLevel.TOWNSHIP),
            filters=Filters(),
            scope=("c.county_code = :scope_county", {"scope_county": county_code}),
        )
    )
    return {
        "stats_year_by_township": (stats_sql, stats_params),
        "map_grid_counts_90d": (
            "SELECT grid_code, count(*) FROM cases c WHERE c.county_code = :c "
            "AND c.reported_at >= now() - interval '90 days' GROUP BY grid_code",
            {"c": county_code},
        ),
        "newest_50": (
            "SELECT id, number, title, status, reported_at FROM cases c WHERE c.county_code = :c "
            "ORDER BY c.reported_at DESC, c.id DESC LIMIT 50",
            {"c": county_code},
        ),
        "gi_counts_by_grid": (
            "SELECT a.code, coalesce(n.cnt, 0) FROM areas a LEFT JOIN (SELECT c.grid_code AS code, "
            "count(*) AS cnt FROM cases c WHERE c.county_code = :c GROUP BY c.grid_code) n "
            "ON n.code = a.code WHERE a.level = 'grid' AND a.code LIKE :p ORDER BY a.code",
            {"c": county_code, "p": county_code + "%"},
        ),
    }


def measure(url: str, counties: int, repeats: int, log) -> dict:
    codes = county_codes(counties)
    app = app_for(url)
    out: dict = {"checkpoints": {}, "counties": counties}
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with app.app_context():
        session = database(app).sessions()
        queries = _queries(session, codes[0])
        session.close()
        for k in [c for c in CHECKPOINTS if c <= counties]:
            with engine.connect() as conn:
                tables = _layout(conn, k, codes)
                rows = conn.execute(text(f"SELECT count(*) FROM {tables['plain']}")).scalar_one()
                point: dict = {"cases": rows}
                for variant, table in tables.items():
                    point[variant] = {}
                    for name, (sql, params) in queries.items():
                        q = re.sub(r"\bcases\b", table, sql)
                        t = repeat(
                            lambda q=q, params=params: conn.execute(text(q), params).all(), repeats
                        )
                        point[variant][name] = t.to_dict()
                out["checkpoints"][k] = point
                log(
                    f"  {k:2d} counties ({rows:,} cases): "
                    + ", ".join(
                        f"{v} {sum(point[v][n]['median'] for n in queries) * 1000:.0f} ms"
                        for v in tables
                    )
                )
                for t in tables.values():
                    conn.execute(text(f"DROP TABLE {t} CASCADE"))
        database(app).engine.dispose()
    engine.dispose()
    out["queries"] = list(queries)
    return out


def drop() -> None:
    drop_db(DB)


__all__ = ["build", "measure", "drop", "Timing"]
