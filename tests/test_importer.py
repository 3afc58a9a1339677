"""Boundary import: formats, coordinate systems, rejections, repairs, reports, idempotence."""

from __future__ import annotations

import json

import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon
from sqlalchemy import text

from tests.builders import (
    COUNTY,
    GRIDS,
    HOLE,
    TOWNSHIP,
    UNIT,
    VILLAGE,
    WHOLE,
    as_multi,
    feature_collection,
    import_test_county,
    to_crs,
    u,
    ubox,
    write_file,
    write_geojson,
    zip_shapefile,
)
from webapp.grid.importer import ImportRejected, import_areas

TOL_DEG = 1e-7  # about 1 cm


def stored(session, code: str):
    wkb = session.execute(
        text("SELECT ST_AsBinary(geom) FROM areas WHERE code = :c"), {"c": code}
    ).scalar_one()
    return shapely.from_wkb(bytes(wkb))


def assert_same_shape(a, b, tol=TOL_DEG):
    """Same geometry within ``tol`` degrees: every vertex matches and areas agree."""
    assert shapely.hausdorff_distance(a, b) < tol
    assert abs(a.area - b.area) / b.area < 1e-6


def county_features(geom=WHOLE):
    return [({"code": COUNTY, "name": "测试县"}, geom)]


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:4490", "EPSG:4526", "gcj02"])
@pytest.mark.parametrize("fmt", ["geojson", "shp", "shp.zip", "gpkg"])
def test_formats_and_crs(session, tmp_path, fmt, crs):
    """Every format in every CRS lands at the same WGS84 coordinates."""
    # Place the county inside EPSG:4526's zone (114°E ± 1.5°) so that every CRS applies.
    shifted = shapely.affinity.translate(WHOLE, xoff=14.2, yoff=5.2)
    source = to_crs(shifted, crs)
    feats = county_features(as_multi(source))
    file_crs = None if crs == "gcj02" else crs
    if fmt == "geojson":
        # GeoJSON (RFC 7946) has no CRS member for WGS84; the older "crs" member names others.
        path = write_geojson(
            tmp_path / "c.geojson", feats, crs=None if crs in ("EPSG:4326", "gcj02") else crs
        )
    elif fmt.startswith("shp"):
        path = write_file(tmp_path / "c.shp", feats, file_crs, "ESRI Shapefile")
        if fmt == "shp.zip":
            path = zip_shapefile(path)
    else:
        path = write_file(tmp_path / "c.gpkg", feats, file_crs, "GPKG")
    # The shifted county lies over the demo county (a sibling at the top): allowed here.
    report = import_areas(
        session, path, "county", crs="gcj02" if crs == "gcj02" else None, allow_overlap=True
    )
    assert report.ok and report.inserted == 1
    assert_same_shape(stored(session, COUNTY), as_multi(shifted))
    # EPSG:4490 (CGCS2000) is within centimetres of WGS84: stored unchanged.
    if crs == "EPSG:4490":
        assert shapely.normalize(stored(session, COUNTY)).equals_exact(
            shapely.normalize(as_multi(shifted)), 1e-12
        )


def test_gcj02_is_converted_by_formula_not_offset(session, tmp_path):
    """Two far-apart GCJ-02 points get different corrections, each within a centimetre."""
    from coord_convert.transform import wgs2gcj  # an independent implementation

    west, east = ubox(0, 0, 1, 1), ubox(0, 0, 1, 1)
    west = shapely.affinity.translate(west, xoff=14.0, yoff=5.0)  # near 114.0°E 35.0°N
    east = shapely.affinity.translate(east, xoff=21.0, yoff=-6.0)  # near 121.0°E 24.0°N
    for geom, code in [(west, COUNTY), (east, "990200")]:
        gcj = shapely.transform(geom, lambda c: [list(wgs2gcj(x, y)) for x, y in c])
        path = write_geojson(tmp_path / f"{code}.geojson", [({"code": code, "name": "县"}, gcj)])
        assert import_areas(session, path, "county", crs="gcj02", allow_overlap=True).ok
        assert_same_shape(stored(session, code), as_multi(geom), tol=2e-7)


def test_import_reports_and_is_idempotent(session, tmp_path):
    report = import_test_county(session, tmp_path)
    assert report.ok and report.inserted == 4
    assert not report.overlaps and not report.gaps and not report.repaired
    again = import_test_county(session, tmp_path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    row = session.execute(
        text(
            "SELECT parent_id IS NOT NULL, county_code, township_code, village_code FROM areas WHERE code = :c"
        ),
        {"c": f"{VILLAGE}002"},
    ).one()
    assert tuple(row) == (True, COUNTY, TOWNSHIP, VILLAGE)


def test_changed_file_updates_by_code_and_moves_cases(session, tmp_path):
    import_test_county(session, tmp_path)
    from webapp.cases.queries import NewCase, insert_case
    from webapp.cases.vocab import Channel

    cat = session.execute(text("SELECT id FROM categories LIMIT 1")).scalar_one()
    lon, lat = u(1.9, 0.5)  # in grid 001, close to its border with 002
    case = insert_case(
        session, NewCase(title="边界", category_id=cat, channel=Channel.VISIT, lon=lon, lat=lat)
    )
    # Move the border between grids 001 and 002 from x=2 to x=1.8 (001 loses a strip to 002).
    grids = dict(GRIDS)
    grids[f"{VILLAGE}001"] = ("甲网格", ubox(0, 0, 1.8, 1, holes=[HOLE]))
    grids[f"{VILLAGE}002"] = ("乙网格（调整）", ubox(1.8, 0, 4, 1))
    report = import_test_county(session, tmp_path, grids)
    assert (report.inserted, report.updated, report.unchanged) == (0, 2, 2)
    assert report.cases_moved == 1
    row = session.execute(
        text("SELECT grid_code FROM cases WHERE id = :i"), {"i": case.id}
    ).scalar_one()
    assert row == f"{VILLAGE}002"
    assert (
        session.execute(
            text("SELECT name FROM areas WHERE code = :c"), {"c": f"{VILLAGE}002"}
        ).scalar_one()
        == "乙网格（调整）"
    )


def geodesic_m2(poly) -> float:
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(poly)[0])


OVERLAPPING = {
    f"{VILLAGE}001": ("甲", ubox(0, 0, 2.5, 1, holes=[HOLE])),  # overlaps 002 by 0.5 x 1 units
    f"{VILLAGE}002": ("乙", ubox(2, 0, 4, 1)),
    f"{VILLAGE}003": ("丙", ubox(0, 1, 2, 2)),
    # 004 is missing: a gap of 2 x 1 units in the village
}


def test_overlapping_siblings_are_refused_naming_both(session, tmp_path):
    import_test_county(session, tmp_path, {})  # county, township and village; no grids
    path = write_geojson(
        tmp_path / "grids.geojson",
        [({"code": c, "name": n}, g) for c, (n, g) in OVERLAPPING.items()],
    )
    errors = rejected(session, path, "grid")
    assert [e[0] for e in errors] == ["overlap"]
    assert errors[0][1] == f"第1个要素 {VILLAGE}001 甲"
    problem = str(_rejection(session, path, "grid").errors[0])
    assert f"{VILLAGE}002 乙" in problem and "平方米" in problem and "--allow-overlap" in problem


def test_a_new_grid_overlapping_a_stored_one_is_refused(session, tmp_path):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "new.geojson", [({"code": f"{VILLAGE}005", "name": "新"}, ubox(3, 1.5, 4, 2))]
    )
    errors = rejected(session, path, "grid")
    assert errors == [("overlap", f"第1个要素 {VILLAGE}005 新")]
    assert f"已有网格 {VILLAGE}004 丁网格" in str(_rejection(session, path, "grid").errors[0])
    # A file that replaces the stored grid it overlapped is fine: only what is left after counts.
    replaced = write_geojson(
        tmp_path / "replaced.geojson",
        [
            ({"code": f"{VILLAGE}004", "name": "丁网格"}, ubox(2, 1, 4, 1.5)),
            ({"code": f"{VILLAGE}005", "name": "新"}, ubox(2, 1.5, 4, 2)),
        ],
    )
    report = import_areas(session, replaced, "grid")
    assert report.ok and not report.overlaps and (report.inserted, report.updated) == (1, 1)


def test_floating_point_slivers_are_not_overlaps(session, tmp_path):
    """Neighbours whose shared edge differs in the last digits still import by default."""
    import_test_county(session, tmp_path, {})
    nudge = 1e-12  # degrees: far below a square millimetre of overlap
    grids = [
        ({"code": f"{VILLAGE}001", "name": "甲"}, ubox(0, 0, 2 + nudge / UNIT, 2, holes=[HOLE])),
        ({"code": f"{VILLAGE}002", "name": "乙"}, ubox(2, 0, 4, 2)),
    ]
    path = write_geojson(tmp_path / "sliver.geojson", grids)
    overlap = session.execute(
        text(
            "SELECT ST_Area(ST_Intersection(ST_GeomFromText(:a, 4326), ST_GeomFromText(:b, 4326))::geography)"
        ),
        {"a": grids[0][1].wkt, "b": grids[1][1].wkt},
    ).scalar_one()
    assert 0 < overlap < 1.0  # a real sliver, smaller than the 1 m² epsilon
    report = import_areas(session, path, "grid")
    assert report.ok and report.inserted == 2 and not report.overlaps
    stored_overlap = session.execute(
        text(
            "SELECT ST_Relate(a.geom, b.geom, '2********') FROM areas a, areas b "
            "WHERE a.code = :a AND b.code = :b"
        ),
        {"a": f"{VILLAGE}001", "b": f"{VILLAGE}002"},
    ).scalar_one()
    assert stored_overlap  # the sliver made it through the file: it was tolerated, not lost


def test_overlaps_allowed_and_gaps_are_reported_in_square_metres(session, tmp_path):
    report = import_test_county(session, tmp_path, OVERLAPPING, allow_overlap=True)
    assert report.ok
    assert len(report.overlaps) == 1
    a, b, m2 = report.overlaps[0]
    assert a.startswith(f"{VILLAGE}001") and b.startswith(f"{VILLAGE}002")
    assert m2 == pytest.approx(geodesic_m2(ubox(2, 0, 2.5, 1)), rel=1e-3)
    assert len(report.gaps) == 1
    parent, gap = report.gaps[0]
    assert parent.startswith(VILLAGE)
    assert gap == pytest.approx(geodesic_m2(ubox(2, 1, 4, 2)), rel=1e-3)
    lines = "\n".join(report.lines())
    assert "重叠" in lines and "空隙" in lines and "平方米" in lines


BOWTIE = Polygon([u(2, 0), u(4, 1), u(4, 0), u(2, 1), u(2, 0)])


def test_invalid_polygon_is_refused_by_default(session, tmp_path):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "bow.geojson",
        [
            ({"code": f"{VILLAGE}008", "name": "好"}, ubox(0, 0, 1, 1)),
            ({"code": f"{VILLAGE}009", "name": "蝴蝶"}, BOWTIE),
        ],
    )
    assert rejected(session, path, "grid") == [("geometry_invalid", f"第2个要素 {VILLAGE}009 蝴蝶")]
    problem = _rejection(session, path, "grid").errors[0]
    assert (
        "Self-intersection" in problem.message
        and "自相交" in problem.message
        and "--repair" in problem.message
    )


def test_invalid_polygon_is_repaired_and_listed_when_asked(session, tmp_path):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "bow.geojson", [({"code": f"{VILLAGE}009", "name": "蝴蝶"}, BOWTIE)]
    )
    # Repaired, the bow-tie overlaps grid 002: accepted only with overlaps allowed too.
    assert [e[0] for e in rejected(session, path, "grid", repair=True)] == ["overlap"]
    report = import_areas(session, path, "grid", repair=True, allow_overlap=True)
    assert report.ok
    assert len(report.repaired) == 1 and "Self-intersection" in report.repaired[0].message
    assert "蝴蝶" in report.repaired[0].feature
    valid, parts = session.execute(
        text("SELECT ST_IsValid(geom), ST_NumGeometries(geom) FROM areas WHERE code = :c"),
        {"c": f"{VILLAGE}009"},
    ).one()
    assert valid and parts == 2


def _rejection(session, path, level, **kw):
    """The report of a refused import (rolled back)."""
    savepoint = session.begin_nested()
    with pytest.raises(ImportRejected) as info:
        import_areas(session, path, level, **kw)
    savepoint.rollback()
    return info.value.report


def rejected(session, path, level, **kw) -> list[tuple[str, str]]:
    before = session.execute(text("SELECT count(*), max(updated_at) FROM areas")).one()
    savepoint = session.begin_nested()
    with pytest.raises(ImportRejected) as info:
        import_areas(session, path, level, **kw)
    savepoint.rollback()  # what a caller does with a refused file
    assert session.execute(text("SELECT count(*), max(updated_at) FROM areas")).one() == before
    return [(p.code, p.feature) for p in info.value.report.errors]


def test_rejects_duplicate_codes(session, tmp_path):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "dup.geojson",
        [
            ({"code": f"{VILLAGE}001", "name": "一"}, ubox(0, 0, 1, 1)),
            ({"code": f"{VILLAGE}001", "name": "二"}, ubox(1, 0, 2, 1)),
        ],
    )
    errors = rejected(session, path, "grid")
    assert [e[0] for e in errors] == ["duplicate_code"]
    assert "二" in errors[0][1]


def test_rejects_missing_parent(session, tmp_path):
    path = write_geojson(
        tmp_path / "orphan.geojson", [({"code": "990999001", "name": "孤镇"}, ubox(0, 0, 1, 1))]
    )
    errors = rejected(session, path, "township")
    assert errors == [("parent_missing", "第1个要素 990999001 孤镇")]


def test_rejects_a_child_mostly_outside_its_parent(session, tmp_path):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "out.geojson", [({"code": f"{VILLAGE}010", "name": "越界"}, ubox(3, 1.5, 6, 3))]
    )
    errors = rejected(session, path, "grid")
    assert [e[0] for e in errors] == ["outside_parent"]
    # The same file passes with a looser tolerance (and its overlap with grid 004 allowed).
    assert import_areas(session, path, "grid", outside_tolerance=0.95, allow_overlap=True).ok


@pytest.mark.parametrize(
    ("geom", "code"),
    [
        pytest.param(None, "geometry_empty", id="null"),
        pytest.param(Polygon(), "geometry_empty", id="empty"),
        pytest.param(Point(u(1, 1)), "geometry_not_polygon", id="point"),
        pytest.param(LineString([u(0, 0), u(1, 1)]), "geometry_not_polygon", id="line"),
    ],
)
def test_rejects_empty_and_non_polygon_geometry(session, tmp_path, geom, code):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "bad.geojson",
        [
            ({"code": f"{VILLAGE}011", "name": "好"}, ubox(0, 0, 1, 1)),
            ({"code": f"{VILLAGE}012", "name": "坏"}, geom),
        ],
    )
    assert rejected(session, path, "grid") == [(code, f"第2个要素 {VILLAGE}012 坏")]


def test_rejects_coordinates_impossible_for_the_crs(session, tmp_path):
    gk = to_crs(shapely.affinity.translate(WHOLE, xoff=14.2, yoff=5.2), "EPSG:4526")
    # Gauss-Krüger metres declared (by default) as WGS84 degrees.
    path = write_geojson(tmp_path / "gk-as-wgs.geojson", county_features(gk))
    assert [e[0] for e in rejected(session, path, "county")] == ["coordinates_impossible"]
    # WGS84 degrees declared as Gauss-Krüger metres: they land near the equator, far out of zone.
    path = write_geojson(tmp_path / "wgs-as-gk.geojson", county_features(WHOLE))
    assert [e[0] for e in rejected(session, path, "county", crs="EPSG:4526")] == [
        "coordinates_impossible"
    ]
    # GCJ-02 exists only in China.
    far = shapely.affinity.translate(WHOLE, xoff=-150)
    path = write_geojson(tmp_path / "gcj-abroad.geojson", county_features(far))
    assert [e[0] for e in rejected(session, path, "county", crs="gcj02")] == [
        "coordinates_impossible"
    ]


def test_rejects_bad_codes_and_names(session, tmp_path):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "codes.geojson",
        [
            ({"code": "99010000100", "name": "太短"}, ubox(0, 0, 1, 1)),
            ({"code": "99010000100X1", "name": "字母"}, ubox(1, 0, 2, 1)),
            ({"code": f"{VILLAGE}013", "name": ""}, ubox(2, 0, 3, 1)),
        ],
    )
    codes = [e[0] for e in rejected(session, path, "grid")]
    assert codes == ["code_invalid", "code_invalid", "name_missing"]


def test_a_name_with_control_characters_is_refused(session, tmp_path):
    import_test_county(session, tmp_path)
    path = write_geojson(
        tmp_path / "names.geojson",
        [({"code": f"{VILLAGE}014", "name": "甲\x1b[31m乙"}, ubox(2, 0, 3, 1))],
    )
    assert [e[0] for e in rejected(session, path, "grid")] == ["name_invalid"]


def test_a_geojson_saved_in_gbk_is_read_as_gbk(session, tmp_path):
    """Not UTF-8 as GeoJSON should be: read as GB18030 (as a ledger CSV is), not a traceback."""
    import_test_county(session, tmp_path)
    path = tmp_path / "gbk.geojson"
    features = [({"code": f"{VILLAGE}015", "name": "国标编码网格"}, ubox(2, 0, 3, 1))]
    path.write_bytes(json.dumps(feature_collection(features), ensure_ascii=False).encode("gbk"))
    report = import_areas(session, path, "grid", allow_overlap=True)
    assert report.ok and report.inserted == 1
    name = session.execute(
        text("SELECT name FROM areas WHERE code = :c"), {"c": f"{VILLAGE}015"}
    ).scalar_one()
    assert name == "国标编码网格"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        pytest.param(b"{not json", "file_unreadable", id="malformed-json"),
        pytest.param(
            b'{"type": "FeatureCollection", "features": []}', "empty_file", id="no-features"
        ),
        pytest.param(b"\x00\x01garbage", "file_unreadable", id="binary-garbage"),
    ],
)
def test_rejects_malformed_files(session, tmp_path, content, code):
    path = tmp_path / "broken.geojson"
    path.write_bytes(content)
    assert [e[0] for e in rejected(session, path, "county")] == [code]


def test_rejects_file_without_crs_or_fields(session, tmp_path):
    path = write_file(
        tmp_path / "nocrs.shp", county_features(as_multi(WHOLE)), None, "ESRI Shapefile"
    )
    assert [e[0] for e in rejected(session, path, "county")] == ["crs_unknown"]
    path = write_geojson(tmp_path / "nofields.geojson", [({"id": 1}, WHOLE)])
    assert [e[0] for e in rejected(session, path, "county")] == ["code_field_missing"]
    path = write_geojson(tmp_path / "named.geojson", [({"GB": COUNTY, "MC": "县"}, WHOLE)])
    assert import_areas(session, path, "county", code_field="GB", name_field="MC").ok


def test_cli_import_prints_progress_and_report(app, connection, tmp_path):
    path = write_geojson(tmp_path / "county.geojson", county_features())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["grid", "import", str(path), "--level", "county"])
    assert result.exit_code == 0, result.output
    assert "新增 1" in result.output and "坐标转换" in result.output
    result = runner.invoke(args=["grid", "import", str(path), "--level", "county"])
    assert "新增 0，更新 0，未变化 1" in result.output
    bad = write_geojson(tmp_path / "bad.geojson", [({"code": "12", "name": "x"}, WHOLE)])
    result = runner.invoke(args=["grid", "import", str(bad), "--level", "county"])
    assert result.exit_code == 1
    assert "导入被拒绝" in result.output and "code_invalid" in result.output


def test_cli_refuses_invalid_and_overlapping_unless_asked(app, connection, tmp_path):
    runner = app.test_cli_runner()
    files = {
        "county": [({"code": COUNTY, "name": "测试县"}, WHOLE)],
        "township": [({"code": TOWNSHIP, "name": "测试镇"}, WHOLE)],
        "village": [({"code": VILLAGE, "name": "测试村"}, WHOLE)],
    }
    for level, feats in files.items():
        result = runner.invoke(
            args=[
                "grid",
                "import",
                str(write_geojson(tmp_path / f"{level}.geojson", feats)),
                "--level",
                level,
            ]
        )
        assert result.exit_code == 0, result.output
    grids = write_geojson(
        tmp_path / "grids.geojson",
        [
            ({"code": f"{VILLAGE}001", "name": "甲"}, ubox(0, 0, 2.5, 2, holes=[HOLE])),
            ({"code": f"{VILLAGE}002", "name": "乙"}, ubox(2, 0, 4, 2)),
            ({"code": f"{VILLAGE}003", "name": "蝴蝶"}, BOWTIE),
        ],
    )

    def grid_count():
        return connection.execute(
            text("SELECT count(*) FROM areas WHERE code LIKE :v"), {"v": f"{VILLAGE}%"}
        ).scalar_one()

    result = runner.invoke(args=["grid", "import", str(grids), "--level", "grid"])
    assert (
        result.exit_code == 1 and "[geometry_invalid]" in result.output and "蝴蝶" in result.output
    )
    assert grid_count() == 1  # the village only
    result = runner.invoke(args=["grid", "import", str(grids), "--level", "grid", "--repair"])
    assert (
        result.exit_code == 1
        and "[overlap]" in result.output
        and f"{VILLAGE}002 乙" in result.output
    )
    assert grid_count() == 1
    result = runner.invoke(
        args=["grid", "import", str(grids), "--level", "grid", "--repair", "--allow-overlap"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "已修复无效几何" in result.output and "重叠" in result.output and "新增 3" in result.output
    )
    assert grid_count() == 4
