"""Field JSON API (/api/v1/field): what the phone's report page and its queue talk to.

Session cookie + ``X-CSRF-Token``, or a bearer token. Every write is idempotent by
an id the phone made, and committed before it is acknowledged.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

from flask import Blueprint, g, jsonify, request, url_for

from webapp.auth.identity import csrf_token, current_user
from webapp.auth.permissions import may_report_from_field
from webapp.db import get_session, single_statement_writes
from webapp.errors import AppError, NotFound
from webapp.field import queries
from webapp.field.models import CasePhoto
from webapp.field.photos import read_limited, store_photo
from webapp.field.schemas import parse_report, parse_sweep
from webapp.field.views import current_period, photo_limits, photo_root

bp = Blueprint("field_api", __name__, url_prefix="/api/v1/field")


def _reporter():
    user = current_user()
    if not may_report_from_field(user):
        raise AppError(
            "forbidden_role", "您的角色无权现场上报", 403, "not allowed to report from the field"
        )
    return user


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/session")
def session_info():
    """Who is signed in, and this session's CSRF token (a cached page's token may be stale).

    A bearer-token client needs no CSRF token and gets none (``null``): asking must not
    start a cookie session for it.
    """
    user = current_user()
    token = None if g.get("auth_method") == "token" else csrf_token()
    return _no_store(
        jsonify(
            {
                "user": {
                    "username": user.username,
                    "display_name": user.display_name,
                    "role": user.role,
                    "area_code": user.area_code,
                },
                "csrf_token": token,
            }
        )
    )


@bp.get("/grids")
def grids():
    """GeoJSON outlines: the user's grids, their neighbours, and grids near ``lon``/``lat``."""
    user = _reporter()
    lon, lat = _optional_point()
    return jsonify(queries.grid_outlines(get_session(), user, lon, lat))


def _optional_point() -> tuple[float | None, float | None]:
    if request.args.get("lon") is None and request.args.get("lat") is None:
        return None, None
    try:
        lon, lat = float(request.args["lon"]), float(request.args["lat"])
    except (KeyError, ValueError):
        lon = lat = math.nan
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lon) > 180 or abs(lat) > 90:
        raise AppError(
            "invalid_coordinates", "经纬度无效", 400, "lon and lat must be WGS84 decimal degrees"
        )
    return lon, lat


@bp.post("/reports")
@single_statement_writes  # its one write (case, event, audit entry) is one statement
def create_report():
    """File a report; the same ``client_id`` again answers the same case (200 instead of 201)."""
    user = _reporter()
    session = get_session()
    now = datetime.now(UTC)
    report = parse_report(request.get_json(silent=True), now)
    filed = queries.file_report(session, user, report, now)
    session.commit()  # acknowledged only once stored (a no-op in autocommit)
    body = filed.to_dict()
    body["photos_url"] = url_for("field_api.upload_photo", case_id=filed.case_id)
    return jsonify({"report": body}), 201 if filed.created else 200


@bp.post("/cases/<int:case_id>/photos")
def upload_photo(case_id: int):
    """Add one photo to a case in scope; the same ``client_photo_id`` again is the same photo."""
    user = _reporter()
    session = get_session()
    # The case first: a case out of scope answers 404 whatever else the request says.
    case = queries.case_for_photos(session, user, case_id)
    try:
        client_photo_id = uuid.UUID(request.form.get("client_photo_id", "")[:64])
    except ValueError:
        raise AppError(
            "invalid_client_photo_id", "缺少或无效的照片编号 client_photo_id", 400
        ) from None
    existing = queries.check_photo_resend(
        queries.photo_by_client_id(session, client_photo_id), case.id
    )
    if existing is not None:
        return jsonify({"photo": _photo_dict(existing, created=False)}), 200
    upload = request.files.get("photo")
    if upload is None:
        raise AppError(
            "missing_photo", "没有收到照片文件", 400, "multipart field 'photo' is missing"
        )
    limits = photo_limits()
    stored = store_photo(photo_root(), read_limited(upload.stream, limits), limits)
    photo, created = queries.add_photo(session, user, case.id, client_photo_id, stored)
    session.commit()
    return jsonify({"photo": _photo_dict(photo, created)}), 201 if created else 200


@bp.get("/cases/<int:case_id>/photos")
def list_photos(case_id: int):
    session = get_session()
    user = current_user()
    queries.case_in_scope(session, user, case_id)
    return jsonify(
        {"photos": [_photo_dict(p) for p in queries.case_photos(session, user, case_id)]}
    )


def _photo_dict(photo: CasePhoto, created: bool | None = None) -> dict:
    out = {
        "id": photo.id,
        "case_id": photo.case_id,
        "client_photo_id": str(photo.client_photo_id),
        "width": photo.width,
        "height": photo.height,
        "size_bytes": photo.size_bytes,
        "sha256": photo.sha256,
        "url": url_for("field.photo", photo_id=photo.id),
        "thumb_url": url_for("field.photo_thumb", photo_id=photo.id),
    }
    if created is not None:
        out["created"] = created
    return out


@bp.post("/sweeps")
def file_sweep():
    """File (or amend) this period's sweep of a grid.

    Body: ``{grid_code?, case_ids, zero_report, note}``.
    """
    user = current_user()
    session = get_session()
    data = parse_sweep(request.get_json(silent=True))
    grids = queries.sweep_grids(session, user)
    if not grids:
        raise AppError("forbidden_role", "您的角色无需填报排查", 403, "role does not file sweeps")
    grid = next((g for g in grids if g.code == (data.grid_code or grids[0].code)), None)
    if grid is None:
        raise NotFound("网格")
    filed = queries.file_sweep(session, user, grid, current_period(grid.county_code), data)
    session.commit()
    body = filed.to_dict(queries.sweep_case_ids(session, filed.sweep.id))
    return jsonify({"sweep": body}), 201 if filed.created else 200
