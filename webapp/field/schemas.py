"""Parsing what a phone sends: a field report and a sweep, checked field by field.

Every problem has a stable code and a Chinese message; all problems of one request
are collected, and the first one's code is the error's code, so a client can act on
it and a person can read all of them at once. Nothing is stored before parsing
succeeds.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp.errors import AppError

MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_NAME = 50
MAX_NOTE = 2000
MAX_PEOPLE = 100_000
MAX_ACCURACY_M = 100_000.0
# A queued report may be sent days after it was made; older or future times are not trusted.
MAX_REPORT_AGE = timedelta(days=30)
MAX_CLOCK_SKEW = timedelta(minutes=10)

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides;
# a description may keep line breaks and tabs.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_CONTROL_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PHONE = re.compile(r"^\+?[0-9][0-9\- ]{4,22}[0-9]$")


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str

    def to_dict(self) -> dict:
        return {"field": self.field, "code": self.code, "message": self.message}


class InvalidInput(AppError):
    """One or more fields are wrong: ``details`` lists each with its code and message."""

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        super().__init__(
            first.code,
            "；".join(p.message for p in problems),
            400,
            f"invalid input: {', '.join(sorted({p.field for p in problems}))}",
            details=[p.to_dict() for p in problems],
        )
        self.problems = problems


@dataclass(frozen=True)
class ReportInput:
    """A field report as the phone made it, checked."""

    client_id: uuid.UUID
    category_id: int
    description: str
    people_count: int
    lon: float
    lat: float
    title: str | None = None
    accuracy_m: float | None = None
    location_adjusted: bool = False
    petitioner_name: str | None = None
    petitioner_phone: str | None = None
    reported_at: datetime | None = None


class _Checker:
    """Collects problems while reading fields from a JSON object."""

    def __init__(self, data: object) -> None:
        if not isinstance(data, dict):
            raise AppError(
                "invalid_json", "提交的内容不是有效的 JSON 对象", 400, "body must be a JSON object"
            )
        self.data = data
        self.problems: list[Problem] = []

    def problem(self, field: str, code: str, message: str) -> None:
        self.problems.append(Problem(field, code, message))

    def present(self, field: str) -> bool:
        value = self.data.get(field)
        return value is not None and not (isinstance(value, str) and not value.strip())

    def text(
        self, field: str, label: str, max_len: int, required: bool = False, multiline: bool = False
    ) -> str | None:
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.problem(field, "missing_field", f"请填写{label}")
            return None
        if not isinstance(value, str):
            self.problem(field, "invalid_type", f"{label}应为文字")
            return None
        value = value.strip()
        if len(value) > max_len:
            self.problem(
                field, "text_too_long", f"{label}过长：最多 {max_len} 个字，现有 {len(value)} 个字"
            )
            return None
        if (_CONTROL if multiline else _CONTROL_ONE_LINE).search(value):
            self.problem(field, "control_characters", f"{label}含有不可见的控制字符，请删除后重试")
            return None
        return value

    def number(self, field: str, label: str, required: bool = False) -> float | None:
        value = self.data.get(field)
        if value is None:
            if required:
                self.problem(field, "missing_field", f"缺少{label}")
            return None
        # JSON true/false are ints in Python: not a number here.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(field, "invalid_type", f"{label}应为数字")
            return None
        value = float(value)
        if not math.isfinite(value):
            self.problem(field, "invalid_number", f"{label}不是有效的数字")
            return None
        return value

    def coordinate(self, field: str, label: str, limit: float) -> float | None:
        """A WGS84 longitude or latitude: every problem with it is ``invalid_coordinates``."""
        value = self.data.get(field)
        if value is None:
            self.problem(field, "missing_field", f"缺少{label}，请等待定位或在地图上选点")
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.problem(field, "invalid_coordinates", f"{label}不是有效的数字")
            return None
        if not -limit <= value <= limit:
            self.problem(
                field,
                "invalid_coordinates",
                f"{label}超出范围（应在 -{limit:g} 至 {limit:g} 之间）",
            )
            return None
        return float(value)

    def integer(self, field: str, label: str, low: int, high: int, default: int) -> int:
        value = self.data.get(field)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))
        ):
            self.problem(field, "invalid_number", f"{label}应为整数")
            return default
        value = int(value)
        if not low <= value <= high:
            self.problem(field, "out_of_range", f"{label}应在 {low} 至 {high:,} 之间")
            return default
        return value

    def uuid(self, field: str, label: str) -> uuid.UUID | None:
        value = self.data.get(field)
        if value is None or value == "":
            self.problem(field, "missing_field", f"缺少{label}")
            return None
        try:
            if not isinstance(value, str) or len(value) > 64:
                raise ValueError
            return uuid.UUID(value)
        except ValueError:
            self.problem(field, "invalid_client_id", f"{label}格式无效（应为 UUID）")
            return None

    def raise_if_any(self) -> None:
        if self.problems:
            raise InvalidInput(self.problems)


def parse_report(data: object, now: datetime) -> ReportInput:
    """Check a field report; raise :class:`InvalidInput` listing every problem.

    The category is checked against the database by the caller (it is data).
    """
    c = _Checker(data)
    client_id = c.uuid("client_id", "上报编号 client_id")
    category = c.data.get("category_id")
    if category is None or category == "":
        c.problem("category_id", "missing_field", "请选择类别")
        category_id = None
    elif (
        isinstance(category, bool)
        or not isinstance(category, int | str)
        or not (str(category).isascii() and str(category).isdigit())
    ):
        c.problem("category_id", "unknown_category", "类别无效，请重新选择")
        category_id = None
    else:
        category_id = int(category) if len(str(category)) < 10 else -1
    description = c.text("description", "情况描述", MAX_DESCRIPTION, required=True, multiline=True)
    title = c.text("title", "标题", MAX_TITLE)
    people = c.integer("people_count", "涉及人数", 1, MAX_PEOPLE, 1)
    name = c.text("petitioner_name", "联系人姓名", MAX_NAME)
    phone = c.text("petitioner_phone", "联系电话", 32)
    if phone is not None and not _PHONE.match(phone):
        c.problem(
            "petitioner_phone",
            "invalid_phone",
            "联系电话格式不正确（只能包含数字、空格、短横线和开头的 +）",
        )
        phone = None

    lon = c.coordinate("lon", "经度", 180)
    lat = c.coordinate("lat", "纬度", 90)
    accuracy = c.number("accuracy_m", "定位精度")
    if accuracy is not None and not 0 <= accuracy <= MAX_ACCURACY_M:
        c.problem("accuracy_m", "out_of_range", "定位精度应在 0 至 100 公里之间")
        accuracy = None
    adjusted = c.data.get("location_adjusted", False)
    if not isinstance(adjusted, bool):
        c.problem("location_adjusted", "invalid_type", "location_adjusted 应为 true 或 false")
        adjusted = False

    reported_at = c.data.get("reported_at")
    if reported_at is not None and not isinstance(reported_at, str):
        c.problem("reported_at", "invalid_type", "reported_at 应为 ISO 8601 格式的时间文字")
    c.raise_if_any()
    return ReportInput(
        client_id=client_id,  # type: ignore[arg-type]
        category_id=category_id,  # type: ignore[arg-type]
        description=description,  # type: ignore[arg-type]
        people_count=people,
        lon=lon,  # type: ignore[arg-type]
        lat=lat,  # type: ignore[arg-type]
        title=title,
        accuracy_m=None if adjusted else accuracy,
        location_adjusted=adjusted,
        petitioner_name=name,
        petitioner_phone=phone,
        reported_at=_trusted_time(c.data.get("reported_at"), now),
    )


def _trusted_time(value: object, now: datetime) -> datetime | None:
    """The moment the phone says it made the report, if it is plausible (else None: use now).

    A phone's clock may be wrong; an implausible time is ignored rather than refused, so
    a queued report is never lost over it.
    """
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    if not now - MAX_REPORT_AGE <= moment <= now + MAX_CLOCK_SKEW:
        return None
    return min(moment, now)


def make_title(category_name: str, description: str) -> str:
    """A case title from the first line of the description: "类别：开头…"."""
    first = title_tail(description)
    return f"{category_name}：{first}" if first else category_name


def title_tail(description: str) -> str:
    """What :func:`make_title` puts after the category: the description's first line, cut."""
    first = description.strip().splitlines()[0].strip() if description.strip() else ""
    if len(first) > 30:
        first = first[:30] + "…"
    return first


@dataclass(frozen=True)
class SweepInput:
    grid_code: str | None
    case_ids: tuple[int, ...]
    zero_report: bool
    note: str


def parse_sweep(data: object) -> SweepInput:
    """Check a sweep: cases found, or an explicit zero report, never both, never neither."""
    c = _Checker(data)
    grid = c.data.get("grid_code")
    if grid is not None and (not isinstance(grid, str) or not grid.isdigit() or len(grid) > 20):
        c.problem("grid_code", "unknown_grid", "网格代码无效")
        grid = None
    raw = c.data.get("case_ids", [])
    ids: list[int] = []
    if not isinstance(raw, list) or len(raw) > 500:
        c.problem("case_ids", "invalid_type", "案件列表无效（最多 500 个）")
    else:
        for item in raw:
            text = str(item) if isinstance(item, int | str) and not isinstance(item, bool) else ""
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                c.problem("case_ids", "invalid_type", "案件编号无效")
                break
            ids.append(int(text))
    zero = c.data.get("zero_report", False)
    if not isinstance(zero, bool):
        c.problem("zero_report", "invalid_type", "zero_report 应为 true 或 false")
        zero = False
    note = c.text("note", "备注", MAX_NOTE, multiline=True) or ""
    if not c.problems:
        if zero and ids:
            c.problem(
                "zero_report",
                "zero_report_with_cases",
                "零报告不能同时列出案件：请取消勾选零报告，或不选案件",
            )
        elif not zero and not ids:
            c.problem(
                "case_ids", "sweep_empty", "请选择本期排查发现的案件，或勾选“本期无发现（零报告）”"
            )
    c.raise_if_any()
    return SweepInput(grid, tuple(sorted(set(ids))), zero, note)
