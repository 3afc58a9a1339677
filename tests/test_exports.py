"""Exports: scope, masking, formula-safe cells, audit, and round trips through GeoJSON, CSV and GeoPackage."""

from __future__ import annotations

import csv
import io
import json

import pyogrio
import pytest
from sqlalchemy import text

from tests.exchange_fixtures import *  # noqa: F403
from webapp.exchange.importer import check_ledger


@pytest.fixture
def marked_case(session, demo_areas):
    """A case in the test grid worker's grid with a petitioner and a formula-like title."""
    cid = session.execute(
        text("SELECT id FROM cases WHERE grid_code = :g ORDER BY id LIMIT 1"),
        {"g": demo_areas["grid_worker"]},
    ).scalar_one()
    session.execute(
        text(
            "UPDATE cases SET title = '=cmd|calc', petitioner_name = '欧阳娜娜', "
            "petitioner_phone = '13812345678' WHERE id = :i"
        ),
        {"i": cid},
    )
    return cid


def _features(client, url):
    r = client.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return json.loads(r.get_data())["features"]


def test_geojson_export_is_scoped_and_masked(client, login, session, marked_case, demo_areas):
    login("planner")
    features = _features(
        client, f"/exchange/export/cases.geojson?area={demo_areas['village_informant']}"
    )
    assert features and all(
        f["properties"]["village_code"] == demo_areas["village_informant"] for f in features
    )
    mine = next(f for f in features if f["id"] == marked_case)
    assert (
        mine["properties"]["petitioner_name"] == "欧***"
        and mine["properties"]["personal_masked"] is True
    )
    n = session.execute(
        text("SELECT count(*) FROM cases WHERE village_code = :v"),
        {"v": demo_areas["village_informant"]},
    ).scalar_one()
    assert len(features) == n
    entry = session.execute(
        text("SELECT detail FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")
    ).scalar_one()
    assert (
        entry["what"] == "cases"
        and entry["rows"] == n
        and entry["filter"]["area"] == demo_areas["village_informant"]
    )


def test_county_staff_see_personal_data_and_csv_cells_are_neutralised(
    client, login, marked_case, demo_areas, session, tmp_path
):
    login("county_staff")
    r = client.get(f"/exchange/export/cases.csv?area={demo_areas['grid_worker']}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    body = r.get_data().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    mine = next(row for row in rows if row["信访人"] == "欧阳娜娜")
    assert mine["事由"] == "'=cmd|calc" and mine["联系电话"] == "13812345678"
    # The CSV speaks the ledger's language: the import reads it back, every row as a known case.
    path = tmp_path / "export.csv"
    path.write_bytes(r.get_data())
    report = check_ledger(session, path)
    assert len(report.rows) == len(rows)
    assert {p.code for r in report.rows for p in r.problems} <= {"duplicate_case", "duplicate_row"}
    assert any(p.code == "duplicate_case" for r in report.rows for p in r.problems)


def test_geopackage_reads_back(client, login, session, demo_areas):
    login("county_staff")
    r = client.get(f"/exchange/export/cases.gpkg?area={demo_areas['township_leader']}")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/geopackage+sqlite3"
    path = __import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "cases.gpkg"
    path.write_bytes(r.get_data())
    info = pyogrio.read_info(path, layer="cases")
    n = session.execute(
        text("SELECT count(*) FROM cases WHERE township_code = :t"),
        {"t": demo_areas["township_leader"]},
    ).scalar_one()
    assert info["features"] == n and info["geometry_type"] == "Point" and "4326" in info["crs"]
    meta, _, geoms, fields = pyogrio.raw.read(path, layer="cases")
    names = list(meta["fields"])
    numbers = set(fields[names.index("number")])
    expected = set(
        session.execute(
            text("SELECT number FROM cases WHERE township_code = :t"),
            {"t": demo_areas["township_leader"]},
        ).scalars()
    )
    assert numbers == expected


@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpkg"])
def test_area_exports(client, login, session, demo_areas, fmt, tmp_path):
    login("planner", area=demo_areas["township_leader"])
    r = client.get(f"/exchange/export/areas.{fmt}?level=village")
    assert r.status_code == 200
    expected = set(
        session.execute(
            text("SELECT code FROM areas WHERE level = 'village' AND code LIKE :t || '%'"),
            {"t": demo_areas["township_leader"]},
        ).scalars()
    )
    if fmt == "geojson":
        got = {f["properties"]["code"] for f in json.loads(r.get_data())["features"]}
    elif fmt == "csv":
        got = {row["code"] for row in csv.DictReader(io.StringIO(r.get_data().decode("utf-8-sig")))}
    else:
        path = tmp_path / "areas.gpkg"
        path.write_bytes(r.get_data())
        meta, _, geoms, fields = pyogrio.raw.read(path, layer="areas")
        assert meta["geometry_type"] in ("MultiPolygon", "Polygon")
        got = set(fields[list(meta["fields"]).index("code")])
    assert got == expected and expected


@pytest.mark.parametrize(
    "role", ["grid_worker", "village_informant", "township_leader", "leader_in_charge"]
)
def test_other_roles_may_not_export(client, login, role):
    login(role)
    assert client.get("/exchange/export/cases.csv").status_code == 403
    assert client.get("/exchange/").status_code == 403


def test_bad_export_filters_are_refused_not_crashed(client, login):
    login("county_staff")
    for q in [
        "area=1;DROP TABLE cases",
        "from=2026-13-45",
        "status=nope",
        "bbox=1,2,3",
        "category=%27%20OR%201=1",
    ]:
        r = client.get(f"/exchange/export/cases.csv?{q}", headers={"Accept": "application/json"})
        assert r.status_code == 400, q
