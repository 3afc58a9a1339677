"""Parsing what API clients send: query filters, cursors and case bodies, into plain values.

Pure functions of the incoming text: every problem becomes an ``AppError`` with a
stable code and a Chinese and English message (400 for a malformed query, 422 for a
body that is well-formed JSON but not a valid case), never an exception that would
answer 500. Values are range-checked before any of them reaches SQL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from webapp.cases.vocab import CaseClass, Channel, Status
from webapp.errors import AppError

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
AREA_CODE = re.compile(r"^[0-9]{6,20}$")
CATEGORY_CODE = re.compile(r"^[a-z0-9_]{1,40}$")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
# Timestamps outside these years are typing mistakes, not petitions.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
MAX_LIST_ITEMS = 20


# An Idempotency-Key: 1 to 255 visible ASCII characters (REST API; Open311 as an extension).
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def request_hash(path: str, data) -> str:
    """A fingerprint of a create request (its path and JSON-able data) for its Idempotency-Key."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"POST {path}\n{canonical}".encode()).hexdigest()


def bad_param(name: str, zh: str, en: str) -> AppError:
    return AppError(
        "invalid_parameter",
        f"参数 {name} 无效：{zh}",
        400,
        f"invalid parameter {name}: {en}",
        {"parameter": name},
    )


def parse_int(name: str, text: str | None, default: int, lo: int, hi: int) -> int:
    if text is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
        raise bad_param(
            name, f"应为 {lo} 至 {hi} 之间的整数", f"must be an integer from {lo} to {hi}"
        )
    value = int(text)
    if not lo <= value <= hi:
        raise bad_param(
            name, f"应为 {lo} 至 {hi} 之间的整数", f"must be an integer from {lo} to {hi}"
        )
    return value


def parse_float(name: str, text: str | None, lo: float, hi: float) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad_param(name, "应为数字", "must be a number") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise bad_param(name, f"应在 {lo} 至 {hi} 之间", f"must be within [{lo}, {hi}]")
    return value


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``west,south,east,north`` in WGS84 degrees (RFC 7946 order)."""
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise bad_param("bbox", "应为 西,南,东,北 四个经纬度", "must be west,south,east,north")
    w = parse_float("bbox", parts[0], -180, 180)
    s = parse_float("bbox", parts[1], -90, 90)
    e = parse_float("bbox", parts[2], -180, 180)
    n = parse_float("bbox", parts[3], -90, 90)
    if None in (w, s, e, n) or w > e or s > n:  # type: ignore[operator]
        raise bad_param(
            "bbox",
            "应为 西,南,东,北，且西 ≤ 东、南 ≤ 北",
            "must be west,south,east,north with west <= east, south <= north",
        )
    return w, s, e, n  # type: ignore[return-value]


def parse_moment(name: str, text: str | None, end: bool = False) -> datetime | None:
    """A date (``2026-03-01``, local day) or an ISO 8601 date-time; ``end`` makes a date exclusive-next-day."""
    if text is None:
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            moment = datetime.combine(d, time(0), LOCAL_TZ)
            if end:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=LOCAL_TZ)
    except (ValueError, OverflowError):
        raise bad_param(
            name,
            "应为日期（2026-03-01）或带时区的时间（2026-03-01T08:00:00+08:00）",
            "must be an ISO 8601 date or date-time",
        ) from None
    if not EARLIEST <= moment <= datetime(2100, 1, 1, tzinfo=UTC):
        raise bad_param(name, "日期超出范围（1990 至 2100 年）", "date out of range (1990-2100)")
    return moment


def parse_choices(name: str, text: str | None, allowed: type[Status] | type[Channel]) -> list[str]:
    if text is None:
        return []
    values = [v.strip() for v in text.split(",")]
    known = {v.value for v in allowed}
    bad = [v for v in values if v not in known]
    if bad or len(values) > MAX_LIST_ITEMS:
        raise bad_param(
            name,
            f"可选值为 {', '.join(sorted(known))}",
            f"allowed values are {', '.join(sorted(known))}",
        )
    return values


def parse_codes(name: str, text: str | None, pattern: re.Pattern) -> list[str]:
    if text is None:
        return []
    values = [v.strip() for v in text.split(",")]
    if len(values) > MAX_LIST_ITEMS or not all(pattern.fullmatch(v) for v in values):
        raise bad_param(name, "代码格式不正确", "malformed code")
    return values


@dataclass(frozen=True)
class CaseFilter:
    """What a list or export of cases is narrowed to (always within the user's scope)."""

    bbox: tuple[float, float, float, float] | None = None
    area: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    categories: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        """The filter as plain JSON, for the audit log."""
        return {
            "bbox": list(self.bbox) if self.bbox else None,
            "area": self.area,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
            "category": self.categories or None,
            "status": self.statuses or None,
            "channel": self.channels or None,
        }


def case_filter(args) -> CaseFilter:
    """Parse the case filters of a query string (``request.args``)."""
    area = args.get("area")
    if area is not None and not AREA_CODE.fullmatch(area):
        raise bad_param(
            "area", "应为 6 至 20 位数字的区划代码", "must be an area code of 6 to 20 digits"
        )
    since = parse_moment("from", args.get("from"))
    until = parse_moment("to", args.get("to"), end=True)
    if since and until and since >= until:
        raise bad_param("to", "结束日期应晚于开始日期", "must be after from")
    return CaseFilter(
        bbox=parse_bbox(args.get("bbox")),
        area=area or None,
        since=since,
        until=until,
        categories=parse_codes("category", args.get("category"), CATEGORY_CODE),
        statuses=parse_choices("status", args.get("status"), Status),
        channels=parse_choices("channel", args.get("channel"), Channel),
    )


# -- keyset cursor ------------------------------------------------------------------


def encode_cursor(reported_at: datetime, case_id: int) -> str:
    raw = json.dumps([reported_at.isoformat(), case_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[datetime, int] | None:
    if text is None:
        return None
    problem = bad_param(
        "cursor",
        "翻页标记无效，请使用上一页返回的 next_cursor",
        "use the next_cursor of the previous page",
    )
    if len(text) > 200:
        raise problem
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        at, case_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise problem from None
    if (
        not isinstance(case_id, int)
        or isinstance(case_id, bool)
        or not 0 < case_id < 2**63
        or moment.tzinfo is None
    ):
        raise problem
    return moment, case_id


# -- the body of a new case -------------------------------------------------------------

CRS_NAMES = {
    "wgs84": "EPSG:4326",
    "epsg:4326": "EPSG:4326",
    "cgcs2000": "EPSG:4490",
    "epsg:4490": "EPSG:4490",
    "gcj02": "gcj02",
}


@dataclass(frozen=True)
class CaseBody:
    title: str
    category: str
    channel: Channel
    lon: float
    lat: float
    crs: str
    description: str = ""
    case_class: CaseClass = CaseClass.REQUEST
    people_count: int = 1
    reported_at: datetime | None = None
    petitioner_name: str | None = None
    petitioner_phone: str | None = None
    petitioner_id_number: str | None = None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def load_json_object(data: bytes) -> dict:
    """Parse a request body as a JSON object (NaN and Infinity refused)."""
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise AppError(
            "invalid_json", "请求体不是有效的 JSON", 400, "the body is not valid JSON"
        ) from None
    if not isinstance(value, dict):
        raise AppError(
            "invalid_json", "请求体应为 JSON 对象", 400, "the body must be a JSON object"
        )
    return value


BODY_FIELDS = {
    "title",
    "description",
    "category",
    "channel",
    "case_class",
    "people_count",
    "lon",
    "lat",
    "crs",
    "reported_at",
    "petitioner_name",
    "petitioner_phone",
    "petitioner_id_number",
}


def case_body(data: dict, default_channel: Channel) -> CaseBody:
    """Validate a new case's JSON; collect every problem, then refuse with all of them (422)."""
    problems: dict[str, str] = {}

    def text(name: str, required: bool, max_len: int) -> str | None:
        value = data.get(name)
        if value is None:
            if required:
                problems[name] = "必填 (required)"
            return None
        if not isinstance(value, str):
            problems[name] = "应为字符串 (must be a string)"
            return None
        value = value.strip()
        if required and not value:
            problems[name] = "不能为空 (must not be empty)"
        elif len(value) > max_len:
            problems[name] = f"不能超过 {max_len} 个字符 (at most {max_len} characters)"
        elif "\x00" in value:
            problems[name] = "含有非法字符 (contains NUL)"
        return value or None

    def number(name: str, lo: float, hi: float) -> float | None:
        value = data.get(name)
        if value is None:
            problems[name] = "必填 (required)"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems[name] = "应为数字 (must be a number)"
            return None
        value = float(value)
        if not math.isfinite(value) or not lo <= value <= hi:
            problems[name] = f"应在 {lo} 至 {hi} 之间 (must be within [{lo}, {hi}])"
            return None
        return value

    def choice(name: str, enum_type, default):
        value = data.get(name)
        if value is None:
            return default
        try:
            return enum_type(value) if isinstance(value, str) else enum_type(None)
        except ValueError:
            problems[name] = "可选值为 " + ", ".join(v.value for v in enum_type)
            return default

    unknown = sorted(set(data) - BODY_FIELDS)
    if unknown:
        problems["_"] = "未知字段 (unknown fields): " + ", ".join(unknown[:10])[:300]
    title = text("title", True, 200)
    description = text("description", False, 5000) or ""
    category = text("category", True, 40)
    if category and not CATEGORY_CODE.fullmatch(category):
        problems["category"] = "应为类别代码，如 land_acquisition (a category code)"
    lon = number("lon", -180, 180)
    lat = number("lat", -90, 90)
    crs_text = text("crs", False, 16)
    crs = CRS_NAMES.get((crs_text or "wgs84").lower().replace("-", ""))
    if crs is None:
        problems["crs"] = "可选值为 wgs84, cgcs2000, gcj02"
    channel = choice("channel", Channel, default_channel)
    case_class = choice("case_class", CaseClass, CaseClass.REQUEST)
    people = data.get("people_count", 1)
    if isinstance(people, bool) or not isinstance(people, int) or not 1 <= people <= 10000:
        problems["people_count"] = "应为 1 至 10000 之间的整数 (an integer from 1 to 10000)"
        people = 1
    reported_at = None
    reported_text = text("reported_at", False, 40)
    if reported_text:
        try:
            reported_at = datetime.fromisoformat(reported_text.replace("Z", "+00:00"))
        except ValueError:
            problems["reported_at"] = "应为 ISO 8601 时间 (an ISO 8601 date-time)"
        else:
            if reported_at.tzinfo is None:
                reported_at = reported_at.replace(tzinfo=LOCAL_TZ)
            if not EARLIEST <= reported_at <= datetime.now(UTC) + timedelta(minutes=10):
                problems["reported_at"] = "不能早于 1990 年或晚于现在 (between 1990 and now)"
    name = text("petitioner_name", False, 100)
    phone = text("petitioner_phone", False, 32)
    id_number = text("petitioner_id_number", False, 32)
    if problems:
        raise AppError(
            "validation_failed",
            "提交的案件信息有误，请检查后重试",
            422,
            "the case is not valid",
            problems,
        )
    return CaseBody(
        title=title or "",
        category=category or "",
        channel=channel,
        lon=lon or 0.0,
        lat=lat or 0.0,
        crs=crs or "EPSG:4326",
        description=description,
        case_class=case_class,
        people_count=people,
        reported_at=reported_at,
        petitioner_name=name,
        petitioner_phone=phone,
        petitioner_id_number=id_number,
    )
