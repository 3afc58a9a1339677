"""Parsing the desk registration form and the case-list filters (pure: text in, values out)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import date

from webapp.cases.petitioners import (
    id_number_problem,
    normalize_id_number,
    normalize_phone,
    phone_problem,
)
from webapp.cases.vocab import EARLIEST_DAY, LATEST_DAY, CaseClass, Channel, Status

# Channels the desk registers (a grid worker's sweep comes from the phone).
DESK_CHANNELS = tuple(c for c in Channel if c is not Channel.GRID_SWEEP)
# A collective petition has five or more people (集体访).
COLLECTIVE_MIN = 5
TITLE_MAX = 200
TEXT_MAX = 5000


@dataclass
class Registration:
    """A case as the desk registers it."""

    channel: Channel
    case_class: CaseClass
    category_id: int
    title: str
    description: str
    people_count: int
    batch_count: int
    petitioner_name: str | None
    petitioner_phone: str | None
    petitioner_id_number: str | None
    accused_unit: str | None
    lon: float | None
    lat: float | None
    village_code: str | None  # when only the village is known: the case sits at its label point
    repeat_of_id: int | None = None
    # The form's own id (a hidden field made when the page was served): sent twice (a double
    # click, a browser's retry), the form is one case.
    client_id: uuid.UUID | None = None

    @property
    def approximate(self) -> bool:
        return self.lon is None

    @property
    def collective(self) -> bool:
        return self.people_count >= COLLECTIVE_MIN


@dataclass
class FormResult:
    value: Registration | None
    errors: dict[str, str] = field(default_factory=dict)


def _text(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def _count(form, name, label, errors, lo=1, hi=100_000) -> int:
    raw = _text(form, name) or "1"
    try:
        value = int(raw)
    except ValueError:
        errors[name] = f"{label}应为整数"
        return 1
    if not lo <= value <= hi:
        errors[name] = f"{label}应在 {lo} 至 {hi} 之间"
    return value


def _coordinate(raw: str, lo: float, hi: float) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and lo <= value <= hi else None


def parse_registration(form: Mapping[str, str], category_ids: Container[int]) -> FormResult:
    """Check the desk form; return the registration or the problems by field (Chinese)."""
    errors: dict[str, str] = {}
    try:
        channel = Channel(_text(form, "channel"))
        if channel not in DESK_CHANNELS:
            raise ValueError
    except ValueError:
        errors["channel"] = "请选择信访渠道"
        channel = Channel.VISIT
    try:
        case_class = CaseClass(_text(form, "case_class"))
    except ValueError:
        errors["case_class"] = "请选择事项类别（建议意见类、检举控告类、申诉求决类）"
        case_class = CaseClass.REQUEST
    try:
        category_id = int(_text(form, "category_id"))
        if category_id not in category_ids:
            raise ValueError
    except ValueError:
        errors["category_id"] = "请选择问题分类"
        category_id = 0
    title = _text(form, "title")
    if not title:
        errors["title"] = "请填写事项摘要"
    elif len(title) > TITLE_MAX:
        errors["title"] = f"事项摘要不能超过 {TITLE_MAX} 个字"
    description = _text(form, "description")
    if len(description) > TEXT_MAX:
        errors["description"] = f"诉求内容不能超过 {TEXT_MAX} 个字"

    people = _count(form, "people_count", "人数", errors)
    batches = _count(form, "batch_count", "批次", errors) if channel is Channel.VISIT else 1
    if "people_count" not in errors and "batch_count" not in errors and batches > people:
        errors["batch_count"] = "批次不能多于人数"

    name = _text(form, "petitioner_name") or None
    if name and len(name) > 100:
        errors["petitioner_name"] = "姓名不能超过 100 个字"
    phone = normalize_phone(form.get("petitioner_phone"))
    if phone and (problem := phone_problem(phone)):
        errors["petitioner_phone"] = problem
    id_number = normalize_id_number(form.get("petitioner_id_number"))
    if id_number and (problem := id_number_problem(id_number)):
        errors["petitioner_id_number"] = problem

    accused = _text(form, "accused_unit") or None
    if case_class is not CaseClass.ACCUSATION:
        accused = None
    elif accused and len(accused) > 100:
        errors["accused_unit"] = "被检举控告单位不能超过 100 个字"

    lon_raw, lat_raw = _text(form, "lon"), _text(form, "lat")
    village = _text(form, "village_code") or None
    lon = lat = None
    if lon_raw or lat_raw:
        lon, lat = _coordinate(lon_raw, -180, 180), _coordinate(lat_raw, -90, 90)
        if lon is None or lat is None:
            errors["location"] = "地图选点的坐标无效，请重新在地图上点选"
            lon = lat = None
        village = None
    elif not village:
        errors["location"] = "请在地图上点选问题发生地；只知道村（社区）时请选择村（社区）"
    elif not (village.isdigit() and len(village) == 12):
        errors["location"] = "请选择有效的村（社区）"

    repeat_of = None
    if raw := _text(form, "repeat_of_id"):
        try:
            repeat_of = int(raw)
        except ValueError:
            errors["repeat_of_id"] = "重复件关联无效"

    client_id = None
    if raw := _text(form, "client_id"):
        try:
            client_id = uuid.UUID(raw[:64])
        except ValueError:
            errors["form"] = "登记表已失效，请刷新页面后重新填写"

    if errors:
        return FormResult(None, errors)
    return FormResult(
        Registration(
            channel,
            case_class,
            category_id,
            title,
            description,
            people,
            batches,
            name,
            phone,
            id_number,
            accused,
            lon,
            lat,
            village,
            repeat_of,
            client_id,
        )
    )


# -- list filters -----------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilters:
    status: Status | None = None
    category_id: int | None = None
    channel: Channel | None = None
    area: str | None = None  # a township, village or grid code
    since: date | None = None
    until: date | None = None
    text: str | None = None
    due: str | None = None  # "overdue" or "due_soon"
    page: int = 1

    def query_args(self, **changes) -> dict[str, str]:
        """The filters as URL arguments (for pagination links), with ``changes`` applied."""
        values = {
            "status": self.status,
            "category": self.category_id,
            "channel": self.channel,
            "area": self.area,
            "since": self.since,
            "until": self.until,
            "q": self.text,
            "due": self.due,
            "page": self.page,
        }
        values.update(changes)
        if values["page"] == 1:
            del values["page"]
        return {k: str(v) for k, v in values.items() if v is not None and v != ""}


def _enum(enum_type, raw: str | None):
    try:
        return enum_type(raw) if raw else None
    except ValueError:
        return None


def _date(raw: str | None) -> date | None:
    try:
        day = date.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    # Outside the days a case can have (vocab.EARLIEST_DAY) it is a mistake too.
    return day if day is None or EARLIEST_DAY <= day <= LATEST_DAY else None


def parse_filters(args: Mapping[str, str]) -> CaseFilters:
    """Read the list filters; anything malformed is ignored rather than refused."""
    try:
        category = int(args.get("category") or "") or None
    except ValueError:
        category = None
    area = (args.get("area") or "").strip()
    text = (args.get("q") or "").strip()[:100]
    due = args.get("due") if args.get("due") in ("overdue", "due_soon") else None
    try:
        page = max(1, min(int(args.get("page") or 1), 100_000))
    except ValueError:
        page = 1
    return CaseFilters(
        status=_enum(Status, args.get("status")),
        category_id=category,
        channel=_enum(Channel, args.get("channel")),
        area=area if area.isdigit() and 6 <= len(area) <= 20 else None,
        since=_date(args.get("since")),
        until=_date(args.get("until")),
        text=text or None,
        due=due,
        page=page,
    )
