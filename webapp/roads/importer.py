"""Import of a county's road layer (GeoJSON, Shapefile, GeoPackage) and its topology.

One call imports one file for one county, in the caller's transaction:

1. read the lines with pyogrio (names and kinds from the usual fields, if any);
2. check every geometry is a line, and its coordinates possible in the file's CRS;
   transform to WGS84 with pyproj (GCJ-02 by its formula) when the CRS is not 4326;
3. stage the lines and check in SQL that each one reaches the county (within
   ``margin_m`` of its boundary);
4. cut the lines into pieces where they share a vertex (a crossing drawn with a
   common vertex is a junction; one drawn without, a bridge or an overpass, is not),
   store the pieces with their geodesic length (replacing the county's old layer with
   ``replace``), and build the topology (:func:`webapp.roads.queries.build_topology`).

Any error refuses the whole file before anything is stored: :class:`RoadImportRejected`
carries the report, feature by feature.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.archives import ArchiveTooLarge, check_archive
from webapp.geo import (
    GCJ02,
    CRSProblem,
    check_source_coordinates,
    outside_area_of_use,
    parse_crs,
    to_wgs84_coords,
)
from webapp.grid.importer import Problem, read_raw
from webapp.roads import queries

Progress = Callable[[str, int, int], None]

NAME_FIELDS = ["name", "名称", "道路名称", "路名", "road_name", "roadname"]
KIND_FIELDS = ["kind", "类型", "道路类型", "等级", "道路等级", "class", "fclass", "highway", "type"]
MAX_LISTED = 20  # problems listed one by one; the rest are counted
LINE_TYPES = (1, 5)  # LineString, MultiLineString (shapely type ids)


@dataclass
class RoadImportReport:
    path: str
    county_code: str
    crs: str = ""
    features: int = 0
    pieces: int = 0
    vertices: int = 0
    replaced: int = 0
    components: int | None = None
    errors: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def codes(self) -> set[str]:
        return {p.code for p in self.errors}

    def lines(self) -> list[str]:
        """The report as Chinese lines for people."""
        out = [
            f"道路文件 {self.path}：{self.features} 条线，县 {self.county_code}，"
            f"坐标系 {self.crs or '未知'}"
        ]
        if self.errors:
            out.append(f"导入被拒绝，发现 {len(self.errors)} 个错误，未写入任何数据：")
            out += [f"  ✗ [{p.code}] {p}" for p in self.errors[:MAX_LISTED]]
            if len(self.errors) > MAX_LISTED:
                out.append(f"  ……另有 {len(self.errors) - MAX_LISTED} 个错误未列出")
            return out
        if self.replaced:
            out.append(f"已替换该县原有道路 {self.replaced} 段")
        out.append(f"写入道路 {self.pieces} 段，路口（节点）{self.vertices} 个")
        if self.components is None:
            out.append(
                "数据库未安装 pgRouting：道路已保存，但路线仍按直线计算，安装后即可沿道路计算。"
            )
        elif self.components > 1:
            out.append(
                f"注意：道路网络分为 {self.components} 个互不连通的部分，跨部分的路段按直线计算。"
            )
        else:
            out.append("道路网络连通。")
        return out


class RoadImportRejected(Exception):
    """The file was refused; ``report.errors`` says why."""

    def __init__(self, report: RoadImportReport) -> None:
        super().__init__("; ".join(str(p) for p in report.errors[:5]))
        self.report = report


def _pick(fields: list[str], wanted: str | None, candidates: list[str]) -> str | None:
    lowered = {f.lower(): f for f in fields}
    if wanted:
        if wanted.lower() not in lowered:
            raise _Refused(
                "field_missing", f"文件中没有字段 {wanted!r}；现有字段：{', '.join(fields) or '无'}"
            )
        return lowered[wanted.lower()]
    return next((lowered[c.lower()] for c in candidates if c.lower() in lowered), None)


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _text(value, limit: int) -> str | None:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    out = str(value).strip()
    return out[:limit] or None


def _read(path: Path, name_field: str | None, kind_field: str | None):
    if not path.exists():
        raise _Refused("file_not_found", f"文件不存在：{path}")
    if zipfile.is_zipfile(path):
        try:
            check_archive(path)
        except ArchiveTooLarge as exc:
            raise _Refused(exc.code, exc.message) from None
    source = f"/vsizip/{path}" if path.suffix.lower() == ".zip" else str(path)
    try:
        meta, _fids, wkb, field_data = read_raw(source)
    except (DataSourceError, DataLayerError, OSError, RuntimeError) as exc:
        raise _Refused("file_unreadable", f"无法读取文件（格式损坏或不受支持）：{exc}") from exc
    except UnicodeDecodeError:
        raise _Refused("file_encoding", "无法识别文件中文字的编码（应为 UTF-8 或 GBK）") from None
    if len(wkb) == 0:
        raise _Refused("empty_file", "文件中没有任何道路（线要素）")
    fields = [str(f) for f in meta["fields"]]
    column = dict(zip(fields, field_data, strict=True))
    nf = _pick(fields, name_field, NAME_FIELDS)
    kf = _pick(fields, kind_field, KIND_FIELDS)
    n = len(wkb)
    names = [_text(v, 200) for v in column[nf]] if nf else [None] * n
    kinds = [_text(v, 50) for v in column[kf]] if kf else [None] * n
    geoms = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    return meta.get("crs"), names, kinds, geoms


def _label(i: int, names: list[str | None]) -> str:
    return f"第{i + 1}条线 {names[i] or ''}".rstrip()


def import_roads(
    session: Session,
    path: str | Path,
    county_code: str,
    replace: bool = False,
    crs: str | None = None,
    name_field: str | None = None,
    kind_field: str | None = None,
    margin_m: float = 1000.0,
    progress: Progress | None = None,
) -> RoadImportReport:
    """Import a road layer for a county; raise RoadImportRejected on any error.

    Without ``replace`` the lines are added to the county's layer; with it they
    replace it. The topology of the whole county is rebuilt either way. Flushes,
    never commits.
    """
    path = Path(path)
    report = RoadImportReport(path=str(path), county_code=county_code)
    tick = progress or (lambda stage, done, total: None)

    def refuse(code: str, message: str, feature: str = "") -> RoadImportRejected:
        report.errors.append(Problem(code, message, feature))
        return RoadImportRejected(report)

    county = session.execute(
        text("SELECT name FROM areas WHERE code = :c AND level = 'county'"), {"c": county_code}
    ).scalar()
    if county is None:
        raise refuse("county_missing", f"县级区划 {county_code} 不存在，请先导入区划边界")
    try:
        file_crs, names, kinds, geoms = _read(path, name_field, kind_field)
    except _Refused as exc:
        raise refuse(exc.code, exc.message) from None
    n = len(geoms)
    report.features = n
    tick("读取", n, n)

    try:
        if crs:
            source = parse_crs(crs)
        elif file_crs:
            source = parse_crs(file_crs)
        elif path.suffix.lower() in {".geojson", ".json"}:
            source = parse_crs("EPSG:4326")  # RFC 7946
        else:
            raise refuse(
                "crs_unknown",
                "文件未声明坐标系，请用 --crs 指定（如 EPSG:4490、EPSG:4526 或 gcj02）",
            )
    except CRSProblem as exc:
        raise refuse("crs_invalid", str(exc)) from None
    report.crs = source.label

    for i, g in enumerate(geoms):
        if g is None or shapely.is_empty(g):
            report.errors.append(Problem("geometry_empty", "几何为空", _label(i, names)))
        elif shapely.get_type_id(g) not in LINE_TYPES:
            report.errors.append(
                Problem(
                    "geometry_not_line",
                    f"几何类型为 {g.geom_type}，道路应为线（LineString/MultiLineString）",
                    _label(i, names),
                )
            )
    if report.errors:
        raise RoadImportRejected(report)

    lines = shapely.force_2d(geoms)
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    bad = check_source_coordinates(coords, source)
    if source.name == GCJ02:
        bad |= outside_area_of_use(coords, source, margin=0.0)
    lonlat = np.full_like(coords, np.nan)
    if (~bad).any():
        lonlat[~bad] = to_wgs84_coords(coords[~bad], source)
    bad |= outside_area_of_use(lonlat, source)
    for i in np.unique(owner[bad]).tolist():
        x, y = coords[np.argmax((owner == i) & bad)]
        report.errors.append(
            Problem(
                "coordinates_impossible",
                f"坐标 ({x:.6g}, {y:.6g}) 在坐标系 {source.label} 中不可能出现"
                "（坐标系声明错误或数据损坏）",
                _label(i, names),
            )
        )
    if report.errors:
        raise RoadImportRejected(report)
    lines = shapely.set_coordinates(lines.copy(), lonlat)
    tick("坐标转换", n, n)

    _stage(session, lines, names, kinds)
    tick("校验", 0, 1)
    outside = (
        session.execute(
            text(
                """
            WITH county AS MATERIALIZED (
                SELECT ST_Buffer(geom::geography, :margin)::geometry AS geom
                FROM areas WHERE code = :c
            )
            SELECT i.ord FROM road_import i, county c
            WHERE NOT ST_Intersects(i.geom, c.geom) ORDER BY i.ord
            """
            ),
            {"c": county_code, "margin": margin_m},
        )
        .scalars()
        .all()
    )
    for i in outside:
        report.errors.append(
            Problem(
                "outside_county",
                f"整条线都在{county}（{county_code}）范围外（超出边界 {margin_m:.0f} 米以上）",
                _label(i, names),
            )
        )
    degenerate = (
        session.execute(text("SELECT ord FROM road_import WHERE ST_Length(geom) = 0 ORDER BY ord"))
        .scalars()
        .all()
    )
    for i in degenerate:
        report.errors.append(
            Problem("geometry_degenerate", "线的长度为零（所有点重合）", _label(i, names))
        )
    if report.errors:
        raise RoadImportRejected(report)
    tick("校验", 1, 1)

    tick("写入", 0, 1)
    if replace:
        report.replaced = session.execute(
            text("DELETE FROM roads WHERE county_code = :c"), {"c": county_code}
        ).rowcount
    report.pieces = session.execute(
        text(
            """
            WITH parts AS (
                SELECT i.ord, i.name, i.kind, d.path[1] AS part, d.geom
                FROM road_import i, ST_Dump(i.geom) d
            ),
            points AS (
                SELECT p.ord, p.part, v.geom, ST_AsBinary(ST_SnapToGrid(v.geom, :grid)) AS k
                FROM parts p, ST_DumpPoints(p.geom) v
            ),
            shared AS (SELECT k FROM points GROUP BY k HAVING count(*) > 1),
            blades AS (
                SELECT p.ord, p.part, ST_Collect(p.geom) AS blade
                FROM points p JOIN shared USING (k) GROUP BY p.ord, p.part
            ),
            pieces AS (
                SELECT p.ord, p.part, d.path[1] AS piece, p.name, p.kind, d.geom
                FROM parts p LEFT JOIN blades b USING (ord, part)
                CROSS JOIN LATERAL ST_Dump(
                    CASE WHEN b.blade IS NULL THEN p.geom ELSE ST_Split(p.geom, b.blade) END
                ) d
            )
            INSERT INTO roads (county_code, name, kind, length_m, geom)
            SELECT :c, name, kind, ST_Length(geom::geography), geom
            FROM pieces
            WHERE GeometryType(geom) = 'LINESTRING' AND ST_Length(geom) > 0
            ORDER BY ord, part, piece
            """
        ),
        {"c": county_code, "grid": queries.SNAP_GRID_DEG},
    ).rowcount
    session.execute(text("DROP TABLE IF EXISTS road_import"))
    tick("写入", 1, 1)
    tick("拓扑", 0, 1)
    report.vertices = queries.build_topology(session, county_code)
    report.components = queries.components(session, county_code)
    tick("拓扑", 1, 1)
    session.flush()
    return report


def _stage(session: Session, lines: np.ndarray, names: list, kinds: list) -> None:
    """Put the lines (as MultiLineStrings in WGS84) into a temporary table, in one statement."""
    multi = np.array(
        [g if shapely.get_type_id(g) == 5 else shapely.multilinestrings([g]) for g in lines],
        dtype=object,
    )
    session.execute(text("DROP TABLE IF EXISTS road_import"))
    session.execute(
        text(
            """
            CREATE TEMP TABLE road_import ON COMMIT DROP AS
            SELECT (t.ord - 1)::int AS ord, t.name, t.kind,
                   ST_SetSRID(ST_GeomFromWKB(decode(t.wkb, 'hex')), 4326) AS geom
            FROM unnest(CAST(:names AS text[]), CAST(:kinds AS text[]), CAST(:wkb AS text[]))
                 WITH ORDINALITY AS t(name, kind, wkb, ord)
            """
        ),
        {
            "names": names,
            "kinds": kinds,
            "wkb": [str(h) for h in shapely.to_wkb(multi, hex=True)],
        },
    )
