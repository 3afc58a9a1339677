"""Open311 GeoReport v2 under ``/open311/v2`` (https://wiki.open311.org/GeoReport_v2).

Categories are the services. Every endpoint answers ``.json`` or ``.xml``. The
service list, its definitions and discovery are public. As the specification asks,
an ``api_key`` (an API token, ``flask user token NAME``) is needed to post; a client
without one can still follow the requests filed through Open311, by number
(``requests/{id}``) or token (``tokens/{token}``), in a minimal public view: status,
status notes, service, dates; no description, place, media or personal data.
Service requests hold petition data, so listing them, and the full fields of one,
need an ``api_key`` and show only the cases the key's user may see. The
petitioner's name and phone are stored but never answered (the spec has no field
for them). Authentication is by ``api_key`` (or a bearer token) only, never by a
browser session, which is why filing is exempt from the CSRF check.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta

from flask import Blueprint, current_app, g, request, url_for
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from webapp.api import params
from webapp.api.params import CaseFilter
from webapp.api.queries import (
    categories,
    category_by_code,
    claim_key,
    register_case,
    store_answer,
)
from webapp.auth.accounts import user_for_token
from webapp.auth.identity import csrf_exempt, public
from webapp.auth.permissions import may_register_cases, may_report_from_field
from webapp.cases.models import Category
from webapp.cases.queries import NewCase
from webapp.cases.vocab import (
    CHANNEL_LABELS,
    CLASS_LABELS,
    FINAL_STATUSES,
    CaseClass,
    Channel,
    Opinion,
    Satisfaction,
    Status,
)
from webapp.db import get_session
from webapp.errors import HTTP_MESSAGES, AppError
from webapp.grid.queries import get_area
from webapp.open311 import queries
from webapp.open311.formats import render, render_errors

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

FMT = "<any(json, xml):fmt>"
SPEC = "http://wiki.open311.org/GeoReport_v2"
MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
CLOSED = {s.value for s in FINAL_STATUSES}
OPEN = {s.value for s in Status} - CLOSED
NUMBER = re.compile(r"^[0-9A-Za-z-]{1,32}$")


# -- errors in the spec's shape -------------------------------------------------------


def _fmt() -> str:
    fmt = (request.view_args or {}).get("fmt")
    return fmt if fmt in ("json", "xml") else "json"


def _error_response(status: int, code: str, message: str, message_en: str):
    return render_errors(
        _fmt(),
        status,
        [{"code": status, "description": f"{message} ({message_en})", "error_code": code}],
    )


@bp.errorhandler(AppError)
def app_error(err: AppError):
    return _error_response(err.status, err.code, err.message, err.message_en)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    code, zh, en = HTTP_MESSAGES.get(exc.code or 500, ("http_error", exc.name, exc.name))
    return _error_response(exc.code or 500, code, zh, en)


def _bad(code: str, zh: str, en: str, status: int = 400) -> AppError:
    return AppError(code, zh, status, en)


# -- who is asking ----------------------------------------------------------------------


def _key_user_or_none():
    """The user of the request's ``api_key`` (or bearer token), None without one.

    A browser session does not count; a key that is given but wrong is refused (403).
    """
    if g.get("auth_method") == "token":
        return g.user
    key = (request.values.get("api_key") or "").strip()
    if not key:
        return None
    user = user_for_token(get_session(), key)
    if user is None:
        raise _bad("invalid_api_key", "api_key 无效或已吊销", "invalid or revoked api_key", 403)
    return user


def _key_user():
    """The user of the request's ``api_key`` (or bearer token); 401 without one."""
    user = _key_user_or_none()
    if user is None:
        raise _bad("api_key_required", "请提供 api_key（访问令牌）", "an api_key is required", 401)
    return user


def _check_jurisdiction() -> None:
    jurisdiction = request.values.get("jurisdiction_id")
    if jurisdiction and jurisdiction != current_app.config["COUNTY_CODE"]:
        raise _bad(
            "unknown_jurisdiction",
            f"本服务只受理辖区 {current_app.config['COUNTY_CODE']}",
            "unknown jurisdiction_id",
            404,
        )


# -- discovery and services ------------------------------------------------------------------


@bp.get(f"/discovery.{FMT}")
@public
def discovery(fmt: str):
    changed = queries.changeset(get_session())
    data = {
        "changeset": changed.isoformat(),
        "contact": "县信访局 (county petition bureau)",
        "key_service": "向系统管理员申请访问令牌：flask --app webapp user token 用户名",
        "endpoints": [
            {
                "specification": SPEC,
                "url": url_for("open311.discovery", fmt=fmt, _external=True).rsplit("/", 1)[0],
                "changeset": changed.isoformat(),
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return render(fmt, data, "discovery")


def _service(c: Category) -> dict:
    return {
        "service_code": c.code,
        "service_name": c.name,
        "description": c.description,
        "metadata": True,
        "type": "realtime",
        "keywords": c.name.replace("/", ","),
        "group": "信访事项",
    }


@bp.get(f"/services.{FMT}")
@public
def services(fmt: str):
    _check_jurisdiction()
    return render(fmt, [_service(c) for c in categories(get_session())], "services", "service")


def _values(labels: dict) -> list[dict]:
    return [{"key": k.value, "name": v} for k, v in labels.items()]


@bp.get(f"/services/<code>.{FMT}")
@public
def service_definition(code: str, fmt: str):
    _check_jurisdiction()
    category = (
        category_by_code(get_session(), code) if params.CATEGORY_CODE.fullmatch(code) else None
    )
    if category is None:
        raise _bad("unknown_service", f"服务 {code[:40]} 不存在", "unknown service_code", 404)
    attributes = [
        {
            "variable": True,
            "code": "title",
            "datatype": "string",
            "required": False,
            "datatype_description": "不超过 200 字",
            "order": 1,
            "description": "事项标题（不填则取描述的前 40 字）",
            "values": [],
        },
        {
            "variable": True,
            "code": "channel",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "默认 hotline（网格员等只能用 grid_sweep）",
            "order": 2,
            "description": "信访渠道",
            "values": _values(CHANNEL_LABELS),
        },
        {
            "variable": True,
            "code": "case_class",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": "默认 request",
            "order": 3,
            "description": "事项类型（《信访工作条例》第29-31条）",
            "values": _values(CLASS_LABELS),
        },
        {
            "variable": True,
            "code": "people_count",
            "datatype": "number",
            "required": False,
            "datatype_description": "1 至 10000 的整数，默认 1",
            "order": 4,
            "description": "人数（5 人及以上为集体访）",
            "values": [],
        },
        {
            "variable": True,
            "code": "id_number",
            "datatype": "string",
            "required": False,
            "datatype_description": "18 位居民身份证号",
            "order": 5,
            "description": "信访人身份证号",
            "values": [],
        },
    ]
    return render(
        fmt, {"service_code": category.code, "attributes": attributes}, "service_definition"
    )


# -- filing a request ---------------------------------------------------------------------------


def _attribute(name: str) -> str | None:
    value = request.form.get(f"attribute[{name}]")
    return value.strip() if value is not None else None


def _coordinate(name: str, lo: float, hi: float) -> float | None:
    text = request.form.get(name)
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise _bad("invalid_location", f"{name} 应为数字", f"{name} must be a number") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise _bad("invalid_location", f"{name} 超出范围", f"{name} out of range")
    return value


def _text(name: str, max_len: int) -> str | None:
    value = request.form.get(name)
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > max_len or "\x00" in value:
        raise _bad("invalid_field", f"{name} 过长或含非法字符", f"{name} too long or invalid")
    return value


def _choice(name: str, enum_type, default):
    value = _attribute(name)
    if not value:
        return default
    try:
        return enum_type(value)
    except ValueError:
        raise _bad(
            "invalid_attribute", f"attribute[{name}] 的取值无效", f"invalid attribute[{name}]"
        ) from None


@bp.post(f"/requests.{FMT}")
@public
@csrf_exempt
def create_request(fmt: str):
    user = _key_user()
    _check_jurisdiction()
    desk = may_register_cases(user)
    if not (desk or may_report_from_field(user)):
        raise _bad("forbidden_role", "您的角色无权登记案件", "this role may not file requests", 403)
    session = get_session()
    key = _resend_key()
    if key is not None:
        fields = sorted(request.form.items(multi=True))
        replay = claim_key(session, user.id, key, params.request_hash(request.path, fields))
        if replay is not None:
            session.rollback()
            response = render(
                fmt, replay.body["requests"], "service_requests", "request", replay.status
            )
            response.headers["Idempotent-Replayed"] = "true"
            return response
    code = request.form.get("service_code", "")
    category = category_by_code(session, code) if params.CATEGORY_CODE.fullmatch(code) else None
    if category is None:
        raise _bad("unknown_service", "service_code 无效", "unknown service_code", 400)
    lat = _coordinate("lat", -90, 90)
    lon = _coordinate("long", -180, 180)
    approx = False
    if (lat is None) != (lon is None):
        raise _bad("invalid_location", "lat 与 long 须同时提供", "lat and long go together")
    if lat is None:
        address_id = _text("address_id", 20)
        area = (
            get_area(session, address_id)
            if address_id and params.AREA_CODE.fullmatch(address_id)
            else None
        )
        if area is None:
            raise _bad(
                "location_required",
                "请提供 lat/long，或以 address_id 给出村(社区)或网格代码",
                "give lat/long, or an address_id that is a village or grid code",
            )
        point = session.execute(
            text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE id = :i"),
            {"i": area.id},
        ).one()
        lon, lat, approx = point[0], point[1], True
    description = _text("description", 5000) or ""
    title = _attribute("title") or description[:40] or category.name
    if len(title) > 200:
        raise _bad("invalid_attribute", "标题不能超过 200 字", "title too long")
    channel = _choice("channel", Channel, Channel.HOTLINE if desk else Channel.GRID_SWEEP)
    if not desk and channel is not Channel.GRID_SWEEP:
        raise _bad(
            "channel_not_allowed",
            "您只能上报网格员排查发现的事项（grid_sweep）",
            "field roles file grid_sweep only",
            403,
        )
    people = _attribute("people_count") or "1"
    if not re.fullmatch(r"[0-9]{1,5}", people) or not 1 <= int(people) <= 10000:
        raise _bad(
            "invalid_attribute", "人数应为 1 至 10000 的整数", "people_count must be 1 to 10000"
        )
    name = "".join(p for p in (_text("last_name", 50), _text("first_name", 50)) if p) or None
    token = uuid.uuid4()
    new = NewCase(
        title=title,
        category_id=category.id,
        channel=channel,
        lon=lon,
        lat=lat,
        description=description,
        case_class=_choice("case_class", CaseClass, CaseClass.REQUEST),
        people_count=int(people),
        location_approx=approx,
        client_id=token,
        petitioner_name=name,
        petitioner_phone=_text("phone", 32),
        petitioner_id_number=_attribute("id_number") or None,
    )
    if new.petitioner_id_number and len(new.petitioner_id_number) > 32:
        raise _bad("invalid_attribute", "身份证号过长", "id_number too long")
    extra = {
        k: _text(k, 500)
        for k in ("email", "device_id", "account_id", "media_url", "address_string")
    }
    case_id = register_case(
        session,
        user,
        new,
        "通过 Open311 接口登记",
        {"source": "open311", **{k: v for k, v in extra.items() if v}},
    )
    number = session.execute(
        text("SELECT number FROM cases WHERE id = :i"), {"i": case_id}
    ).scalar_one()
    answer = [
        {
            "service_request_id": number,
            "token": str(token),
            "service_notice": "已登记。登记后 15 日内告知是否受理（《信访工作条例》第22、23条）。",
            "account_id": extra["account_id"],
        }
    ]
    if key is not None:
        store_answer(session, user.id, key, 201, {"requests": answer})
    session.commit()
    return render(fmt, answer, "service_requests", "request", 201)


def _resend_key() -> str | None:
    """The ``Idempotency-Key`` header, optional here (an extension of GeoReport v2, which
    has no resend key): a client that sends one gets its first answer again on a resend,
    as on ``POST /api/v1/cases``, instead of a second case."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not params.IDEMPOTENCY_KEY.fullmatch(key):
        raise _bad(
            "invalid_idempotency_key",
            "Idempotency-Key 应为 1 至 255 个可见 ASCII 字符",
            "an Idempotency-Key is 1 to 255 visible ASCII characters",
        )
    return key


# -- reading requests ----------------------------------------------------------------------------


def _w3c(name: str, text: str | None) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _bad(
            "invalid_date",
            f"{name} 应为 W3C 时间，如 2026-01-01T00:00:00Z",
            f"{name} must be a W3C datetime",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=params.LOCAL_TZ)
    if not params.EARLIEST <= moment <= datetime(2100, 1, 1, tzinfo=UTC):
        raise _bad("invalid_date", f"{name} 超出范围", f"{name} out of range")
    return moment


def _period() -> tuple[datetime, datetime]:
    """The spec's window: at most 90 days, the most recent 90 days by default."""
    start = _w3c("start_date", request.args.get("start_date"))
    end = _w3c("end_date", request.args.get("end_date"))
    if start is None and end is None:
        end = datetime.now(UTC)
        start = end - MAX_SPAN
    elif start is None:
        start = end - MAX_SPAN
    elif end is None:
        end = min(start + MAX_SPAN, datetime.now(UTC) + timedelta(days=1))
    if end < start:
        raise _bad("invalid_date", "end_date 不能早于 start_date", "end_date is before start_date")
    if end - start > MAX_SPAN:
        raise _bad(
            "date_range_too_long",
            "start_date 与 end_date 相隔不能超过 90 天",
            "the range may not span more than 90 days",
        )
    return start, end


def _list(name: str) -> list[str]:
    text = request.args.get(name)
    if text is None or text == "":
        return []
    values = [v.strip() for v in text.split(",") if v.strip()]
    if len(values) > 200:
        raise _bad("invalid_parameter", f"{name} 的取值过多", f"too many values in {name}")
    return values


def _status_notes(case, public: bool = False) -> str:
    """The detailed state in words; the public view leaves out the follow-up and the place."""
    parts = [f"{Status(case.status).label}（{case.status}）"]
    if case.opinion:
        parts.append("处理意见：" + Opinion(case.opinion).label)
    if public:
        return "；".join(parts)
    if case.satisfaction:
        parts.append("回访满意度：" + Satisfaction(case.satisfaction).label)
    if case.location_approx:
        parts.append("位置为村(社区)近似位置")
    return "；".join(parts)


def _public_item(row) -> dict:
    """The keyless view of one request: where it stands, never what it says or where it is."""
    case = row.Case
    return {
        "service_request_id": case.number,
        "status": "closed" if case.status in CLOSED else "open",
        "status_notes": _status_notes(case, public=True),
        "service_name": row.category_name,
        "service_code": row.category_code,
        "requested_datetime": case.reported_at.isoformat(),
        "updated_datetime": case.updated_at.isoformat() if case.updated_at else None,
        "expected_datetime": case.due_at.isoformat() if case.due_at else None,
    }


def _request_item(row) -> dict:
    case = row.Case
    return {
        "service_request_id": case.number,
        "status": "closed" if case.status in CLOSED else "open",
        "status_notes": _status_notes(case),
        "service_name": row.category_name,
        "service_code": row.category_code,
        "description": case.description
        if case.description.startswith(case.title)
        else f"{case.title}\n{case.description}".strip(),
        "agency_responsible": f"{row.township_name}",
        "service_notice": "",
        "requested_datetime": case.reported_at.isoformat(),
        "updated_datetime": case.updated_at.isoformat() if case.updated_at else None,
        "expected_datetime": case.due_at.isoformat() if case.due_at else None,
        "address": f"{row.township_name}{row.village_name} {row.grid_name}",
        "address_id": case.grid_code,
        "zipcode": "",
        "lat": round(row.lat, 6),
        "long": round(row.lon, 6),
        "media_url": "",
    }


@bp.get(f"/requests.{FMT}")
@public
def list_requests(fmt: str):
    user = _key_user()
    _check_jurisdiction()
    session = get_session()
    ids = _list("service_request_id")
    page_size = params.parse_int(
        "page_size", request.args.get("page_size") or None, MAX_REQUESTS, 1, MAX_REQUESTS
    )
    page = params.parse_int("page", request.args.get("page") or None, 1, 1, 100_000)
    if ids:
        # The spec: a list of ids overrides every other filter.
        if not all(NUMBER.fullmatch(i) for i in ids):
            raise _bad(
                "invalid_parameter", "service_request_id 格式不正确", "malformed service_request_id"
            )
        stmt = queries.service_requests(user, CaseFilter(), numbers=ids)
    else:
        codes = _list("service_code")
        if not all(params.CATEGORY_CODE.fullmatch(c) for c in codes):
            raise _bad("invalid_parameter", "service_code 格式不正确", "malformed service_code")
        wanted = set(_list("status"))
        if wanted - {"open", "closed"}:
            raise _bad(
                "invalid_parameter", "status 可选 open、closed", "status must be open or closed"
            )
        statuses = sorted(
            (OPEN if "open" in wanted else set()) | (CLOSED if "closed" in wanted else set())
        )
        start, end = _period()
        flt = CaseFilter(since=start, until=end, categories=codes, statuses=statuses)
        stmt = queries.service_requests(user, flt)
    rows = queries.page_of_requests(session, stmt, page_size, (page - 1) * page_size)
    return render(fmt, [_request_item(r) for r in rows], "service_requests", "request")


@bp.get(f"/requests/<request_id>.{FMT}")
@public
def get_request(request_id: str, fmt: str):
    """One request: in full for a key that may see it, in the public view without a key."""
    user = _key_user_or_none()
    _check_jurisdiction()
    if not NUMBER.fullmatch(request_id):
        raise _bad("not_found", "该请求不存在或您无权查看", "service request not found", 404)
    if user is None:
        row = queries.public_request(get_session(), number=request_id)
        if row is None:
            raise _bad("not_found", "该请求不存在或您无权查看", "service request not found", 404)
        return render(fmt, [_public_item(row)], "service_requests", "request")
    stmt = queries.service_requests(user, CaseFilter(), numbers=[request_id])
    rows = queries.page_of_requests(get_session(), stmt, 1)
    if not rows:
        raise _bad("not_found", "该请求不存在或您无权查看", "service request not found", 404)
    return render(fmt, [_request_item(rows[0])], "service_requests", "request")


@bp.get(f"/tokens/<token>.{FMT}")
@public
def request_from_token(token: str, fmt: str):
    """The request id of a token: for a key that may see the case, or without a key for
    a request filed through Open311."""
    user = _key_user_or_none()
    _check_jurisdiction()
    try:
        client_id = uuid.UUID(token)
    except ValueError:
        client_id = None
    number = None
    if client_id is not None and user is None:
        row = queries.public_request(get_session(), token=client_id)
        number = row.Case.number if row is not None else None
    elif client_id is not None:
        stmt = queries.service_requests(user, CaseFilter(), token=client_id)
        rows = queries.page_of_requests(get_session(), stmt, 1)
        number = rows[0].Case.number if rows else None
    if number is None:
        raise _bad(
            "not_found", "该令牌对应的请求不存在或您无权查看", "no request for this token", 404
        )
    return render(
        fmt, [{"service_request_id": number, "token": token}], "service_requests", "request"
    )
