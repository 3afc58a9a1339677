"""Small builders for tests: hand-made areas and boundary files in any format and CRS.

The hand-made county (code 990100) lies near 100.0°E 30.0°N, far from the demo
county, so both can live in one database. Its coordinates are given in "units" of
0.01 degree from that origin; shared edges use the same literals, so points on them
are exactly on them.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pyogrio.raw
import shapely
from shapely.geometry import MultiPolygon, Polygon, box, mapping

from webapp.geo import wgs84_to_gcj02

ORIGIN = (100.0, 30.0)
UNIT = 0.01
COUNTY = "990100"
TOWNSHIP = "990100001"
VILLAGE = "990100001001"


def u(x: float, y: float) -> tuple[float, float]:
    """Map test units to WGS84 lon/lat."""
    return (ORIGIN[0] + x * UNIT, ORIGIN[1] + y * UNIT)


def ubox(x0, y0, x1, y1, holes=()) -> Polygon:
    shell = [u(x0, y0), u(x1, y0), u(x1, y1), u(x0, y1), u(x0, y0)]
    return Polygon(shell, [[u(*p) for p in h] for h in holes])


HOLE = [(0.5, 0.25), (1.0, 0.25), (1.0, 0.75), (0.5, 0.75), (0.5, 0.25)]

# A 4 x 2 county cut into four grids meeting at the corner (2, 1), with a hole in grid 1.
GRIDS = {
    f"{VILLAGE}001": ("甲网格", ubox(0, 0, 2, 1, holes=[HOLE])),
    f"{VILLAGE}002": ("乙网格", ubox(2, 0, 4, 1)),
    f"{VILLAGE}003": ("丙网格", ubox(0, 1, 2, 2)),
    f"{VILLAGE}004": ("丁网格", ubox(2, 1, 4, 2)),
}
WHOLE = ubox(0, 0, 4, 2, holes=[HOLE])


def feature_collection(features: list[tuple[dict, object]], crs: str | None = None) -> dict:
    fc: dict = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": props,
                "geometry": mapping(geom) if geom is not None else None,
            }
            for props, geom in features
        ],
    }
    if crs:
        fc["crs"] = {"type": "name", "properties": {"name": crs}}
    return fc


def write_geojson(path: Path, features: list[tuple[dict, object]], crs: str | None = None) -> Path:
    path.write_text(
        json.dumps(feature_collection(features, crs), ensure_ascii=False), encoding="utf-8"
    )
    return path


def write_file(
    path: Path, features: list[tuple[dict, object]], crs: str | None, driver: str
) -> Path:
    """Write features with GDAL (Shapefile, GPKG, GeoJSON) in the given CRS (None: no CRS)."""
    geoms = np.array([g for _, g in features], dtype=object)
    fields = list(features[0][0].keys())
    field_data = [np.array([p[f] for p, _ in features], dtype=object) for f in fields]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "crs was not provided": on purpose
        _write(path, geoms, field_data, fields, crs, driver)
    return path


def _write(path, geoms, field_data, fields, crs, driver) -> None:
    pyogrio.raw.write(
        str(path),
        shapely.to_wkb(geoms),
        field_data,
        fields,
        driver=driver,
        geometry_type="MultiPolygon",
        crs=crs,
        promote_to_multi=True,
        encoding="UTF-8" if driver == "ESRI Shapefile" else None,
    )


def zip_shapefile(shp: Path) -> Path:
    out = shp.with_suffix(".zip")
    with zipfile.ZipFile(out, "w") as zf:
        for part in shp.parent.glob(shp.stem + ".*"):
            if part.suffix != ".zip":
                zf.write(part, part.name)
    return out


def to_crs(geom, crs: str):
    """Transform a WGS84 geometry into ``crs`` (an EPSG code or ``gcj02``)."""
    if crs == "gcj02":

        def f(c):
            lon, lat = wgs84_to_gcj02(c[:, 0], c[:, 1])
            return np.column_stack([lon, lat])

        return shapely.transform(geom, f)
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.transform(geom, lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))


def as_multi(geom):
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def import_test_county(session, tmp_path: Path, grids: dict | None = None, **grid_options):
    """Import the hand-made county, township, village and grids; return the last report.

    ``grids={}`` imports the levels above the grids only.
    ``grid_options`` go to the import of the grids (``repair``, ``allow_overlap`` ...).
    """
    from webapp.grid.importer import import_areas

    files = {
        "county": [({"code": COUNTY, "name": "测试县"}, WHOLE)],
        "township": [({"code": TOWNSHIP, "name": "测试镇"}, WHOLE)],
        "village": [({"code": VILLAGE, "name": "测试村", "population": 1200}, WHOLE)],
        "grid": [
            ({"code": c, "name": n}, g) for c, (n, g) in (GRIDS if grids is None else grids).items()
        ],
    }
    report = None
    for level, feats in files.items():
        if not feats:  # ``grids={}``: the levels above only
            continue
        path = write_geojson(tmp_path / f"test_{level}.geojson", feats)
        report = import_areas(session, path, level, **(grid_options if level == "grid" else {}))
    return report


def square_around(lon: float, lat: float, half: float = 0.001) -> Polygon:
    return box(lon - half, lat - half, lon + half, lat + half)
