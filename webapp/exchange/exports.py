"""Exports of cases and areas as GeoJSON, CSV and GeoPackage, within the user's scope.

Cases are read through ``api.queries.filtered_cases`` (so ``case_scope`` applies) and
the petitioner's data is masked per case unless the user handles it
(``auth.permissions.sees_personal_data``). CSV cells that a spreadsheet would run as
a formula are neutralised. The CSV uses the ledger's own column names, so an export
can be read back by the ledger import. GeoPackages are written with pyogrio (GDAL)
in WGS84 and open in QGIS.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import func, text
from sqlalchemy.orm import Session

from webapp.api.params import CaseFilter
from webapp.api.queries import filtered_cases
from webapp.auth.masking import personal_fields
from webapp.auth.permissions import sees_personal_data
from webapp.cases.models import Case, Category
from webapp.cases.vocab import Channel, Status
from webapp.escaping import spreadsheet_text
from webapp.exchange.ledger import LOCAL_TZ

FORMATS = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "gpkg": "application/geopackage+sqlite3",
}

CASE_COLUMNS = [
    Case.id,
    Case.number,
    Case.title,
    Case.description,
    Category.code.label("category_code"),
    Category.name.label("category_name"),
    Case.channel,
    Case.case_class,
    Case.status,
    Case.people_count,
    Case.reported_at,
    Case.concluded_at,
    Case.resolved_at,
    Case.grid_code,
    Case.village_code,
    Case.township_code,
    Case.location_approx,
    Case.petitioner_name,
    Case.petitioner_phone,
    Case.petitioner_id_number,
    Case.leader_id,
    Case.reporter_id,
    func.ST_X(Case.location).label("lon"),
    func.ST_Y(Case.location).label("lat"),
]


def count_cases(session: Session, user, flt: CaseFilter) -> int:
    from sqlalchemy import select

    return session.scalar(select(func.count()).select_from(filtered_cases(user, flt).subquery()))


def case_records(session: Session, user, flt: CaseFilter) -> Iterator[dict]:
    """The cases in scope and filter, oldest first, as flat records with masked personal data."""
    stmt = (
        filtered_cases(user, flt)
        .with_only_columns(*CASE_COLUMNS)
        .order_by(Case.reported_at, Case.id)
    )
    for row in session.execute(stmt.execution_options(yield_per=5000)):
        personal = personal_fields(row, masked=not sees_personal_data(user, row))
        yield {
            "id": row.id,
            "number": row.number,
            "reported_at": row.reported_at.astimezone(LOCAL_TZ).isoformat(),
            "title": row.title,
            "description": row.description,
            "category_code": row.category_code,
            "category_name": row.category_name,
            "channel": row.channel,
            "channel_label": Channel(row.channel).label,
            "status": row.status,
            "status_label": Status(row.status).label,
            "people_count": row.people_count,
            "concluded_at": row.concluded_at.astimezone(LOCAL_TZ).isoformat()
            if row.concluded_at
            else None,
            "resolved_at": row.resolved_at.astimezone(LOCAL_TZ).isoformat()
            if row.resolved_at
            else None,
            "township_code": row.township_code,
            "village_code": row.village_code,
            "grid_code": row.grid_code,
            "location_approx": row.location_approx,
            "personal_masked": personal["petitioner_name"] != row.petitioner_name
            or personal["petitioner_phone"] != row.petitioner_phone
            or personal["petitioner_id_number"] != row.petitioner_id_number,
            **personal,
            "lon": round(row.lon, 7),
            "lat": round(row.lat, 7),
        }


# Ledger column names (see ``ledger.HEADERS``) for the CSV, so it can be imported again.
CSV_CASE_FIELDS = [
    ("number", "编号"),
    ("reported_at", "登记日期"),
    ("petitioner_name", "信访人"),
    ("petitioner_phone", "联系电话"),
    ("petitioner_id_number", "身份证号"),
    ("category_name", "问题类别"),
    ("channel_label", "来源"),
    ("people_count", "人数"),
    ("grid_code", "网格代码"),
    ("lon", "经度"),
    ("lat", "纬度"),
    ("crs", "坐标系"),
    ("title", "事由"),
    ("description", "主要诉求"),
    ("status_label", "办理状态"),
    ("concluded_at", "办结日期"),
    ("location_approx", "位置为近似"),
]


def _csv_cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    return spreadsheet_text(value)


def _local(iso: str | None) -> str | None:
    """ISO 8601 (with offset) to the local wall time spreadsheets show: 2026-03-05 14:30:00."""
    return iso[:19].replace("T", " ") if iso else None


def cases_csv(records: Iterator[dict]) -> Iterator[bytes]:
    """CSV in UTF-8 with a BOM (so Excel opens it as UTF-8), streamed in chunks."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([label for _, label in CSV_CASE_FIELDS])
    yield ("\ufeff" + buf.getvalue()).encode("utf-8")
    for rec in records:
        rec = {
            **rec,
            "crs": "WGS84",
            "reported_at": _local(rec["reported_at"]),
            "concluded_at": _local(rec["concluded_at"]),
        }
        buf.seek(0)
        buf.truncate()
        w.writerow([_csv_cell(rec[key]) for key, _ in CSV_CASE_FIELDS])
        yield buf.getvalue().encode("utf-8")


def cases_geojson(records: Iterator[dict]) -> Iterator[bytes]:
    """An RFC 7946 FeatureCollection, streamed feature by feature."""
    yield b'{"type":"FeatureCollection","features":['
    first = True
    for rec in records:
        props = {k: v for k, v in rec.items() if k not in ("lon", "lat")}
        feature = {
            "type": "Feature",
            "id": rec["id"],
            "geometry": {"type": "Point", "coordinates": [rec["lon"], rec["lat"]]},
            "properties": props,
        }
        yield (b"" if first else b",") + json.dumps(feature, ensure_ascii=False).encode("utf-8")
        first = False
    yield b"]}"


def _write_gpkg(
    path: Path, layer: str, geometry_type: str, wkb: list[bytes], fields: dict[str, list]
) -> None:
    import pyogrio.raw

    names = list(fields)
    data = []
    for name in names:
        values = fields[name]
        if values and all(isinstance(v, bool) for v in values):
            data.append(np.array(values, dtype=bool))
        elif values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            data.append(np.array(values, dtype=np.int64))
        elif values and all(isinstance(v, float) for v in values):
            data.append(np.array(values, dtype=np.float64))
        else:
            data.append(np.array(["" if v is None else str(v) for v in values], dtype=object))
    pyogrio.raw.write(
        str(path),
        np.array(wkb, dtype=object),
        data,
        names,
        driver="GPKG",
        layer=layer,
        geometry_type=geometry_type,
        crs="EPSG:4326",
        encoding="UTF-8",
    )


def cases_gpkg(records: Iterator[dict], path: Path) -> int:
    """Write the cases as a GeoPackage point layer ``cases``; return how many."""
    recs = list(records)
    keys = [k for k in (recs[0] if recs else {"id": 0}) if k not in ("lon", "lat")]
    points = shapely.points(
        np.array([[r["lon"], r["lat"]] for r in recs], dtype=float).reshape(-1, 2)
    )
    fields = {k: [r[k] for r in recs] for k in keys}
    _write_gpkg(path, "cases", "Point", list(shapely.to_wkb(points)), fields)
    return len(recs)


# -- areas ------------------------------------------------------------------------------


def area_records(session: Session, root: str, level: str | None) -> list[dict]:
    """The areas under ``root`` (the user's area), with WKB geometry made in SQL."""
    conds = ["a.code LIKE :root || '%'"]
    params: dict = {"root": root}
    if level:
        conds.append("a.level = :level")
        params["level"] = level
    rows = session.execute(
        text(
            f"""
            SELECT a.code, a.name, a.level, p.code AS parent_code, a.population, a.households,
                   round(a.area_m2::numeric, 1)::float AS area_m2, ST_AsBinary(a.geom) AS wkb,
                   ST_AsGeoJSON(a.geom, 7) AS geojson, ST_AsText(a.geom) AS wkt
            FROM areas a LEFT JOIN areas p ON p.id = a.parent_id
            WHERE {" AND ".join(conds)} ORDER BY a.code
            """
        ),
        params,
    ).mappings()
    return [dict(r) for r in rows]


AREA_FIELDS = ["code", "name", "level", "parent_code", "population", "households", "area_m2"]


def areas_geojson(records: list[dict]) -> bytes:
    features = [
        {
            "type": "Feature",
            "id": r["code"],
            "geometry": json.loads(r["geojson"]),
            "properties": {k: r[k] for k in AREA_FIELDS},
        }
        for r in records
    ]
    return json.dumps(
        {"type": "FeatureCollection", "features": features}, ensure_ascii=False
    ).encode("utf-8")


def areas_csv(records: list[dict]) -> bytes:
    """One row per area with its boundary as WKT (QGIS reads the ``wkt`` column)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*AREA_FIELDS, "wkt"])
    for r in records:
        w.writerow([_csv_cell(r[k]) for k in AREA_FIELDS] + [r["wkt"]])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def areas_gpkg(records: list[dict], path: Path) -> int:
    fields = {k: [r[k] for r in records] for k in AREA_FIELDS}
    _write_gpkg(path, "areas", "MultiPolygon", [bytes(r["wkb"]) for r in records], fields)
    return len(records)


def temporary_path(suffix: str) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)
    handle.close()
    path = Path(handle.name)
    path.unlink()  # GDAL creates the file itself
    return path
