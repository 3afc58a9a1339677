"""Road layer import: formats and CRSs, junctions, replace or add, and bad files refused whole."""

from __future__ import annotations

import json

import pytest
from pyproj import Transformer
from shapely.geometry import LineString, Point
from sqlalchemy import text

from tests.roads_fixtures import (
    COUNTY,
    RIVER_ROADS,
    at,
    line,
    load_river,
    metres,
    write_lines,
)
from webapp.demo import loader
from webapp.roads import queries
from webapp.roads.importer import RoadImportRejected, import_roads


def _count(session, table: str = "roads") -> int:
    return session.execute(
        text(f"SELECT count(*) FROM {table} WHERE county_code = :c"), {"c": COUNTY}
    ).scalar_one()


def _rows(session):
    return session.execute(
        text(
            "SELECT name, kind, length_m, source, target, ST_AsText(geom) AS wkt FROM roads "
            "WHERE county_code = :c ORDER BY id"
        ),
        {"c": COUNTY},
    ).all()


def test_a_geojson_layer_is_stored_with_lengths_and_junctions(session, tmp_path):
    report = load_river(session, tmp_path)
    assert report.ok and report.features == 4 and report.pieces == 4
    # five junctions: (0,0) (0,1200) (1000,1200) (1000,600) (1000,0)
    assert report.vertices == 5 == _count(session, "road_vertices")
    assert report.components == 1
    rows = _rows(session)
    assert [(r.name, r.kind) for r in rows] == [(p["name"], p["kind"]) for p, _ in RIVER_ROADS]
    for r, (_, geom) in zip(rows, RIVER_ROADS, strict=True):
        assert r.length_m == pytest.approx(metres(*geom.coords), abs=0.01)
    # consecutive pieces share their junction: the network is a chain 0-1-2-3-4
    chain = [(r.source, r.target) for r in rows]
    assert all(a[1] == b[0] for a, b in zip(chain, chain[1:], strict=False))
    assert len({v for pair in chain for v in pair}) == 5


def test_roads_crossing_at_a_shared_vertex_meet_and_an_overpass_does_not(session, tmp_path):
    features = [
        # a crossing drawn with a common vertex at (0, 0): a junction
        ({"name": "东西路"}, line((-300, 0), (0, 0), (300, 0))),
        ({"name": "南北路"}, line((0, -300), (0, 0), (0, 300))),
        # an overpass: crosses 东西路2 at (0, 1000) without a common vertex
        ({"name": "东西路2"}, line((-300, 1000), (300, 1000))),
        ({"name": "高架"}, line((0, 700), (0, 1300))),
    ]
    report = import_roads(session, write_lines(tmp_path / "x.geojson", features), COUNTY, True)
    assert report.pieces == 4 + 2  # the crossing cut both roads in two; the overpass cut nothing
    assert report.vertices == 5 + 4
    assert report.components == 3  # the crossing, and each road of the overpass on its own
    centre = session.execute(
        text(
            "SELECT count(*) FROM roads r JOIN road_vertices v ON v.id IN (r.source, r.target) "
            "WHERE r.county_code = :c AND ST_DWithin(v.geom, ST_SetSRID(ST_MakePoint(:x, :y), "
            "4326), 1e-7)"
        ),
        {"c": COUNTY, "x": at(0, 0)[0], "y": at(0, 0)[1]},
    ).scalar_one()
    assert centre == 4


@pytest.mark.parametrize(
    "driver, suffix, crs",
    [
        ("GPKG", ".gpkg", "EPSG:4526"),  # CGCS2000 3-degree Gauss-Krüger zone 38 (114°E)
        ("ESRI Shapefile", ".shp", "EPSG:4490"),  # CGCS2000 geographic
    ],
    ids=["gpkg-gauss-kruger", "shapefile-cgcs2000"],
)
def test_projected_and_other_formats_are_reprojected(session, tmp_path, driver, suffix, crs):
    to = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    features = [
        ({"name": p["name"], "kind": p["kind"]}, LineString([to.transform(*c) for c in g.coords]))
        for p, g in RIVER_ROADS
    ]
    path = write_lines(tmp_path / f"roads{suffix}", features, crs=crs, driver=driver)
    report = import_roads(session, path, COUNTY, replace=True)
    assert report.ok and report.crs == crs and report.pieces == 4 and report.vertices == 5
    for r, (_, geom) in zip(_rows(session), RIVER_ROADS, strict=True):
        assert r.length_m == pytest.approx(metres(*geom.coords), abs=0.05)
        assert r.name and r.kind


def test_replace_or_add(session, tmp_path):
    load_river(session, tmp_path)
    path = write_lines(tmp_path / "more.geojson", [({"name": "新路"}, line((0, 0), (-500, 0)))])
    report = import_roads(session, path, COUNTY)
    assert report.pieces == 1 and _count(session) == 5 and report.vertices == 6
    report = import_roads(session, path, COUNTY, replace=True)
    assert report.replaced == 5 and _count(session) == 1 and report.vertices == 2


def _bad_file(kind: str, tmp_path):
    p = tmp_path / f"{kind}.geojson"
    if kind == "points":
        return write_lines(p, [({"name": "点"}, Point(*at(0, 0)))])
    if kind == "polygon":
        return write_lines(p, [({"name": "面"}, Point(*at(0, 0)).buffer(0.001))])
    if kind == "empty":
        p.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
        return p
    if kind == "unreadable":
        p.write_bytes(b"\x00\x01 this is not a road layer {")
        return p
    if kind == "missing":
        return tmp_path / "nowhere.geojson"
    if kind == "outside":  # Beijing: nowhere near the county
        return write_lines(
            p, RIVER_ROADS + [({"name": "长安街"}, LineString([(116.38, 39.90), (116.42, 39.90)]))]
        )
    if kind == "no_crs":
        return write_lines(
            tmp_path / "nocrs.shp",
            [({"name": "路"}, line((0, 0), (100, 0)))],
            None,
            "ESRI Shapefile",
        )
    if kind == "impossible":
        p.write_text(
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {},
                            "geometry": {
                                "type": "LineString",
                                "coordinates": [[500000, 3900000], [500100, 3900000]],
                            },
                        }
                    ],
                }
            ),
            encoding="utf-8",
        )
        return p
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, code, words",
    [
        ("points", "geometry_not_line", "几何类型为 Point"),
        ("polygon", "geometry_not_line", "道路应为线"),
        ("empty", "empty_file", "没有任何道路"),
        ("unreadable", "file_unreadable", "无法读取文件"),
        ("missing", "file_not_found", "文件不存在"),
        ("outside", "outside_county", "范围外"),
        ("no_crs", "crs_unknown", "未声明坐标系"),
        ("impossible", "coordinates_impossible", "不可能出现"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isascii() else None,
)
def test_bad_files_are_refused_with_their_code_and_store_nothing(
    session, tmp_path, kind, code, words
):
    load_river(session, tmp_path)
    before = _rows(session)
    with pytest.raises(RoadImportRejected) as info:
        import_roads(session, _bad_file(kind, tmp_path), COUNTY, replace=True)
    report = info.value.report
    assert report.codes == {code}
    text_ = "\n".join(report.lines())
    assert words in text_ and "未写入任何数据" in text_
    assert _rows(session) == before  # even with replace: the old layer is untouched


def test_a_geojson_saved_in_gbk_is_read_as_gbk(session, tmp_path):
    """Road names in GBK (not UTF-8 as GeoJSON should be): read as GB18030, not a traceback."""
    path = write_lines(tmp_path / "r.geojson", RIVER_ROADS)
    path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))
    report = import_roads(session, path, COUNTY, replace=True)
    assert report.ok
    assert [r.name for r in _rows(session)] == [p["name"] for p, _ in RIVER_ROADS]


def test_an_unknown_county_is_refused(session, tmp_path):
    path = write_lines(tmp_path / "r.geojson", RIVER_ROADS)
    with pytest.raises(RoadImportRejected) as info:
        import_roads(session, path, "999999")
    assert info.value.report.codes == {"county_missing"}


def test_cli_import_prints_progress_and_refuses_bad_files(app, connection, tmp_path):
    runner = app.test_cli_runner()
    good = write_lines(tmp_path / "river.geojson", RIVER_ROADS)
    result = runner.invoke(args=["roads", "import", str(good), "--county", COUNTY, "--replace"])
    assert result.exit_code == 0, result.output
    assert "写入道路 4 段，路口（节点）5 个" in result.output and "拓扑" in result.output
    bad = _bad_file("points", tmp_path)
    result = runner.invoke(args=["roads", "import", str(bad), "--county", COUNTY, "--replace"])
    assert result.exit_code == 1
    assert "导入被拒绝" in result.output and "geometry_not_line" in result.output
    result = runner.invoke(args=["roads", "status", "--county", COUNTY])
    assert result.exit_code == 0 and "道路 4 段" in result.output


def test_the_demo_network_is_connected_and_made_by_its_script(session):
    from gis_data.make_demo_roads import build

    report = loader.load_roads(session)
    assert report.ok and report.components == 1
    assert report.pieces == report.features > 1000
    committed = json.loads((loader.DEMO_DIR / loader.ROADS_FILE).read_text(encoding="utf-8"))
    assert committed["features"] == build()  # the file is what the script makes, every time
    # every village has a junction within 400 m of its representative point
    far = session.execute(
        text(
            """
            SELECT count(*) FROM areas a
            WHERE a.level = 'village' AND a.county_code = :c AND NOT EXISTS (
                SELECT 1 FROM road_vertices v WHERE v.county_code = :c
                AND ST_DWithin(v.geom::geography, ST_PointOnSurface(a.geom)::geography, 400))
            """
        ),
        {"c": COUNTY},
    ).scalar_one()
    assert far == 0
    assert queries.network(session, COUNTY).routable
