"""Hand-made road networks and files for the road tests, and a tiny plan to route on them.

The river network lies in the demo county (410726) near 114.20°E 35.30°N. Places are
given in metres east (x) and north (y) of that origin, in a transverse Mercator
projection centred there: a river runs north-south at x = 500 between two roads, and
one bridge crosses it at y = 1200::

      (0,1200) ======= bridge ======= (1000,1200)
         |                                 |
      west road        river          east road
         |               ~                 |
         |               ~            (1000,600)
         |               ~                 |
       (0,0)             ~            (1000,0)   P1 (1030,0)
"""

from __future__ import annotations

import json
import uuid
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import LineString, mapping
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from webapp.roads.importer import import_roads
from webapp.visits.models import VisitPlan, VisitPlanPerson

COUNTY = "410726"
ORIGIN = (114.20, 35.30)
GEOD = Geod(ellps="WGS84")
_TM = Transformer.from_crs(
    "EPSG:4326",
    f"+proj=tmerc +lat_0={ORIGIN[1]} +lon_0={ORIGIN[0]} +k=1 +x_0=0 +y_0=0 +ellps=WGS84",
    always_xy=True,
)


def at(x: float, y: float) -> tuple[float, float]:
    """(lon, lat) of the place x metres east and y metres north of the origin."""
    lon, lat = _TM.transform(x, y, direction="INVERSE")
    return (float(lon), float(lat))


def line(*xy: tuple[float, float]) -> LineString:
    return LineString([at(x, y) for x, y in xy])


def metres(*points: tuple[float, float]) -> float:
    """Geodesic length of the polyline through ``points`` (lon, lat), by pyproj."""
    lon = [p[0] for p in points]
    lat = [p[1] for p in points]
    return float(GEOD.line_length(lon, lat))


RIVER_ROADS = [
    ({"name": "西岸路", "kind": "村道"}, line((0, 0), (0, 1200))),
    ({"name": "大桥", "kind": "乡道"}, line((0, 1200), (1000, 1200))),
    ({"name": "东岸路", "kind": "村道"}, line((1000, 1200), (1000, 600))),
    ({"name": "东岸路", "kind": "村道"}, line((1000, 600), (1000, 0))),
]
START = at(0, 0)
P1 = at(1030, 0)  # 30 m east of the east road's south end; straight across the river from START
P2 = at(0, 1200)  # the bridge's west end
P3 = at(1000, 600)  # on the east road
BRIDGE_EAST = at(1000, 1200)  # on no straight leg: only a route along the roads passes it
# An island: a road joined to nothing else, and a stop on it.
ISLAND_ROAD = ({"name": "孤岛路", "kind": "村道"}, line((3000, 3000), (3400, 3000)))
P4 = at(3400, 3000)


def write_lines(path: Path, features, crs: str | None = None, driver: str | None = None) -> Path:
    """Write line features: GeoJSON by hand (RFC 7946), other formats with GDAL."""
    if driver is None:
        fc = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": props,
                    "geometry": mapping(g) if g is not None else None,
                }
                for props, g in features
            ],
        }
        path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
        return path
    geoms = np.array([g for _, g in features], dtype=object)
    fields = list(features[0][0].keys())
    data = [np.array([p[f] for p, _ in features], dtype=object) for f in fields]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "crs was not provided": on purpose
        pyogrio.raw.write(
            str(path),
            shapely.to_wkb(geoms),
            data,
            fields,
            driver=driver,
            geometry_type="LineString",
            crs=crs,
            encoding="UTF-8" if driver == "ESRI Shapefile" else None,
        )
    return path


def load_river(session, tmp_path: Path, island: bool = False):
    """Replace the county's roads with the river network (inside the test's transaction)."""
    features = RIVER_ROADS + ([ISLAND_ROAD] if island else [])
    path = write_lines(tmp_path / f"river_{uuid.uuid4().hex[:6]}.geojson", features)
    return import_roads(session, path, COUNTY, replace=True)


def tiny_plan(session, planner, worker, start, points, day: date | None = None) -> VisitPlan:
    """A draft plan of the county with one person's day of grid stops at ``points``.

    The stops are stored in the order given; route them with ``planning.optimise``.
    """
    day = day or date(2030, 1, 7)
    plan = VisitPlan(
        title="过河测试",
        area_code=COUNTY,
        date_from=day,
        date_to=day,
        status="draft",
        weights={},
        start_mode="point",
        start_point=f"SRID=4326;POINT({start[0]} {start[1]})",
        created_by=planner.id,
    )
    session.add(plan)
    session.flush()
    session.add(
        VisitPlanPerson(
            plan_id=plan.id,
            user_id=worker.id,
            daily_capacity=len(points) + 1,
            start_point=f"SRID=4326;POINT({start[0]} {start[1]})",
            start_label="村委会",
        )
    )
    grids = (
        session.execute(
            text(
                "SELECT code FROM areas WHERE level = 'grid' AND county_code = :c ORDER BY code "
                "LIMIT :n"
            ),
            {"c": COUNTY, "n": len(points)},
        )
        .scalars()
        .all()
    )
    session.execute(
        text(
            """
            INSERT INTO visit_stops (plan_id, kind, grid_code, location, score, reasons,
                                     user_id, day, seq)
            SELECT :p, 'grid', t.grid, ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), 1,
                   '[]'::jsonb, :u, :d, t.n
            FROM unnest(CAST(:grids AS text[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]))
                 WITH ORDINALITY AS t(grid, lon, lat, n)
            """
        ),
        {
            "p": plan.id,
            "u": worker.id,
            "d": day,
            "grids": list(grids),
            "lon": [p[0] for p in points],
            "lat": [p[1] for p in points],
        },
    )
    session.flush()
    return plan


def route_rows(session, plan_id: int):
    """The stops of a plan in walking order with their legs."""
    return session.execute(
        text(
            "SELECT ST_X(location) AS lon, ST_Y(location) AS lat, seq, leg_m, leg_kind, "
            "leg_path IS NOT NULL AS has_path FROM visit_stops WHERE plan_id = :p ORDER BY seq"
        ),
        {"p": plan_id},
    ).all()


def copy_database(server_url: str, template_url: str) -> str:
    """A new database copied from the template; drop it with ``webapp.db.drop_database``."""
    name = f"{make_url(template_url).database}_r{uuid.uuid4().hex[:6]}"
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(
        make_url(server_url).set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template_url).database}"'))
    admin.dispose()
    return url
