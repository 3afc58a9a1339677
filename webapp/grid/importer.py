"""Import of boundary files (GeoJSON, Shapefile, GeoPackage) into the area hierarchy.

One call imports one level from one file, in the caller's transaction:

1. read the features with pyogrio and find the code, name and parent fields;
2. check geometry types and coordinates against the file's CRS, transform to WGS84
   (GCJ-02 by its formula);
3. stage the features in a temporary table and check them in SQL: invalid polygons
   (self-intersections, bow-ties), duplicate codes, missing parents, children lying
   outside their parent, and siblings that overlap (each other or the areas already
   stored) by more than ``area_epsilon_m2``, so that floating-point slivers along
   shared edges do not count;
4. upsert by code (an unchanged feature is not touched, so a re-import changes
   nothing), re-assign cases whose grid changed shape, and report gaps in each
   parent's coverage, with their areas in square metres.

Any error refuses the whole file: :class:`ImportRejected` carries the report, and the
caller rolls back. An invalid polygon and an overlap are errors by default: a
boundary file is an official record, and guessing what it meant would store a shape
nobody drew. ``repair=True`` (``flask grid import --repair``) repairs invalid polygons
with ``ST_MakeValid`` and lists them instead; ``allow_overlap=True``
(``--allow-overlap``) imports overlapping siblings and lists each overlap in square
metres.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.archives import ArchiveTooLarge, check_archive
from webapp.geo import (
    GCJ02,
    CRSProblem,
    SourceCRS,
    check_source_coordinates,
    outside_area_of_use,
    parse_crs,
    to_wgs84_coords,
)
from webapp.grid.models import CODE_LENGTH, GRID_CODE_MAX, AreaLevel
from webapp.security import unsafe_text

Progress = Callable[[str, int, int], None]

CODE_FIELDS = [
    "code",
    "adcode",
    "区划代码",
    "统计用区划代码",
    "代码",
    "编码",
    "grid_code",
    "网格编码",
]
NAME_FIELDS = ["name", "名称", "区划名称", "网格名称", "村名", "乡镇名称"]
PARENT_FIELDS = ["parent", "parent_code", "上级代码", "上级区划代码", "所属代码"]
POPULATION_FIELDS = ["population", "pop", "人口", "常住人口", "户籍人口"]
HOUSEHOLD_FIELDS = ["households", "户数"]

TRANSFORM_CHUNK = 2000


@dataclass
class Problem:
    """One finding about one feature (or the whole file when ``feature`` is empty)."""

    code: str
    message: str
    feature: str = ""

    def __str__(self) -> str:
        return f"{self.feature}：{self.message}" if self.feature else self.message


@dataclass
class ImportReport:
    path: str
    level: str
    crs: str = ""
    features: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    cases_moved: int = 0
    cases_orphaned: int = 0
    errors: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    overlaps: list[tuple[str, str, float]] = field(default_factory=list)
    gaps: list[tuple[str, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        """Return the report as Chinese lines for people."""
        level = (
            AreaLevel(self.level).label
            if self.level in AreaLevel._value2member_map_
            else self.level
        )
        out = [
            f"文件 {self.path}：{self.features} 个要素，层级 {level}，坐标系 {self.crs or '未知'}"
        ]
        if self.errors:
            out.append(f"导入被拒绝，发现 {len(self.errors)} 个错误，未写入任何数据：")
            out += [f"  ✗ [{p.code}] {p}" for p in self.errors]
            return out
        out.append(f"新增 {self.inserted}，更新 {self.updated}，未变化 {self.unchanged}")
        if self.cases_moved:
            out.append(f"因边界变化重新归属网格的案件：{self.cases_moved}")
        if self.cases_orphaned:
            out.append(f"警告：{self.cases_orphaned} 个案件已不在任何网格内，保留原归属")
        for p in self.repaired:
            out.append(f"  已修复无效几何 {p}")
        for p in self.warnings:
            out.append(f"  警告 [{p.code}] {p}")
        for a, b, m2 in self.overlaps:
            out.append(f"  重叠：{a} 与 {b}，{m2:,.1f} 平方米")
        for parent, m2 in self.gaps:
            out.append(f"  空隙：{parent} 未被下级覆盖 {m2:,.1f} 平方米")
        if not (self.repaired or self.overlaps or self.gaps or self.warnings):
            out.append("无重叠、无空隙、无需修复。")
        return out

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "level": self.level,
            "crs": self.crs,
            "features": self.features,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "cases_moved": self.cases_moved,
            "errors": [vars(p) for p in self.errors],
            "repaired": [vars(p) for p in self.repaired],
            "warnings": [vars(p) for p in self.warnings],
            "overlaps": [{"a": a, "b": b, "m2": m2} for a, b, m2 in self.overlaps],
            "gaps": [{"parent": p, "m2": m2} for p, m2 in self.gaps],
        }


class ImportRejected(Exception):
    """The file was refused; ``report.errors`` says why, feature by feature."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__("; ".join(str(p) for p in report.errors[:5]))
        self.report = report


@dataclass
class Features:
    codes: list[str]
    names: list[str]
    parents: list[str | None]
    populations: list[int | None] | None
    households: list[int | None] | None
    geoms: np.ndarray  # shapely geometries (or None)
    crs: str | None

    def label(self, i: int) -> str:
        return f"第{i + 1}个要素 {self.codes[i] or '(无代码)'} {self.names[i] or ''}".rstrip()


def _pick_field(
    fields: list[str], wanted: str | None, candidates: list[str], what: str
) -> str | None:
    lowered = {f.lower(): f for f in fields}
    if wanted:
        if wanted in fields:
            return wanted
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        raise _FileError(
            "field_missing", f"文件中没有字段 {wanted!r}（{what}）；现有字段：{', '.join(fields)}"
        )
    for c in candidates:
        if c.lower() in lowered:
            return lowered[c.lower()]
    return None


class _FileError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _code_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not np.isfinite(value):
            return ""
        if value.is_integer():
            return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()


def _int_or_none(value) -> int | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(f) or f < 0:
        return None
    return int(round(f))


def _dataset_path(path: Path) -> str:
    if path.suffix.lower() == ".zip":
        return f"/vsizip/{path}"
    return str(path)


def read_raw(source: str):
    """pyogrio's raw read; text that is not UTF-8 (a GeoJSON saved in GBK, a shapefile
    whose .cpg says UTF-8 wrongly) is read again as GB18030, as a ledger CSV is.
    UnicodeDecodeError if that fails too (the caller refuses the file)."""
    try:
        return pyogrio.raw.read(source)
    except UnicodeDecodeError:
        return pyogrio.raw.read(source, encoding="gb18030")


def read_features(
    path: Path,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
) -> Features:
    """Read a boundary file's features and attributes (no CRS transform yet)."""
    if not path.exists():
        raise _FileError("file_not_found", f"文件不存在：{path}")
    if zipfile.is_zipfile(path):
        try:
            check_archive(path)
        except ArchiveTooLarge as exc:
            raise _FileError(exc.code, exc.message) from None
    try:
        meta, _fids, wkb, field_data = read_raw(_dataset_path(path))
    except (DataSourceError, DataLayerError, OSError, RuntimeError) as exc:
        raise _FileError("file_unreadable", f"无法读取文件（格式损坏或不受支持）：{exc}") from exc
    except UnicodeDecodeError:
        raise _FileError("file_encoding", "无法识别文件中文字的编码（应为 UTF-8 或 GBK）") from None
    if len(wkb) == 0:
        raise _FileError("empty_file", "文件中没有任何要素")
    fields = [str(f) for f in meta["fields"]]
    cf = _pick_field(fields, code_field, CODE_FIELDS, "代码")
    nf = _pick_field(fields, name_field, NAME_FIELDS, "名称")
    pf = _pick_field(fields, parent_field, PARENT_FIELDS, "上级代码") if parent_field else None
    if cf is None:
        raise _FileError(
            "code_field_missing",
            f"找不到区划代码字段，请用 --code-field 指定；现有字段：{', '.join(fields) or '无'}",
        )
    if nf is None:
        raise _FileError(
            "name_field_missing",
            f"找不到名称字段，请用 --name-field 指定；现有字段：{', '.join(fields) or '无'}",
        )
    column = dict(zip(fields, field_data, strict=True))
    n = len(wkb)
    popf = _pick_field(fields, None, POPULATION_FIELDS, "人口")
    hhf = _pick_field(fields, None, HOUSEHOLD_FIELDS, "户数")
    geoms = shapely.from_wkb(wkb, on_invalid="ignore") if n else np.array([], dtype=object)
    return Features(
        codes=[_code_text(v) for v in column[cf]],
        names=[_code_text(v) for v in column[nf]],
        parents=[_code_text(v) or None for v in column[pf]] if pf else [None] * n,
        populations=[_int_or_none(v) for v in column[popf]] if popf else None,
        households=[_int_or_none(v) for v in column[hhf]] if hhf else None,
        geoms=np.asarray(geoms, dtype=object),
        crs=meta.get("crs"),
    )


def _expected_code(level: AreaLevel, code: str) -> str | None:
    """Return a message if ``code`` is not a valid code for ``level``, else None."""
    if not code.isdigit():
        return "区划代码必须全部为数字"
    if level in CODE_LENGTH:
        if len(code) != CODE_LENGTH[level]:
            return f"{level.label}区划代码应为 {CODE_LENGTH[level]} 位，实际 {len(code)} 位"
    elif not 12 < len(code) <= GRID_CODE_MAX:
        return f"网格代码应为所属村代码（12 位）加网格自身编号，共 13 至 {GRID_CODE_MAX} 位"
    return None


def _parent_code(level: AreaLevel, code: str) -> str | None:
    parent = level.parent
    if parent is None:
        return None
    return code[: CODE_LENGTH[parent]]


def import_areas(
    session: Session,
    path: str | Path,
    level: AreaLevel | str,
    crs: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    outside_tolerance: float = 0.05,
    area_epsilon_m2: float = 1.0,
    progress: Progress | None = None,
    repair: bool = False,
    allow_overlap: bool = False,
) -> ImportReport:
    """Import one level of areas from a boundary file; raise ImportRejected on any error.

    Invalid polygons are refused (``geometry_invalid``) unless ``repair``; siblings
    overlapping by more than ``area_epsilon_m2`` are refused (``overlap``) unless
    ``allow_overlap``. The session is flushed, not committed: the caller commits the
    report's success.
    """
    path = Path(path)
    level = AreaLevel(level)
    report = ImportReport(path=str(path), level=level.value)
    tick = progress or (lambda stage, done, total: None)

    def reject(code: str, message: str, feature: str = "") -> ImportRejected:
        report.errors.append(Problem(code, message, feature))
        return ImportRejected(report)

    try:
        feats = read_features(path, code_field, name_field, parent_field)
    except _FileError as exc:
        raise reject(exc.code, exc.message) from None
    n = len(feats.codes)
    report.features = n
    tick("读取", n, n)

    try:
        if crs:
            source = parse_crs(crs)
        elif feats.crs:
            source = parse_crs(feats.crs)
        elif path.suffix.lower() in {".geojson", ".json"}:
            source = parse_crs("EPSG:4326")  # RFC 7946: GeoJSON is WGS84 unless it says otherwise
        else:
            raise reject(
                "crs_unknown",
                "文件未声明坐标系，请用 --crs 指定（如 EPSG:4490、EPSG:4526 或 gcj02）",
            )
    except CRSProblem as exc:
        raise reject("crs_invalid", str(exc)) from None
    report.crs = source.label

    _check_attributes(feats, level, report)
    geoms = _check_and_transform(feats, source, report, tick)
    if report.errors:
        raise ImportRejected(report)

    _stage(session, feats, geoms, level)
    tick("校验", 0, 1)
    _check_in_sql(session, feats, level, outside_tolerance, repair, report)
    if not report.errors:
        _check_overlaps(session, feats, level, area_epsilon_m2, allow_overlap, report)
    if report.errors:
        raise ImportRejected(report)
    tick("校验", 1, 1)

    tick("写入", 0, 1)
    changed_grids = _upsert(session, level, feats, report)
    if level is AreaLevel.GRID and changed_grids:
        _reassign_cases(session, changed_grids, report)
    _report_gaps(session, level, area_epsilon_m2, report)
    session.execute(text("DROP TABLE IF EXISTS area_import"))
    # Fresh statistics of the areas for every query that lists them (the statistics'
    # rows): without them the planner takes 342 villages for one and answers them by
    # nested loops over every per-area aggregate (a database copied from a template,
    # such as the bench's, never gets them from autovacuum).
    session.execute(text("ANALYZE areas"))
    session.flush()
    tick("写入", 1, 1)
    return report


def _check_attributes(feats: Features, level: AreaLevel, report: ImportReport) -> None:
    seen: dict[str, int] = {}
    for i, code in enumerate(feats.codes):
        label = feats.label(i)
        if not code:
            report.errors.append(Problem("code_missing", "缺少区划代码", label))
            continue
        problem = _expected_code(level, code)
        if problem:
            report.errors.append(Problem("code_invalid", problem, label))
        if code in seen:
            report.errors.append(
                Problem("duplicate_code", f"区划代码与第{seen[code] + 1}个要素重复", label)
            )
        else:
            seen[code] = i
        if not feats.names[i]:
            report.errors.append(Problem("name_missing", "缺少名称", label))
        elif unsafe_text(feats.names[i]):
            report.errors.append(Problem("name_invalid", "名称含有不可见的控制字符或乱码", label))
        elif len(feats.names[i]) > 100:
            report.errors.append(Problem("name_too_long", "名称超过 100 个字符", label))
        parent = feats.parents[i]
        expected = _parent_code(level, code)
        if level is AreaLevel.COUNTY:
            feats.parents[i] = None
        elif parent and expected and parent != expected:
            report.errors.append(
                Problem(
                    "parent_mismatch",
                    f"上级代码 {parent} 与区划代码的前缀 {expected} 不一致",
                    label,
                )
            )
        else:
            feats.parents[i] = expected


def _check_and_transform(
    feats: Features, source: SourceCRS, report: ImportReport, tick: Progress
) -> np.ndarray:
    """Check geometry types and coordinates, and return MultiPolygons in WGS84."""
    n = len(feats.codes)
    geoms = feats.geoms
    out = np.empty(n, dtype=object)
    good: list[int] = []
    for i in range(n):
        g = geoms[i]
        label = feats.label(i)
        if g is None or shapely.is_empty(g):
            report.errors.append(Problem("geometry_empty", "几何为空", label))
            continue
        kind = shapely.get_type_id(g)
        if kind not in (3, 6):  # Polygon, MultiPolygon
            report.errors.append(
                Problem(
                    "geometry_not_polygon",
                    f"几何类型为 {g.geom_type}，应为面（Polygon/MultiPolygon）",
                    label,
                )
            )
            continue
        good.append(i)
    for start in range(0, len(good), TRANSFORM_CHUNK):
        idx = good[start : start + TRANSFORM_CHUNK]
        chunk = shapely.force_2d(np.array([geoms[i] for i in idx], dtype=object))
        coords, owner = shapely.get_coordinates(chunk, return_index=True)
        bad = check_source_coordinates(coords, source)
        if source.name == GCJ02:
            bad |= outside_area_of_use(coords, source, margin=0.0)
        lonlat = np.full_like(coords, np.nan)
        ok_rows = ~bad
        if ok_rows.any():
            lonlat[ok_rows] = to_wgs84_coords(coords[ok_rows], source)
        bad |= outside_area_of_use(lonlat, source)
        bad_features = set(np.unique(owner[bad]).tolist())
        for j in sorted(bad_features):
            i = idx[j]
            row = coords[np.argmax((owner == j) & bad)]
            report.errors.append(
                Problem(
                    "coordinates_impossible",
                    f"坐标 ({row[0]:.6g}, {row[1]:.6g}) 在坐标系 {source.label} 中不可能出现"
                    "（坐标系声明错误或数据损坏）",
                    feats.label(i),
                )
            )
        if not bad_features:
            transformed = shapely.set_coordinates(chunk.copy(), lonlat)
            transformed = np.array(
                [
                    g if shapely.get_type_id(g) == 6 else shapely.multipolygons([g])
                    for g in transformed
                ],
                dtype=object,
            )
            for j, i in enumerate(idx):
                out[i] = transformed[j]
        tick("坐标转换", min(start + TRANSFORM_CHUNK, len(good)), len(good))
    return out


def _stage(session: Session, feats: Features, geoms: np.ndarray, level: AreaLevel) -> None:
    session.execute(text("DROP TABLE IF EXISTS area_import"))
    session.execute(
        text(
            """
            CREATE TEMP TABLE area_import (
                ord integer PRIMARY KEY,
                code text NOT NULL,
                name text NOT NULL,
                parent_code text,
                population integer,
                households integer,
                geom geometry(MultiPolygon, 4326) NOT NULL,
                repair_reason text
            ) ON COMMIT DROP
            """
        )
    )
    hexes = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    buf = io.StringIO()
    writer = csv.writer(buf)
    for i in range(len(feats.codes)):
        writer.writerow(
            [
                i,
                feats.codes[i],
                feats.names[i],
                feats.parents[i] or "",
                ""
                if feats.populations is None or feats.populations[i] is None
                else feats.populations[i],
                ""
                if feats.households is None or feats.households[i] is None
                else feats.households[i],
                hexes[i],
            ]
        )
    buf.seek(0)
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(
            "COPY area_import (ord, code, name, parent_code, population, households, geom) "
            "FROM STDIN WITH (FORMAT csv, NULL '')",
            buf,
        )


def _check_in_sql(
    session: Session,
    feats: Features,
    level: AreaLevel,
    tolerance: float,
    repair: bool,
    report: ImportReport,
) -> None:
    if not repair:
        invalid = session.execute(
            text(
                "SELECT ord, ST_IsValidReason(geom) FROM area_import WHERE NOT ST_IsValid(geom) ORDER BY ord"
            )
        ).all()
        for ord_, reason in invalid:
            report.errors.append(
                Problem(
                    "geometry_invalid",
                    f"多边形无效（自相交等）：{reason}；请在 GIS 软件中修正，"
                    "或确认后加 --repair 由系统自动修复",
                    feats.label(ord_),
                )
            )
        if invalid:
            return
    # Repair invalid polygons (self-intersections, bow-ties) and list them.
    repaired = session.execute(
        text(
            """
            UPDATE area_import
            SET repair_reason = ST_IsValidReason(geom),
                geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))
            WHERE NOT ST_IsValid(geom)
            RETURNING ord, repair_reason, ST_IsEmpty(geom) AS empty
            """
        )
    ).all()
    for ord_, reason, empty in sorted(repaired):
        if empty:
            report.errors.append(
                Problem("geometry_empty", f"无效几何修复后为空（{reason}）", feats.label(ord_))
            )
        else:
            report.repaired.append(Problem("geometry_repaired", reason, feats.label(ord_)))

    parent_level = level.parent
    if parent_level is None:
        return
    missing = session.execute(
        text(
            """
            SELECT s.ord, s.parent_code FROM area_import s
            LEFT JOIN areas p ON p.code = s.parent_code AND p.level = :plevel
            WHERE p.id IS NULL ORDER BY s.ord
            """
        ),
        {"plevel": parent_level.value},
    ).all()
    for ord_, parent_code in missing:
        report.errors.append(
            Problem(
                "parent_missing",
                f"上级{parent_level.label} {parent_code} 不存在，请先导入上级区划",
                feats.label(ord_),
            )
        )
    if report.errors:
        return
    outside = session.execute(
        text(
            """
            SELECT s.ord, p.name,
                   1 - ST_Area(ST_Intersection(s.geom, p.geom)::geography)
                       / NULLIF(ST_Area(s.geom::geography), 0) AS share
            FROM area_import s JOIN areas p ON p.code = s.parent_code
            WHERE NOT ST_Within(s.geom, p.geom)
            ORDER BY s.ord
            """
        )
    ).all()
    for ord_, parent_name, share in outside:
        if share is None:
            report.errors.append(Problem("geometry_empty", "面积为零", feats.label(ord_)))
        elif share > tolerance:
            report.errors.append(
                Problem(
                    "outside_parent",
                    f"{share:.1%} 的面积位于上级 {parent_name} 之外（容差 {tolerance:.1%}）",
                    feats.label(ord_),
                )
            )
        elif share > 1e-4:
            report.warnings.append(
                Problem(
                    "partly_outside_parent",
                    f"{share:.2%} 的面积位于上级 {parent_name} 之外",
                    feats.label(ord_),
                )
            )


def _upsert(session: Session, level: AreaLevel, feats: Features, report: ImportReport) -> list[int]:
    """Insert new areas and update changed ones; return the ids of grids whose shape changed."""
    keep_pop = feats.populations is None
    keep_hh = feats.households is None
    township = "left(s.code, 9)" if level not in (AreaLevel.COUNTY,) else "NULL"
    village = "left(s.code, 12)" if level in (AreaLevel.VILLAGE, AreaLevel.GRID) else "NULL"
    rows = session.execute(
        text(
            f"""
            WITH old AS (
                SELECT a.code, ST_AsBinary(a.geom) AS wkb
                FROM areas a JOIN area_import s USING (code)
            )
            INSERT INTO areas AS a (code, name, level, parent_id, county_code, township_code,
                                    village_code, population, households, geom, label_point, area_m2)
            SELECT s.code, s.name, :level, p.id, left(s.code, 6), {township}, {village},
                   s.population, s.households, s.geom, ST_PointOnSurface(s.geom),
                   ST_Area(s.geom::geography)
            FROM area_import s LEFT JOIN areas p ON p.code = s.parent_code
            ORDER BY s.code
            ON CONFLICT (code) DO UPDATE SET
                name = EXCLUDED.name,
                level = EXCLUDED.level,
                parent_id = EXCLUDED.parent_id,
                population = {"a.population" if keep_pop else "EXCLUDED.population"},
                households = {"a.households" if keep_hh else "EXCLUDED.households"},
                geom = EXCLUDED.geom,
                label_point = EXCLUDED.label_point,
                area_m2 = EXCLUDED.area_m2,
                updated_at = now()
            WHERE a.name IS DISTINCT FROM EXCLUDED.name
               OR a.level IS DISTINCT FROM EXCLUDED.level
               OR a.parent_id IS DISTINCT FROM EXCLUDED.parent_id
               OR ({"false" if keep_pop else "a.population IS DISTINCT FROM EXCLUDED.population"})
               OR ({"false" if keep_hh else "a.households IS DISTINCT FROM EXCLUDED.households"})
               OR ST_AsBinary(a.geom) IS DISTINCT FROM ST_AsBinary(EXCLUDED.geom)
            RETURNING a.id, a.code, (xmax = 0) AS inserted,
                      ST_AsBinary(a.geom) IS DISTINCT FROM
                          (SELECT wkb FROM old WHERE old.code = a.code) AS reshaped
            """
        ),
        {"level": level.value},
    ).all()
    report.inserted = sum(1 for r in rows if r.inserted)
    report.updated = len(rows) - report.inserted
    report.unchanged = report.features - len(rows)
    return [r.id for r in rows if r.reshaped and not r.inserted] + [
        r.id for r in rows if r.inserted
    ]


def _reassign_cases(session: Session, grid_ids: list[int], report: ImportReport) -> None:
    """Put the cases touched by changed grids into the grid PostGIS now finds for them."""
    result = session.execute(
        text(
            """
            WITH touched AS (
                SELECT c.id, c.location, c.grid_id FROM cases c WHERE c.grid_id = ANY(:ids)
                UNION
                SELECT c.id, c.location, c.grid_id FROM areas g
                JOIN cases c ON ST_Covers(g.geom, c.location)
                WHERE g.id = ANY(:ids)
            ),
            target AS (
                SELECT t.id, t.grid_id AS old_grid, (
                    SELECT g.id FROM areas g
                    WHERE g.level = 'grid' AND ST_Covers(g.geom, t.location)
                    ORDER BY g.code LIMIT 1
                ) AS new_grid
                FROM touched t
            ),
            moved AS (
                UPDATE cases c
                SET grid_id = g.id, grid_code = g.code, village_code = g.village_code,
                    township_code = g.township_code, county_code = g.county_code
                FROM target t JOIN areas g ON g.id = t.new_grid
                WHERE c.id = t.id AND t.new_grid <> t.old_grid
                RETURNING c.id
            )
            SELECT (SELECT count(*) FROM moved) AS moved,
                   (SELECT count(*) FROM target WHERE new_grid IS NULL) AS orphaned
            """
        ),
        {"ids": grid_ids},
    ).one()
    report.cases_moved = result.moved
    report.cases_orphaned = result.orphaned


def _check_overlaps(
    session: Session,
    feats: Features,
    level: AreaLevel,
    epsilon: float,
    allow: bool,
    report: ImportReport,
) -> None:
    """Find siblings that overlap by more than ``epsilon`` m² once the file is in.

    Staged features are compared with each other and with the stored areas of the
    level that the file does not replace. An overlap is an error unless ``allow``,
    then it is listed in the report.
    """
    session.execute(text("CREATE INDEX ON area_import USING gist (geom)"))
    session.execute(text("ANALYZE area_import"))
    rows = session.execute(
        text(
            """
            SELECT x.ord AS a_ord, x.code AS a_code, x.name AS a_name,
                   y.ord AS b_ord, y.code AS b_code, y.name AS b_name,
                   ST_Area(ST_Intersection(x.geom, y.geom)::geography) AS m2
            FROM area_import x
            JOIN area_import y ON x.code < y.code AND x.geom && y.geom
                              AND x.parent_code IS NOT DISTINCT FROM y.parent_code
            WHERE ST_Relate(x.geom, y.geom, '2********')
            UNION ALL
            SELECT x.ord, x.code, x.name, NULL, a.code, a.name,
                   ST_Area(ST_Intersection(x.geom, a.geom)::geography)
            FROM area_import x
            JOIN areas a ON a.level = :level AND a.geom && x.geom
            LEFT JOIN areas p ON p.id = a.parent_id
            WHERE p.code IS NOT DISTINCT FROM x.parent_code
              AND NOT EXISTS (SELECT 1 FROM area_import s WHERE s.code = a.code)
              AND ST_Relate(x.geom, a.geom, '2********')
            """
        ),
        {"level": level.value},
    ).all()
    overlaps = sorted(
        (r for r in rows if r.m2 > epsilon), key=lambda r: sorted([r.a_code, r.b_code])
    )
    for r in overlaps:
        if allow:
            first, second = sorted([f"{r.a_code} {r.a_name}", f"{r.b_code} {r.b_name}"])
            report.overlaps.append((first, second, float(r.m2)))
            continue
        other = (
            feats.label(r.b_ord)
            if r.b_ord is not None
            else f"已有{level.label} {r.b_code} {r.b_name}"
        )
        report.errors.append(
            Problem(
                "overlap",
                f"与 {other} 重叠 {r.m2:,.1f} 平方米；同级区划不应重叠，请修正边界，"
                "或确认后加 --allow-overlap 导入",
                feats.label(r.a_ord),
            )
        )


def _report_gaps(session: Session, level: AreaLevel, epsilon: float, report: ImportReport) -> None:
    if level.parent is None:
        return
    gaps = session.execute(
        text(
            """
            SELECT p.code || ' ' || p.name,
                   ST_Area(ST_Difference(p.geom, ST_Union(c.geom))::geography) AS m2
            FROM areas p JOIN areas c ON c.parent_id = p.id
            WHERE p.code IN (SELECT DISTINCT parent_code FROM area_import)
            GROUP BY p.id, p.code, p.name, p.geom
            ORDER BY 1
            """
        )
    ).all()
    report.gaps = [(p, float(m2)) for p, m2 in gaps if m2 > epsilon]
