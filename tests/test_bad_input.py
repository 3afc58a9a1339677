"""Every bad input, on every endpoint that takes input: a clear error, and nothing stored.

One table (``BAD``): where the input goes, what is wrong with it, and the answer the
app must give (HTTP status and stable error code; every answer also carries a Chinese
message). Each row runs against the real app inside the test's transaction, and the
rows of the tables that hold what people send (cases, events, photos, sweeps, imports,
areas, idempotency keys, the audit log) and the photo files are counted before and
after: a refused input leaves nothing behind. docs/security.md lists these rows
(``test_the_docs_list_every_row`` keeps the list true).

Deeper tests per feature stay where they are (field reports, photos, the desk form,
the API fuzzer, Open311, the ledger and boundary importers); docs/security.md names them.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from tests.builders import VILLAGE, import_test_county, u, ubox, write_geojson
from tests.conftest import CSRF, CSRF_HEADERS
from tests.exchange_fixtures import *  # noqa: F403
from tests.field_fixtures import image_bytes
from tests.security_fixtures import *  # noqa: F403

MB = 1024 * 1024
PHOTO_LIMIT = 256 * 1024  # PHOTO_MAX_BYTES in these tests (10 MB by default)
HUGE = "长" * (MB // 3)  # 1 MB of UTF-8
JSON = {**CSRF_HEADERS, "Content-Type": "application/json", "Accept": "application/json"}
CJK = re.compile(r"[\u4e00-\u9fff]")
STORED = [
    "cases",
    "case_events",
    "case_photos",
    "sweeps",
    "ledger_imports",
    "areas",
    "api_idempotency_keys",
    "audit_log",
    "visit_plans",
    "visit_stops",
    "visit_records",
]


@dataclass
class Ctx:
    client: object
    session: object
    tmp: Path
    lonlat: tuple[float, float]
    category_id: int
    case: object  # a registered case in the demo grid
    token: str  # a county staff API key
    role: str = ""
    stop_id: int = 0  # a visit stop given to the grid worker today (see make_stop)

    def login(self, role: str) -> None:
        self._login(role)
        self.role = role

    # -- requests -----------------------------------------------------------------
    def report(self, raw: bytes | None = None, content_type: str = "application/json", **fields):
        self.login("grid_worker")
        if raw is None:
            body = {
                "client_id": "6f1c1b3e-8d5c-4a0b-9a53-2f1f7c1d0e11",
                "category_id": self.category_id,
                "description": "两户因排水沟发生争执",
                "people_count": 2,
                "lon": self.lonlat[0],
                "lat": self.lonlat[1],
            }
            body.update(fields)
            body = {k: v for k, v in body.items() if v is not _DROP}
            raw = json.dumps(body, ensure_ascii=False, allow_nan=True).encode()
        return self.client.post(
            "/api/v1/field/reports", data=raw, headers={**JSON, "Content-Type": content_type}
        )

    def photo(self, data: bytes, case_id: int | None = None, name: str = "p.jpg"):
        self.login("grid_worker")
        self.case.reporter_id = self._user.id
        self.session.flush()
        return self.client.post(
            f"/api/v1/field/cases/{case_id or self.case.id}/photos",
            data={
                "client_photo_id": "1b0e3a7c-0f5c-4d7e-9b1e-3c7a2d9e4f10",
                "photo": (io.BytesIO(data), name),
            },
            headers={**CSRF_HEADERS, "Accept": "application/json"},
        )

    def desk(self, **fields):
        self.login("county_staff")
        form = {
            "csrf_token": CSRF,
            "channel": "visit",
            "case_class": "request",
            "category_id": str(self.category_id),
            "title": "小区停车位纠纷",
            "description": "业主反映车位被占",
            "people_count": "1",
            "batch_count": "1",
            "lon": str(self.lonlat[0]),
            "lat": str(self.lonlat[1]),
        }
        form.update(fields)
        form = {k: v for k, v in form.items() if v is not _DROP}
        return self.client.post("/cases/new", data=form, headers={"Accept": "application/json"})

    def act(self, action: str, case_id: int | None = None, **fields):
        self.login("county_staff")
        form = {"csrf_token": CSRF, "version": str(self.case.version), **fields}
        return self.client.post(
            f"/cases/{case_id or self.case.id}/actions/{action}",
            data=form,
            headers={"Accept": "application/json"},
        )

    def api(self, body: bytes | dict, content_type: str = "application/json", key: str = "k-1"):
        raw = (
            body
            if isinstance(body, bytes)
            else json.dumps(body, ensure_ascii=False, allow_nan=True).encode()
        )
        return self.client.post(
            "/api/v1/cases",
            data=raw,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": content_type,
                "Idempotency-Key": key,
            },
        )

    def api_case(self, **fields):
        body = {
            "title": "路灯损坏",
            "category": "other",
            "lon": self.lonlat[0],
            "lat": self.lonlat[1],
            "description": "村口路灯不亮",
        }
        body.update(fields)
        return self.api({k: v for k, v in body.items() if v is not _DROP})

    def get(self, url: str, role: str = "county_staff"):
        self.login(role)
        return self.client.get(url, headers={"Accept": "application/json"})

    def open311(self, **fields):
        form = {
            "api_key": self.token,
            "service_code": "other",
            "description": "路灯不亮",
            "lat": str(self.lonlat[1]),
            "long": str(self.lonlat[0]),
        }
        form.update(fields)
        return self.client.post(
            "/open311/v2/requests.json", data={k: v for k, v in form.items() if v is not _DROP}
        )

    def outcome(self, body, stop_id: int | None = None):
        """POST a visit outcome for a stop given to this grid worker today."""
        self.login("grid_worker")
        if stop_id is None:
            stop_id = self.stop_id
        if isinstance(body, dict):
            body = json.dumps(
                {"client_id": "2b7e1f0c-1d2e-4f3a-8b9c-0d1e2f3a4b5c", "outcome": "done", **body}
            ).encode()
        return self.client.post(f"/api/v1/visits/stops/{stop_id}/outcomes", data=body, headers=JSON)

    def _stop(self) -> int:
        plan = self.session.execute(
            text(
                "INSERT INTO visit_plans "
                "(title, area_code, date_from, date_to, status, weights, created_by, published_at) "
                "VALUES ('计划', :a, current_date, current_date, 'published', '{}'::jsonb, :u, now()) RETURNING id"
            ),
            {"a": self.case.grid_code[:9], "u": self._user.id},
        ).scalar_one()
        return self.session.execute(
            text(
                "INSERT INTO visit_stops (plan_id, kind, grid_code, location, score, reasons, user_id, day, seq) "
                "SELECT :p, 'grid', :g, location, 1, '[]'::jsonb, :u, (now() AT TIME ZONE 'Asia/Shanghai')::date, 1 "
                "FROM cases WHERE id = :c RETURNING id"
            ),
            {"p": plan, "g": self.case.grid_code, "c": self.case.id, "u": self._user.id},
        ).scalar_one()

    def plan(self, role: str = "planner", **fields):
        self.login(role)
        form = {
            "csrf_token": CSRF,
            "area": self.case.grid_code[:9],
            "date_from": "2030-01-01",
            "date_to": "2030-01-05",
        }
        form.update(fields)
        return self.client.post("/visits/new", data=form, headers={"Accept": "application/json"})

    def sweep(self, body):
        self.login("grid_worker")
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post("/api/v1/field/sweeps", data=raw, headers=JSON)

    def upload_ledger(self, data: bytes, name: str):
        self.login("county_staff")
        return self.client.post(
            "/exchange/imports",
            data={"csrf_token": CSRF, "file": (io.BytesIO(data), name)},
            headers={"Accept": "application/json"},
        )

    def ledger(self, data: bytes, name: str):
        """Check a ledger file as the import job does; (status, code, message) of the refusal."""
        from webapp.exchange.importer import check_ledger
        from webapp.exchange.ledger import LedgerUnreadable

        path = self.tmp / name
        path.write_bytes(data)
        try:
            check_ledger(self.session, path, "EPSG:4326", name)
        except LedgerUnreadable as exc:
            return 422, exc.code, str(exc)
        return 200, "", ""

    def boundary(self, level: str, path: Path, **kw):
        """Import a boundary file as ``flask grid import`` does: (status, first error code, message).

        The message is every problem as the command prints it, each naming its feature.
        """
        from webapp.grid.importer import ImportRejected, import_areas

        try:
            with self.session.begin_nested():
                report = import_areas(self.session, path, level, **kw)
        except ImportRejected as exc:
            return 422, exc.report.errors[0].code, "\n".join(str(p) for p in exc.report.errors)
        return 200, "", "\n".join(report.lines())


_DROP = object()


def make_stop(ctx: Ctx) -> None:
    ctx.login("grid_worker")
    ctx.stop_id = ctx._stop()


def answer(response) -> tuple[int, str, str]:
    """(status, code, message) of an HTTP answer: our JSON errors, Open311's list, or a page."""
    try:
        body = response.get_json(silent=True)
    except Exception:  # noqa: BLE001 - not JSON at all
        body = None
    if isinstance(body, dict) and "error" in body:
        return response.status_code, body["error"]["code"], body["error"]["message"]
    if isinstance(body, list) and body and "error_code" in body[0]:
        return response.status_code, body[0]["error_code"], body[0]["description"]
    return response.status_code, "", response.get_data(as_text=True)[:300]


@dataclass(frozen=True)
class Bad:
    where: str  # the endpoint, as a person names it
    what: str  # what is wrong with the input
    status: int
    code: str
    send: Callable[[Ctx], object]
    prepare: Callable[[Ctx], None] | None = None  # set-up that is not the input itself

    @property
    def id(self) -> str:
        return f"{self.where} · {self.what}"


def png_of_size(w: int, h: int) -> bytes:
    out = io.BytesIO()
    Image.new("1", (w, h)).save(out, "PNG", optimize=True)
    return out.getvalue()


def zip_bomb(member: str, size: int = 64 * MB, extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in (extra or {}).items():
            z.writestr(name, data)
        with z.open(member, "w", force_zip64=True) as fh:
            chunk = b"\0" * MB
            for _ in range(size // MB):
                fh.write(chunk)
    return out.getvalue()


def shapefile_bomb(tmp: Path) -> Path:
    path = tmp / "grids.zip"
    path.write_bytes(
        zip_bomb("grids.dbf", extra={"grids.shp": b"\0" * 100, "grids.shx": b"\0" * 100})
    )
    return path


def xlsx_bomb() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["登记日期", "问题类别", "事由"])
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                z.writestr(info, src.read(info))
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(src.read("xl/worksheets/sheet1.xml").replace(b"</worksheet>", b""))
            for _ in range(64):
                fh.write(b" " * MB)
            fh.write(b"</worksheet>")
    return out.getvalue()


def county_files(ctx: Ctx) -> None:
    import_test_county(ctx.session, ctx.tmp)


def _bowtie() -> object:
    from shapely.geometry import Polygon

    return Polygon([u(2, 1), u(3, 2), u(3, 1), u(2, 2), u(2, 1)])


def boundary_case(kind: str):
    def run(ctx: Ctx):
        p = ctx.tmp / f"{kind}.geojson"
        if kind == "self_intersecting":
            write_geojson(p, [({"code": f"{VILLAGE}021", "name": "蝴蝶"}, _bowtie())])
        elif kind == "overlapping":
            write_geojson(
                p,
                [
                    ({"code": f"{VILLAGE}031", "name": "甲"}, ubox(2, 1, 3.5, 2)),
                    ({"code": f"{VILLAGE}032", "name": "乙"}, ubox(3, 1, 4, 2)),
                ],
            )
        elif kind == "wrong_crs":
            # Gauss-Krüger metres declared as degrees: impossible coordinates for WGS84.
            write_geojson(p, [({"code": f"{VILLAGE}041", "name": "错"}, ubox(2, 1, 3, 2))])
            data = json.loads(p.read_text())
            for f in data["features"]:
                f["geometry"]["coordinates"] = [
                    [[x * 1e5, y * 1e5] for x, y in ring] for ring in f["geometry"]["coordinates"]
                ]
            p.write_text(json.dumps(data))
        elif kind == "empty":
            p.write_text('{"type": "FeatureCollection", "features": []}')
        elif kind == "malformed":
            p.write_text('{"type": "FeatureCollection", "features": [')
        elif kind == "bomb":
            p = shapefile_bomb(ctx.tmp)
        return ctx.boundary("grid", p)

    return run


CSV_NO_HEADER = "张三,2024-01-01,噪音\n李四,2024-01-02,停车\n".encode()
CSV_MISSING = "信访人,乡镇\n张三,城关镇\n".encode()
CSV_GBK_BROKEN = b"\xff\xfe\x00\xd8\x00\xdc" * 10 + "登记日期".encode("utf-16-le")

BAD: list[Bad] = [
    # -- field reports: POST /api/v1/field/reports ------------------------------------
    Bad(
        "现场上报",
        "longitude out of range (200)",
        400,
        "invalid_coordinates",
        lambda c: c.report(lon=200.0),
    ),
    Bad(
        "现场上报",
        "latitude out of range (-91)",
        400,
        "invalid_coordinates",
        lambda c: c.report(lat=-91.0),
    ),
    Bad(
        "现场上报",
        "NaN coordinates",
        400,
        "invalid_coordinates",
        lambda c: c.report(lon=float("nan")),
    ),
    Bad(
        "现场上报",
        "lon/lat swapped",
        400,
        "invalid_coordinates",
        lambda c: c.report(lon=c.lonlat[1], lat=c.lonlat[0]),
    ),
    Bad(
        "现场上报",
        "a point outside the county",
        422,
        "outside_county",
        lambda c: c.report(lon=100.0, lat=30.0),
    ),
    Bad("现场上报", "missing fields", 400, "missing_field", lambda c: c.report(raw=b"{}")),
    Bad(
        "现场上报", "a 1 MB description", 400, "text_too_long", lambda c: c.report(description=HUGE)
    ),
    Bad(
        "现场上报",
        "control characters",
        400,
        "control_characters",
        lambda c: c.report(title="标题\x00\x07"),
    ),
    Bad(
        "现场上报",
        "invalid UTF-8",
        400,
        "invalid_json",
        lambda c: c.report(raw=b'{"description": "\xff\xfe"}'),
    ),
    Bad(
        "现场上报",
        "unknown category",
        400,
        "unknown_category",
        lambda c: c.report(category_id=999999),
    ),
    Bad("现场上报", "malformed JSON", 400, "invalid_json", lambda c: c.report(raw=b'{"lon": 114.')),
    Bad(
        "现场上报",
        "wrong content type",
        400,
        "invalid_json",
        lambda c: c.report(content_type="text/plain"),
    ),
    Bad(
        "现场上报",
        "a JSON array, not an object",
        400,
        "invalid_json",
        lambda c: c.report(raw=b"[1, 2]"),
    ),
    Bad(
        "现场上报",
        "deeply nested JSON",
        400,
        "invalid_json",
        lambda c: c.report(raw=b"[" * 5000 + b"]" * 5000),
    ),
    Bad(
        "现场上报",
        "a client id that is not a UUID",
        400,
        "invalid_client_id",
        lambda c: c.report(client_id="1; DROP TABLE cases"),
    ),
    # -- photos: POST /api/v1/field/cases/<id>/photos -------------------------------------
    Bad(
        "现场照片",
        "oversize photo (over PHOTO_MAX_BYTES)",
        413,
        "photo_too_large",
        lambda c: c.photo(b"\xff\xd8" + b"0" * (PHOTO_LIMIT + 10)),
    ),
    Bad(
        "现场照片",
        "wrong type (a PDF named .jpg)",
        415,
        "photo_type",
        lambda c: c.photo(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n" * 50),
    ),
    Bad(
        "现场照片",
        "broken (truncated) JPEG",
        400,
        "photo_broken",
        lambda c: c.photo(image_bytes()[:400]),
    ),
    Bad(
        "现场照片",
        "huge dimensions (12000 x 12000 px)",
        413,
        "photo_too_many_pixels",
        lambda c: c.photo(png_of_size(12000, 12000), name="p.png"),
    ),
    Bad("现场照片", "empty file", 400, "photo_empty", lambda c: c.photo(b"")),
    Bad(
        "现场照片",
        "forged case id",
        404,
        "not_found",
        lambda c: c.photo(image_bytes(), case_id=2_000_000_000),
    ),
    # -- sweeps: POST /api/v1/field/sweeps ---------------------------------------------------
    Bad(
        "排查报送",
        "neither cases nor a zero report",
        400,
        "sweep_empty",
        lambda c: c.sweep({"case_ids": []}),
    ),
    Bad(
        "排查报送",
        "zero report with cases",
        400,
        "zero_report_with_cases",
        lambda c: c.sweep({"zero_report": True, "case_ids": [c.case.id]}),
    ),
    Bad(
        "排查报送",
        "forged case ids",
        400,
        "invalid_type",
        lambda c: c.sweep({"case_ids": ["1 OR 1=1"]}),
    ),
    Bad(
        "排查报送",
        "a case not found by this grid's worker",
        400,
        "sweep_case_not_allowed",
        lambda c: c.sweep({"case_ids": [1]}),
    ),
    Bad("排查报送", "malformed JSON", 400, "invalid_json", lambda c: c.sweep(b"{")),
    # -- desk registration: POST /cases/new ------------------------------------------------
    Bad(
        "来访登记",
        "missing fields",
        422,
        "invalid_form",
        lambda c: c.desk(title=_DROP, category_id=_DROP),
    ),
    Bad(
        "来访登记",
        "coordinates out of range",
        422,
        "invalid_form",
        lambda c: c.desk(lon="514.2", lat="95"),
    ),
    Bad("来访登记", "NaN coordinates", 422, "invalid_form", lambda c: c.desk(lon="NaN", lat="nan")),
    Bad(
        "来访登记",
        "lon/lat swapped",
        422,
        "invalid_form",
        lambda c: c.desk(lon=str(c.lonlat[1]), lat=str(c.lonlat[0])),
    ),
    Bad(
        "来访登记",
        "a point outside the county",
        422,
        "invalid_form",
        lambda c: c.desk(lon="100.0", lat="30.0"),
    ),
    Bad("来访登记", "a 1 MB description", 422, "invalid_form", lambda c: c.desk(description=HUGE)),
    Bad(
        "来访登记",
        "a body over MAX_CONTENT_LENGTH",
        413,
        "payload_too_large",
        lambda c: c.desk(description="x" * (5 * MB)),
    ),
    Bad("来访登记", "a 1 MB title", 422, "invalid_form", lambda c: c.desk(title=HUGE)),
    Bad(
        "来访登记",
        "control characters",
        400,
        "control_characters",
        lambda c: c.desk(title="摘要\x00"),
    ),
    Bad(
        "来访登记",
        "invalid UTF-8",
        400,
        "invalid_encoding",
        lambda c: (
            c.client.post(
                "/cases/new",
                data=b"csrf_token=" + CSRF.encode() + b"&title=%FF%FE",
                content_type="application/x-www-form-urlencoded",
                headers={"Accept": "application/json"},
            )
            if not c.login("county_staff")
            else None
        ),
    ),
    Bad(
        "来访登记", "unknown category", 422, "invalid_form", lambda c: c.desk(category_id="999999")
    ),
    Bad(
        "来访登记",
        "an invalid ID number",
        422,
        "invalid_form",
        lambda c: c.desk(petitioner_id_number="410726199013401234"),
    ),
    # -- case actions: POST /cases/<id>/actions/<action> --------------------------------------
    Bad(
        "案件办理",
        "an invalid state transition (close a registered case)",
        409,
        "action_not_allowed",
        lambda c: c.act("close"),
    ),
    Bad("案件办理", "an unknown action", 404, "unknown_action", lambda c: c.act("frobnicate")),
    Bad(
        "案件办理",
        "a forged case id",
        404,
        "not_found",
        lambda c: c.act("accept", case_id=2_000_000_000),
    ),
    Bad("案件办理", "a stale version", 409, "case_stale", lambda c: c.act("accept", version="0")),
    Bad("案件办理", "a 1 MB note", 422, "note_too_long", lambda c: c.act("accept", note=HUGE)),
    Bad(
        "案件办理",
        "control characters in the note",
        400,
        "control_characters",
        lambda c: c.act("accept", note="意见\x1b[31m"),
    ),
    Bad(
        "案件办理",
        "a version that is not a number",
        409,
        "case_stale",
        lambda c: c.act("accept", version="1 OR 1=1"),
    ),
    # -- REST API: POST /api/v1/cases ---------------------------------------------------------
    Bad("REST 接口", "malformed JSON", 400, "invalid_json", lambda c: c.api(b'{"title": ')),
    Bad(
        "REST 接口",
        "wrong content type",
        415,
        "unsupported_media_type",
        lambda c: c.api(b"title=x", "application/x-www-form-urlencoded"),
    ),
    Bad("REST 接口", "invalid UTF-8", 400, "invalid_json", lambda c: c.api(b'{"title": "\xff"}')),
    Bad("REST 接口", "missing fields", 422, "validation_failed", lambda c: c.api({})),
    Bad(
        "REST 接口",
        "NaN coordinates (a NaN literal)",
        400,
        "invalid_json",
        lambda c: c.api(b'{"title": "x", "category": "other", "lon": NaN, "lat": 35}'),
    ),
    Bad(
        "REST 接口",
        "coordinates out of range",
        422,
        "validation_failed",
        lambda c: c.api_case(lon=200, lat=95),
    ),
    Bad(
        "REST 接口",
        "lon/lat swapped",
        422,
        "validation_failed",
        lambda c: c.api_case(lon=c.lonlat[1], lat=c.lonlat[0]),
    ),
    Bad(
        "REST 接口",
        "a point outside the county",
        422,
        "outside_county",
        lambda c: c.api_case(lon=100.0, lat=30.0),
    ),
    Bad(
        "REST 接口",
        "unknown category",
        422,
        "unknown_category",
        lambda c: c.api_case(category="no_such_thing"),
    ),
    Bad(
        "REST 接口", "a 1 MB body", 413, "payload_too_large", lambda c: c.api_case(description=HUGE)
    ),
    Bad(
        "REST 接口",
        "control characters",
        400,
        "control_characters",
        lambda c: c.api_case(title="x\u0000y"),
    ),
    Bad(
        "REST 接口",
        "no Idempotency-Key",
        400,
        "idempotency_key_required",
        lambda c: c.api(b"{}", key=""),
    ),
    Bad(
        "REST 接口",
        "SQL in a filter",
        400,
        "invalid_parameter",
        lambda c: c.get("/api/v1/cases?area=410726'%20OR%201=1--"),
    ),
    Bad(
        "REST 接口",
        "NaN in a bbox",
        400,
        "invalid_parameter",
        lambda c: c.get("/api/v1/cases?bbox=NaN,0,1,1"),
    ),
    Bad(
        "REST 接口",
        "a NUL in a filter",
        400,
        "control_characters",
        lambda c: c.get("/api/v1/cases?category=a%00b"),
    ),
    Bad(
        "REST 接口",
        "a forged case id",
        404,
        "not_found",
        lambda c: c.get("/api/v1/cases/99999999999999999999"),
    ),
    # -- Open311: POST /open311/v2/requests.json -----------------------------------------------
    Bad(
        "Open311",
        "missing location",
        400,
        "location_required",
        lambda c: c.open311(lat=_DROP, long=_DROP),
    ),
    Bad(
        "Open311",
        "coordinates out of range",
        400,
        "invalid_location",
        lambda c: c.open311(lat="95", long="200"),
    ),
    Bad(
        "Open311",
        "NaN coordinates",
        400,
        "invalid_location",
        lambda c: c.open311(lat="nan", long="nan"),
    ),
    Bad(
        "Open311",
        "a point outside the county",
        422,
        "outside_county",
        lambda c: c.open311(lat="30.0", long="100.0"),
    ),
    Bad(
        "Open311",
        "unknown service code",
        400,
        "unknown_service",
        lambda c: c.open311(service_code="nope"),
    ),
    Bad(
        "Open311", "a 1 MB description", 400, "invalid_field", lambda c: c.open311(description=HUGE)
    ),
    Bad(
        "Open311",
        "control characters",
        400,
        "control_characters",
        lambda c: c.open311(description="路灯\x00"),
    ),
    Bad(
        "Open311",
        "a forged request id",
        404,
        "not_found",
        lambda c: c.client.get(f"/open311/v2/requests/410726-0000-9999999.json?api_key={c.token}"),
    ),
    # -- ledger import: the 数据交换 page and its check job --------------------------------------
    Bad(
        "台账导入",
        "no file",
        400,
        "file_required",
        lambda c: (
            c.client.post(
                "/exchange/imports",
                data={"csrf_token": CSRF},
                headers={"Accept": "application/json"},
            )
            if not c.login("county_staff")
            else None
        ),
    ),
    Bad(
        "台账导入",
        "wrong file type (.exe)",
        400,
        "unsupported_file",
        lambda c: c.upload_ledger(b"MZ\x90\x00", "ledger.exe"),
    ),
    Bad(
        "台账导入",
        "a CSV without a header",
        422,
        "ledger_no_header",
        lambda c: c.ledger(CSV_NO_HEADER, "l.csv"),
    ),
    Bad(
        "台账导入",
        "a CSV missing required columns",
        422,
        "ledger_missing_columns",
        lambda c: c.ledger(CSV_MISSING, "l.csv"),
    ),
    Bad(
        "台账导入",
        "a CSV in no known encoding",
        422,
        "ledger_encoding",
        lambda c: c.ledger(CSV_GBK_BROKEN, "l.csv"),
    ),
    Bad(
        "台账导入",
        "a broken .xlsx",
        422,
        "ledger_broken_xlsx",
        lambda c: c.ledger(b"PK\x03\x04 not really a workbook", "l.xlsx"),
    ),
    Bad(
        "台账导入",
        "an .xlsx zip bomb",
        422,
        "archive_too_large",
        lambda c: c.ledger(xlsx_bomb(), "l.xlsx"),
    ),
    # -- boundary import: flask grid import ----------------------------------------------------
    Bad(
        "区划导入",
        "malformed GeoJSON",
        422,
        "file_unreadable",
        boundary_case("malformed"),
        county_files,
    ),
    Bad("区划导入", "an empty file", 422, "empty_file", boundary_case("empty"), county_files),
    Bad(
        "区划导入",
        "wrong CRS (metres declared as degrees)",
        422,
        "coordinates_impossible",
        boundary_case("wrong_crs"),
        county_files,
    ),
    Bad(
        "区划导入",
        "a zipped shapefile that expands hugely",
        422,
        "archive_too_large",
        boundary_case("bomb"),
        county_files,
    ),
    # Refused by default, naming the features; --repair and --allow-overlap accept them (tests/test_importer.py).
    Bad(
        "区划导入",
        "a self-intersecting polygon",
        422,
        "geometry_invalid",
        boundary_case("self_intersecting"),
        county_files,
    ),
    Bad(
        "区划导入",
        "overlapping siblings",
        422,
        "overlap",
        boundary_case("overlapping"),
        county_files,
    ),
    # -- filters of lists, statistics and maps ---------------------------------------------------
    Bad(
        "案件列表",
        "SQL in a filter",
        200,
        "",
        lambda c: c.get("/cases/?q=%27%3B%20DROP%20TABLE%20cases%3B--"),
    ),
    Bad(
        "统计",
        "SQL in the area",
        404,
        "not_found",
        lambda c: c.get("/api/v1/stats?area=410726%27%20OR%20%271%27=%271"),
    ),
    Bad(
        "统计",
        "an impossible date",
        400,
        "invalid_date",
        lambda c: c.get("/api/v1/stats?from=2026-13-45"),
    ),
    Bad(
        "统计",
        "an unknown category",
        400,
        "unknown_category",
        lambda c: c.get("/api/v1/stats?category=no_such_thing"),
    ),
    Bad(
        "统计",
        "a NUL in a filter",
        400,
        "control_characters",
        lambda c: c.get("/stats?category=%00"),
    ),
    Bad(
        "统计",
        "invalid UTF-8 in a filter",
        400,
        "invalid_encoding",
        lambda c: c.get("/stats?category=%FF"),
    ),
    Bad(
        "排查覆盖",
        "an impossible period",
        400,
        "invalid_period",
        lambda c: c.get("/field/coverage?period=2026-02-30"),
    ),
    Bad(
        "地图",
        "an impossible date",
        400,
        "bad_map_parameter",
        lambda c: c.get("/maps/frame?map=heat&from=2026-13-45"),
    ),
    Bad(
        "地图",
        "an unknown map kind",
        400,
        "bad_map_parameter",
        lambda c: c.get("/maps/frame?map=%3Cscript%3E"),
    ),
    Bad(
        "地图",
        "SQL in the area",
        400,
        "bad_map_parameter",
        lambda c: c.get("/maps/?area=410726%27%20OR%20%271%27=%271"),
    ),
    Bad("走访结果", "malformed JSON", 400, "invalid_json", lambda c: c.outcome(b"{"), make_stop),
    Bad(
        "走访结果",
        "an unknown outcome",
        400,
        "invalid_outcome",
        lambda c: c.outcome({"outcome": "burgled"}),
        make_stop,
    ),
    Bad(
        "走访结果",
        "a 1 MB note",
        400,
        "invalid_outcome",
        lambda c: c.outcome({"note": HUGE}),
        make_stop,
    ),
    Bad(
        "走访结果",
        "NaN coordinates",
        400,
        "invalid_outcome",
        lambda c: c.outcome({"lon": "NaN", "lat": 35}),
        make_stop,
    ),
    Bad(
        "走访结果",
        "a forged stop id",
        404,
        "not_found",
        lambda c: c.outcome({}, stop_id=2_000_000_000),
    ),
    Bad(
        "走访计划",
        "dates the wrong way round",
        400,
        "invalid_plan",
        lambda c: c.plan(date_from="2030-02-01", date_to="2030-01-01"),
    ),
    Bad(
        "走访计划",
        "an area code that does not exist",
        404,
        "not_found",
        lambda c: c.plan(area="990100"),
    ),
    Bad(
        "走访计划",
        "an area outside the planner's",
        404,
        "not_found",
        lambda c: c.plan(area="410726", role="township_leader"),
    ),
    Bad(
        "定位",
        "NaN coordinates",
        400,
        "invalid_coordinates",
        lambda c: c.get("/api/v1/locate?lon=nan&lat=35"),
    ),
]


@pytest.fixture
def ctx(
    client, session, login, make_case, demo_areas, tmp_path, photo_dir, token_for, app, monkeypatch
):
    monkeypatch.setitem(app.config, "PHOTO_MAX_BYTES", PHOTO_LIMIT)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4 * MB)  # 64 MB by default
    grid = demo_areas["grid_worker"]
    lonlat = tuple(
        session.execute(
            text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"),
            {"c": grid},
        ).one()
    )
    category = session.execute(text("SELECT id FROM categories WHERE code = 'other'")).scalar_one()
    c = Ctx(
        client, session, tmp_path, lonlat, category, make_case(grid), token_for("county_staff")[1]
    )
    users: dict[str, object] = {}

    def do_login(role: str):
        if role not in users:
            users[role] = login(role)
        else:
            login(role, user=users[role])
        c._user = users[role]

    c._login = do_login
    return c


def stored_counts(session, photo_dir: Path) -> dict:
    counts = dict(
        session.execute(
            text(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in STORED))
        ).all()
    )
    counts["photo files"] = (
        sum(1 for p in photo_dir.rglob("*") if p.is_file()) if photo_dir.exists() else 0
    )
    return counts


@pytest.mark.parametrize("bad", BAD, ids=[b.id for b in BAD])
def test_bad_input_is_answered_clearly_and_nothing_is_stored(ctx, session, photo_dir, bad: Bad):
    ctx.login("county_staff")  # accounts first: they are not what the row stores
    for role in ("grid_worker",):
        ctx.login(role)
    if bad.prepare is not None:
        bad.prepare(ctx)
    before = stored_counts(session, photo_dir)
    result = bad.send(ctx)
    status, code, message = result if isinstance(result, tuple) else answer(result)
    assert (status, code) == (bad.status, bad.code), message[:300]
    if status >= 400:
        assert CJK.search(message), f"no Chinese message: {message[:200]}"
        after = stored_counts(session, photo_dir)
        assert after == before, "a refused input left something behind"


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("self_intersecting", [f"{VILLAGE}021 蝴蝶", "自相交"]),
        ("overlapping", [f"{VILLAGE}031 甲", f"{VILLAGE}032 乙", "重叠"]),
    ],
)
def test_refused_boundary_files_name_their_features(ctx, kind, names):
    county_files(ctx)
    status, _code, message = boundary_case(kind)(ctx)
    assert status == 422 and all(n in message for n in names), message


def test_the_docs_list_every_row():
    """docs/security.md lists every row of the table with its answer."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text(
        encoding="utf-8"
    )
    missing = [
        b.id for b in BAD if f"| {b.where} | {b.what} | {b.status} | `{b.code}` |" not in doc
    ]
    assert not missing, "docs/security.md does not list: " + "; ".join(missing)


def docs_table() -> str:
    """The rows as the markdown table of docs/security.md (python -c to regenerate it)."""
    lines = ["| where | bad input | status | code |", "|---|---|---|---|"]
    lines += [f"| {b.where} | {b.what} | {b.status} | `{b.code}` |" for b in BAD]
    return "\n".join(lines)
