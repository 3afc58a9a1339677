"""The data exchange page: exports for county staff and planners, ledger import for county staff."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from sqlalchemy import Select, func, select

from webapp.api import params
from webapp.api.queries import categories
from webapp.auth import audit
from webapp.auth.identity import current_user, roles_required
from webapp.auth.models import User
from webapp.auth.permissions import EXCHANGE_ROLES, IMPORT_ROLES, may_import
from webapp.cases.vocab import STATUS_LABELS
from webapp.db import get_session
from webapp.errors import AppError, NotFound
from webapp.exchange import exports, jobs
from webapp.exchange.ledger import CRS_WORDS, ROW_STATUSES, normalise
from webapp.exchange.models import LedgerImport
from webapp.grid.models import AreaLevel

bp = Blueprint("exchange", __name__, url_prefix="/exchange")

STATE_LABELS = {
    "uploaded": "已上传",
    "checking": "正在检查",
    "checked": "检查完成，待确认",
    "importing": "正在导入",
    "done": "已导入",
    "failed": "失败",
}


@bp.get("/")
@roles_required(*EXCHANGE_ROLES)
def index():
    user = current_user()
    session = get_session()
    imports = []
    if may_import(user):
        imports = session.scalars(
            _county_imports(user).order_by(LedgerImport.id.desc()).limit(20)
        ).all()
    return render_template(
        "exchange/index.html",
        categories=categories(session),
        statuses=STATUS_LABELS,
        levels=list(AreaLevel),
        imports=imports,
        may_import=may_import(user),
        state_labels=STATE_LABELS,
    )


# -- exports ------------------------------------------------------------------------------


def _filter_from_form() -> params.CaseFilter:
    """The export form sends empty fields for 'any': drop them, then parse like the API."""
    args = {k: v for k, v in request.args.items() if v.strip()}
    return params.case_filter(args)


def _download(body, fmt: str, name: str) -> Response:
    response = Response(body, mimetype=exports.FORMATS[fmt].split(";")[0])
    response.headers["Content-Type"] = exports.FORMATS[fmt]
    response.headers["Content-Disposition"] = f"attachment; filename={name}.{fmt}"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/export/cases.<any(geojson, csv, gpkg):fmt>")
@roles_required(*EXCHANGE_ROLES)
def export_cases(fmt: str):
    user = current_user()
    session = get_session()
    flt = _filter_from_form()
    count = exports.count_cases(session, user, flt)
    audit.record(
        session,
        "export",
        user,
        detail={"what": "cases", "format": fmt, "rows": count, "filter": flt.describe()},
    )
    session.commit()
    records = exports.case_records(session, user, flt)
    if fmt == "gpkg":
        return _gpkg(lambda path: exports.cases_gpkg(records, path), "cases")
    stream = exports.cases_csv(records) if fmt == "csv" else exports.cases_geojson(records)
    return _download(stream_with_context(stream), fmt, "cases")


@bp.get("/export/areas.<any(geojson, csv, gpkg):fmt>")
@roles_required(*EXCHANGE_ROLES)
def export_areas(fmt: str):
    user = current_user()
    session = get_session()
    level = request.args.get("level") or None
    if level is not None and level not in {lv.value for lv in AreaLevel}:
        raise params.bad_param(
            "level", "可选值为 county、township、village、grid", "must be an area level"
        )
    records = exports.area_records(session, user.area_code, level)
    audit.record(
        session,
        "export",
        user,
        detail={"what": "areas", "format": fmt, "rows": len(records), "level": level},
    )
    session.commit()
    if fmt == "gpkg":
        return _gpkg(lambda path: exports.areas_gpkg(records, path), "areas")
    body = exports.areas_csv(records) if fmt == "csv" else exports.areas_geojson(records)
    return _download(body, fmt, "areas")


def _gpkg(write, name: str) -> Response:
    path = exports.temporary_path(".gpkg")
    try:
        write(path)
        data = path.read_bytes()
    finally:
        path.unlink(missing_ok=True)
    return _download(data, "gpkg", name)


# -- ledger import ----------------------------------------------------------------------------


def _county_imports(user) -> Select:
    """The ledger imports of ``user``'s county: those uploaded by an account of it.

    A ledger holds a county's petitioners, places and problems: the desk of another
    county (one database may serve several, docs/scaling.md) neither sees nor runs it.
    """
    return (
        select(LedgerImport)
        .join(User, User.id == LedgerImport.user_id)
        .where(func.left(User.area_code, 6) == user.county_code)
    )


def _import(import_id: int, lock: bool = False) -> LedgerImport:
    stmt = _county_imports(current_user()).where(LedgerImport.id == import_id)
    imp = get_session().scalars(stmt.with_for_update(of=LedgerImport) if lock else stmt).first()
    if imp is None:
        raise NotFound("导入记录")
    return imp


@bp.post("/imports")
@roles_required(*IMPORT_ROLES)
def upload():
    user = current_user()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise AppError(
            "file_required", "请选择要导入的台账文件（.xlsx 或 .csv）", 400, "choose a file"
        )
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise AppError(
            "unsupported_file",
            "只支持 .xlsx 或 .csv 文件（旧版 .xls 请另存为 .xlsx）",
            400,
            "xlsx or csv only",
        )
    crs = CRS_WORDS.get(normalise(request.form.get("crs", "wgs84")))
    if crs is None:
        raise AppError("unsupported_crs", "不支持的坐标系", 400, "unsupported CRS")
    data = upload.read()
    session = get_session()
    imp = LedgerImport(
        user_id=user.id,
        filename=Path(upload.filename).name[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        crs=crs,
        state="checking",
        progress_stage="排队中",
    )
    session.add(imp)
    session.flush()
    jobs.file_path(imp).write_bytes(data)
    audit.record(
        session,
        "ledger_upload",
        user,
        detail={"import_id": imp.id, "file": imp.filename, "bytes": len(data)},
    )
    session.commit()
    jobs.start(imp.id, "check")
    return redirect(url_for("exchange.show_import", import_id=imp.id))


@bp.get("/imports/<int(max=2147483647):import_id>")
@roles_required(*IMPORT_ROLES)
def show_import(import_id: int):
    imp = _import(import_id)
    return render_template(
        "exchange/import.html",
        imp=imp,
        state_labels=STATE_LABELS,
        row_statuses=ROW_STATUSES,
        summary=imp.summary or {},
    )


@bp.get("/imports/<int(max=2147483647):import_id>/progress")
@roles_required(*IMPORT_ROLES)
def import_progress(import_id: int):
    imp = _import(import_id)
    return jsonify(
        {
            "state": imp.state,
            "state_label": STATE_LABELS[imp.state],
            "stage": imp.progress_stage,
            "done": imp.progress_done,
            "total": imp.progress_total,
            "imported": imp.imported,
            "error": imp.error,
        }
    )


@bp.get("/imports/<int(max=2147483647):import_id>/report.csv")
@roles_required(*IMPORT_ROLES)
def import_report(import_id: int):
    imp = _import(import_id)
    path = jobs.report_path(imp)
    if not path.exists():
        raise NotFound("检查报告")
    return send_file(
        io.BytesIO(path.read_bytes()),
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"import-{imp.id}-report.csv",
    )


@bp.post("/imports/<int(max=2147483647):import_id>/run")
@roles_required(*IMPORT_ROLES)
def run_import(import_id: int):
    session = get_session()
    imp = _import(import_id, lock=True)
    if imp.state != "checked":
        raise AppError(
            "import_not_ready",
            f"该导入当前状态为“{STATE_LABELS[imp.state]}”，不能执行导入",
            409,
            "not ready to import",
        )
    imp.state = "importing"
    imp.progress_stage = "排队中"
    imp.progress_done = 0
    session.commit()
    jobs.start(import_id, "import")
    return redirect(url_for("exchange.show_import", import_id=import_id))
