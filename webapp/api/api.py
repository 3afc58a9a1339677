"""``/api/v1``: areas, categories, cases (list, one, create) and the OpenAPI document.

Machine clients send ``Authorization: Bearer <token>`` (``flask user token NAME``);
a signed-in browser may use the same endpoints with its session (and the CSRF
header for POST). Every answer is JSON or GeoJSON; every error is
``{"error": {"code", "message", "message_en"}}``.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from flask import Blueprint, jsonify, request, url_for

from webapp import geo
from webapp.api import documents, params, queries
from webapp.api.openapi import openapi_document
from webapp.auth.identity import current_user, public
from webapp.auth.permissions import may_register_cases, may_report_from_field, may_see_area
from webapp.cases.queries import NewCase
from webapp.cases.vocab import Channel
from webapp.db import get_session
from webapp.errors import AppError, NotFound
from webapp.grid.models import AreaLevel

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1"

GEOJSON = "application/geo+json"
MAX_BODY = 256 * 1024


def _json(body, status: int = 200, mimetype: str = "application/json", headers: dict | None = None):
    response = jsonify(body)
    response.status_code = status
    response.mimetype = mimetype
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def _wants_geojson() -> bool:
    fmt = request.args.get("format")
    if fmt is not None and fmt not in ("json", "geojson"):
        raise params.bad_param("format", "可选值为 json、geojson", "must be json or geojson")
    if fmt is not None:
        return fmt == "geojson"
    best = request.accept_mimetypes.best_match(["application/json", GEOJSON])
    return (
        best == GEOJSON
        and request.accept_mimetypes[GEOJSON] > request.accept_mimetypes["application/json"]
    )


@lru_cache(maxsize=1)
def documented_query_params() -> dict[tuple[str, str], frozenset[str]]:
    """(path template, method) -> the query parameters the OpenAPI document allows."""
    out = {}
    for path, item in openapi_document()["paths"].items():
        for method, op in item.items():
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            out[(path, method.upper())] = frozenset(names)
    return out


@bp.before_app_request
def refuse_unknown_parameters():
    """A query parameter the document does not name is a client's typo: say so (400)."""
    if not request.args:  # nothing to refuse (most requests: no rule to look up)
        return
    rule = request.url_rule
    if rule is None or not rule.rule.startswith(PREFIX + "/"):
        return
    template = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX) :])
    allowed = documented_query_params().get((template, request.method))
    if allowed is None:  # an endpoint of another feature, described in its own place
        return
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise AppError(
            "unknown_parameter",
            "不支持的查询参数：" + "、".join(unknown)[:200],
            400,
            "unknown query parameter: " + ", ".join(unknown)[:200],
            {"parameters": unknown[:20]},
        )


@bp.get("/openapi.json")
@public
def openapi():
    return _json(openapi_document(request.host_url.rstrip("/")))


@bp.get("/categories")
def categories():
    items = [
        {"code": c.code, "name": c.name, "description": c.description}
        for c in queries.categories(get_session())
    ]
    return _json({"items": items})


def _area_level() -> AreaLevel | None:
    text = request.args.get("level")
    if text is None:
        return None
    try:
        return AreaLevel(text)
    except ValueError:
        raise params.bad_param(
            "level",
            "可选值为 county、township、village、grid",
            "must be county, township, village or grid",
        ) from None


def _geometry_flag() -> bool:
    text = request.args.get("geometry", "true")
    if text not in ("true", "false"):
        raise params.bad_param("geometry", "可选值为 true、false", "must be true or false")
    return text == "true"


@bp.get("/areas")
def areas():
    user = current_user()
    parent = request.args.get("parent")
    if parent is not None and not params.AREA_CODE.fullmatch(parent):
        raise params.bad_param(
            "parent", "应为 6 至 20 位数字的区划代码", "must be an area code of 6 to 20 digits"
        )
    if parent is not None and not may_see_area(user, parent):
        raise NotFound("区划")
    features = queries.areas_geojson(
        get_session(),
        user.area_code,
        level=_area_level(),
        parent=parent,
        tolerance_m=params.parse_float("tolerance", request.args.get("tolerance"), 0, 10000) or 0.0,
        with_geometry=_geometry_flag(),
    )
    return _json({"type": "FeatureCollection", "features": features}, mimetype=GEOJSON)


@bp.get("/areas/<code>")
def area(code: str):
    user = current_user()
    if not params.AREA_CODE.fullmatch(code) or not may_see_area(user, code):
        raise NotFound("区划")
    tolerance = params.parse_float("tolerance", request.args.get("tolerance"), 0, 10000) or 0.0
    features = queries.areas_geojson(
        get_session(),
        user.area_code,
        code=code,
        tolerance_m=tolerance,
        with_geometry=_geometry_flag(),
    )
    if not features:
        raise NotFound("区划")
    return _json(features[0], mimetype=GEOJSON)


@bp.get("/cases")
def cases():
    user = current_user()
    flt = params.case_filter(request.args)
    limit = params.parse_int(
        "limit", request.args.get("limit"), params.DEFAULT_LIMIT, 1, params.MAX_LIMIT
    )
    after = params.decode_cursor(request.args.get("cursor"))
    geojson = _wants_geojson()
    rows, more = queries.case_page(get_session(), user, flt, limit, after)
    next_cursor = (
        params.encode_cursor(rows[-1].Case.reported_at, rows[-1].Case.id) if more else None
    )
    headers = {}
    if next_cursor:
        args = request.args.to_dict()
        args["cursor"] = next_cursor
        headers["Link"] = f'<{url_for("api.cases", _external=True, **args)}>; rel="next"'
    if geojson:
        body = {
            "type": "FeatureCollection",
            "features": [documents.case_feature(r, user) for r in rows],
            "limit": limit,
            "next_cursor": next_cursor,
        }
        return _json(body, mimetype=GEOJSON, headers=headers)
    body = {
        "items": [documents.case_item(r, user) for r in rows],
        "limit": limit,
        "next_cursor": next_cursor,
    }
    return _json(body, headers=headers)


@bp.get("/cases/<case_ref>")
def case(case_ref: str):
    user = current_user()
    session = get_session()
    row = queries.case_in_scope(session, user, case_ref)
    if row is None:
        raise NotFound("案件")
    return _json(documents.case_detail(row, queries.case_events(session, row.Case.id), user))


# Field roles file what they find on their rounds; desk roles register every channel.
FIELD_CHANNELS = {Channel.GRID_SWEEP}


def _idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key")
    if key is None or not params.IDEMPOTENCY_KEY.fullmatch(key):
        raise AppError(
            "idempotency_key_required",
            "请在 Idempotency-Key 请求头中提供 1 至 255 个可见 ASCII 字符的唯一键，以免重复提交",
            400,
            "an Idempotency-Key header of 1 to 255 visible ASCII characters is required",
        )
    return key


@bp.post("/cases")
def create_case():
    user = current_user()
    desk = may_register_cases(user)
    if not (desk or may_report_from_field(user)):
        raise AppError(
            "forbidden_role", "您的角色无权登记案件", 403, "this role may not create cases"
        )
    if request.mimetype != "application/json":
        raise AppError(
            "unsupported_media_type", "请以 application/json 提交", 415, "send application/json"
        )
    if (request.content_length or 0) > MAX_BODY:
        raise AppError("payload_too_large", "提交的内容过大", 413, "payload too large")
    key = _idempotency_key()
    data = params.load_json_object(request.get_data(cache=False)[: MAX_BODY + 1])
    session = get_session()
    replay = queries.claim_key(session, user.id, key, params.request_hash(request.path, data))
    if replay is not None:
        session.rollback()
        return _json(
            replay.body,
            replay.status,
            headers=_created_headers(replay.body) | {"Idempotent-Replayed": "true"},
        )
    body = params.case_body(data, Channel.VISIT if desk else Channel.GRID_SWEEP)
    if not desk and body.channel not in FIELD_CHANNELS:
        raise AppError(
            "channel_not_allowed",
            "您只能上报网格员排查发现的事项（grid_sweep）",
            403,
            "field roles may only file grid_sweep cases",
        )
    category = queries.category_by_code(session, body.category)
    if category is None:
        raise AppError(
            "unknown_category",
            f"未知的问题类别 {body.category}",
            422,
            "unknown category",
            {"category": "见 /api/v1/categories (see /api/v1/categories)"},
        )
    lon, lat = _to_wgs84(body.lon, body.lat, body.crs)
    new = NewCase(
        title=body.title,
        category_id=category.id,
        channel=body.channel,
        lon=lon,
        lat=lat,
        description=body.description,
        case_class=body.case_class,
        people_count=body.people_count,
        reported_at=body.reported_at,
        petitioner_name=body.petitioner_name,
        petitioner_phone=body.petitioner_phone,
        petitioner_id_number=body.petitioner_id_number,
    )
    case_id = queries.register_case(session, user, new, "通过接口登记", {"source": "api"})
    session.expire_all()
    row = queries.case_in_scope(session, user, str(case_id))
    answer = documents.case_detail(row, queries.case_events(session, case_id), user)
    queries.store_answer(session, user.id, key, 201, answer)
    session.commit()
    return _json(answer, 201, headers=_created_headers(answer))


def _created_headers(body: dict) -> dict:
    if "id" not in body:
        return {}
    return {"Location": url_for("api.case", case_ref=str(body["id"]), _external=True)}


def _to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    if crs == "EPSG:4326":
        return lon, lat
    out = geo.to_wgs84_coords(np.array([[lon, lat]]), geo.parse_crs(crs))
    return float(out[0, 0]), float(out[0, 1])
