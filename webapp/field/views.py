"""Field pages: the phone report page and its service worker, photos, sweeps and coverage."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from webapp.auth.identity import current_user, public, roles_required
from webapp.auth.permissions import (
    COVERAGE_ROLES,
    may_report_from_field,
    may_see_area,
    may_see_sweep_coverage,
)
from webapp.cases.queries import categories
from webapp.cases.vocab import EARLIEST_DAY
from webapp.db import get_session
from webapp.errors import AppError, NotFound
from webapp.field import queries
from webapp.field.periods import Period, period_of, recent_periods, sweep_period_kind
from webapp.field.photos import PhotoLimits, photo_path
from webapp.field.schemas import parse_sweep
from webapp.grid.models import AreaLevel
from webapp.grid.queries import get_area

bp = Blueprint("field", __name__, url_prefix="/field")

STATIC = Path(__file__).resolve().parent.parent / "static" / "field"
HISTORY_PERIODS = 6


def init_app(app: Flask) -> None:
    """Field settings (from ``GRIDCASE_*`` where given) and the ``case_photos`` template global."""
    env = os.environ
    app.config.setdefault(
        "PHOTO_DIR", env.get("GRIDCASE_PHOTO_DIR") or str(Path(app.config["VAR_DIR"]) / "photos")
    )
    app.config.setdefault(
        "PHOTO_MAX_BYTES", int(env.get("GRIDCASE_PHOTO_MAX_MB", "10")) * 1024 * 1024
    )
    app.config.setdefault("PHOTO_MAX_PIXELS", 60_000_000)
    app.config.setdefault("PHOTO_STORED_SIDE", 2560)
    # 日排查日报告 or monthly: per county (``SWEEP_PERIODS = {"410726": "daily"}``),
    # else the default.
    app.config.setdefault("SWEEP_PERIOD", env.get("GRIDCASE_SWEEP_PERIOD", "monthly"))
    app.config.setdefault("SWEEP_PERIODS", {})
    app.jinja_env.globals["case_photos"] = case_photos_of


def photo_limits() -> PhotoLimits:
    cfg = current_app.config
    return PhotoLimits(
        max_bytes=cfg["PHOTO_MAX_BYTES"],
        max_pixels=cfg["PHOTO_MAX_PIXELS"],
        stored_side=cfg["PHOTO_STORED_SIDE"],
    )


def photo_root() -> Path:
    return Path(current_app.config["PHOTO_DIR"])


def case_photos_of(case) -> list:
    """Template global: the photos of ``case`` (a Case or its id) the signed-in user may see."""
    user = current_user()
    if user is None or case is None:
        return []
    return queries.case_photos(get_session(), user, case if isinstance(case, int) else case.id)


def current_period(county_code: str, now: datetime | None = None) -> Period:
    kind = sweep_period_kind(current_app.config, county_code)
    return period_of(kind, now or datetime.now(UTC))


# -- the report page ---------------------------------------------------------------


@bp.get("/report")
def report():
    user = current_user()
    if not may_report_from_field(user):
        raise AppError(
            "forbidden_role", "您的角色无权现场上报", 403, "not allowed to report from the field"
        )
    session = get_session()
    own = get_area(session, user.area_code)
    return render_template(
        "field/report.html",
        categories=categories(session),
        own_area=own,
        max_photo_bytes=current_app.config["PHOTO_MAX_BYTES"],
    )


@bp.get("/sw.js")
@public
def service_worker():
    """The service worker, from /field/ so that its scope covers the report page."""
    response = Response((STATIC / "sw.js").read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"  # the browser checks for a new version each time
    response.headers["Service-Worker-Allowed"] = "/field/"
    return response


# -- photos: only through the case scope ------------------------------------------------


def _send_photo(photo_id: int, thumb: bool):
    photo = queries.photo_in_scope(get_session(), current_user(), photo_id)
    path = photo_path(photo_root(), photo.sha256, thumb=thumb)
    if not path.is_file():
        current_app.logger.warning("photo %s: file %s is missing", photo.id, path)
        raise NotFound("照片文件")
    response = send_file(
        path, mimetype="image/jpeg", etag=photo.sha256 + ("t" if thumb else ""), conditional=True
    )
    # Personal data: no shared caches; a scope change takes effect within the hour.
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Content-Disposition"] = (
        f'inline; filename="case-{photo.case_id}-{photo.id}.jpg"'
    )
    return response


@bp.get("/photos/<int:photo_id>")
def photo(photo_id: int):
    return _send_photo(photo_id, thumb=False)


@bp.get("/photos/<int:photo_id>/thumb")
def photo_thumb(photo_id: int):
    return _send_photo(photo_id, thumb=True)


# -- sweeps --------------------------------------------------------------------------


@bp.route("/sweeps", methods=["GET", "POST"])
def sweeps():
    user = current_user()
    session = get_session()
    grids = queries.sweep_grids(session, user)
    if not grids:
        if may_see_sweep_coverage(user):
            return redirect(url_for("field.coverage"))
        raise AppError("forbidden_role", "您的角色无需填报排查", 403, "role does not file sweeps")
    wanted = request.values.get("grid_code") or grids[0].code
    grid = next((g for g in grids if g.code == wanted), None)
    if grid is None:
        raise NotFound("网格")
    period = current_period(grid.county_code)
    error = None
    if request.method == "POST":
        form = {
            "grid_code": grid.code,
            "case_ids": request.form.getlist("case_id"),
            "zero_report": request.form.get("zero_report") == "1",
            "note": request.form.get("note", ""),
        }
        try:
            filed = queries.file_sweep(session, user, grid, period, parse_sweep(form))
        except AppError as exc:
            session.rollback()
            error = exc
        else:
            session.commit()
            if filed.created:
                flash(f"{grid.name} {period.label}排查已报送", "success")
            elif filed.changed:
                flash(
                    f"{grid.name} {period.label}排查已更新（第 {filed.sweep.revision} 版）",
                    "success",
                )
            else:
                flash(f"{grid.name} {period.label}排查已报送过，内容未变", "info")
            return redirect(url_for("field.sweeps", grid_code=grid.code))
    sweep = queries.get_sweep(session, grid.id, period)
    listed = queries.sweep_case_ids(session, sweep.id) if sweep else set()
    if error is not None:
        listed = {
            int(i)
            for i in request.form.getlist("case_id")
            if i.isascii() and i.isdigit() and len(i) <= 18
        }
    return render_template(
        "field/sweeps.html",
        grids=grids,
        grid=grid,
        period=period,
        sweep=sweep,
        listed=listed,
        candidates=queries.sweep_candidates(session, user, grid, period),
        history=queries.grid_history(session, grid, recent_periods(period, HISTORY_PERIODS)),
        error=error,
        form=request.form if error is not None else None,
        may_see_coverage=may_see_sweep_coverage(user),
    ), (error.status if error is not None else 200)


@bp.get("/coverage")
@roles_required(*COVERAGE_ROLES)
def coverage():
    user = current_user()
    session = get_session()
    code = request.args.get("area") or user.area_code
    area = get_area(session, code) if may_see_area(user, code) else None
    if area is None or area.level == AreaLevel.GRID.value:
        raise NotFound("区划")
    period = _period_arg(current_period(area.county_code))
    rows = queries.coverage(session, area, period)
    history = recent_periods(period, HISTORY_PERIODS)
    return render_template(
        "field/coverage.html",
        area=area,
        level=AreaLevel(area.level),
        period=period,
        current=current_period(area.county_code),
        rows=rows,
        missing=[r for r in rows if not r.reported],
        history=history,
        history_rows=queries.coverage_history(session, area, history),
    )


def _period_arg(current: Period) -> Period:
    """The period asked for (``?period=YYYY-MM-DD``, not in the future), else the current one."""
    raw = request.args.get("period")
    if not raw:
        return current
    try:
        asked = date.fromisoformat(raw)
    except ValueError:
        raise AppError("invalid_period", "期次格式无效（应为 YYYY-MM-DD）", 400) from None
    if asked < EARLIEST_DAY:  # no sweep is older (nor any case)
        # The history before it goes back further still: year 1 would fail as a 500.
        raise AppError("invalid_period", "期次不能早于 1990 年", 400)
    start = asked.replace(day=1) if current.kind.value == "monthly" else asked
    if start > current.start:
        raise AppError("invalid_period", "不能查看未来的期次", 400)
    return Period(current.kind, start)
