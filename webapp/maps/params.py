"""What a map request asks for: which map, which area, which cases, and the map's options.

Parsed from the query string once, by :func:`parse`, for both the page and the map
document it frames, so both always show the same thing. Bad input is a 400 with a
Chinese message, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from webapp.cases.vocab import (
    EARLIEST_DAY,
    FINAL_STATUSES,
    LATEST_DAY,
    RESOLVED_STATUSES,
    Channel,
    Status,
)
from webapp.errors import AppError
from webapp.grid.models import AreaLevel
from webapp.hotspots.queries import CaseFilter
from webapp.stats.queries import Filters, Period

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

MAP_KINDS = {
    "heat": "热力图",
    "choropleth": "指标地图",
    "hotspots": "热点分析",
    "cases": "案件分布",
}
WEIGHTS = {"people": "按涉及人数（人次）", "cases": "按案件数（件）"}
# Status groups offered next to the single statuses.
STATUS_GROUPS = {
    "open": ("未办结（全部）", tuple(s for s in Status if s not in FINAL_STATUSES)),
    "done": ("已化解/已销号", tuple(sorted(RESOLVED_STATUSES))),
}
NEIGHBOURHOODS = {"queen": "邻接（共享边界或顶点）", "distance": "距离带"}
DEFAULT_BAND_M = 2000.0
MAX_BAND_M = 50_000.0
# The default period: the last 12 whole months and the current month so far. Leaders
# read monthly figures, and whole months come from the case tallies (stats.queries),
# so a default map does not read a year of cases.
DEFAULT_PERIOD_MONTHS = 12


def _bad(field: str, message: str) -> AppError:
    return AppError(
        "bad_map_parameter", message, 400, f"bad map parameter: {field}", {"field": field}
    )


@dataclass(frozen=True)
class MapParams:
    """One map request. ``date_to`` is inclusive (the whole day)."""

    kind: str
    area: str | None
    date_from: date
    date_to: date
    categories: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()  # as asked: single statuses and group names
    weight: str = "people"
    figure: str = "cases"
    level: str | None = None  # the level a choropleth shows (default: the area's children)
    hs_level: str = "grid"
    neighbourhood: str = "queen"
    band_m: float = DEFAULT_BAND_M
    fdr: bool = False
    per_1000: bool = False

    def status_values(self) -> tuple[str, ...]:
        """The statuses asked for, with the groups spelled out."""
        statuses: list[str] = []
        for s in self.statuses:
            members = STATUS_GROUPS[s][1] if s in STATUS_GROUPS else (s,)
            statuses.extend(str(m) for m in members if str(m) not in statuses)
        return tuple(statuses)

    def case_filter(self) -> CaseFilter:
        """The cases this request counts: reported in the period, of the chosen kinds."""
        start = datetime.combine(self.date_from, time.min, LOCAL_TZ)
        end = datetime.combine(self.date_to + timedelta(days=1), time.min, LOCAL_TZ)
        return CaseFilter(start, end, self.categories, self.channels, self.status_values())

    def period(self) -> Period:
        """The period of the figures (the same local days as :meth:`case_filter`)."""
        return Period(self.date_from, self.date_to)

    def filters(self) -> Filters:
        """The figures' filters (the same kinds of case as :meth:`case_filter`)."""
        return Filters(self.categories, self.channels, self.status_values())

    def query(self, today: date, **changes) -> dict:
        """Query-string arguments for this request with ``changes``, leaving out the defaults."""
        target = replace(self, **changes)
        default = defaults(today, target.kind)
        out: dict = {"map": target.kind}
        if target.area:
            out["area"] = target.area
        names = {
            "date_from": "from",
            "date_to": "to",
            "categories": "category",
            "channels": "channel",
            "statuses": "status",
            "band_m": "band",
            "neighbourhood": "nb",
            "per_1000": "rate",
        }
        for f in fields(self):
            if f.name in ("kind", "area"):
                continue
            value = getattr(target, f.name)
            if value == getattr(default, f.name):
                continue
            key = names.get(f.name, f.name)
            if isinstance(value, bool):
                out[key] = ("per1000" if f.name == "per_1000" else "1") if value else "0"
            elif isinstance(value, date):
                out[key] = value.isoformat()
            elif isinstance(value, tuple):
                out[key] = [str(v) for v in value]
            elif isinstance(value, float):
                out[key] = f"{value:g}"
            elif value is not None:
                out[key] = value
        return out


def default_start(today: date) -> date:
    """The first day of the month :data:`DEFAULT_PERIOD_MONTHS` months before ``today``'s."""
    months = today.year * 12 + today.month - 1 - DEFAULT_PERIOD_MONTHS
    return date(months // 12, months % 12 + 1, 1)


def defaults(today: date, kind: str = "heat") -> MapParams:
    return MapParams(
        kind=kind,
        area=None,
        date_from=default_start(today),
        date_to=today,
    )


def today_local() -> date:
    return datetime.now(LOCAL_TZ).date()


def _date(args: MultiDict, key: str, default: date) -> date:
    raw = (args.get(key) or "").strip()
    if not raw:
        return default
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise _bad(key, f"日期格式应为 年-月-日（如 2024-01-31）：{raw[:20]}") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise _bad(key, f"日期超出范围（1990 至 2099 年）：{raw[:20]}")
    return day


def _choice(args: MultiDict, key: str, allowed, default):
    raw = (args.get(key) or "").strip()
    if not raw:
        return default
    if raw not in allowed:
        raise _bad(key, f"参数 {key} 的取值无效")
    return raw


def parse(args: MultiDict, today: date | None = None) -> MapParams:
    """Parse a map request from query-string ``args``; raise a 400 AppError on bad input."""
    from webapp.maps.figures import FIGURES

    today = today or today_local()
    kind = _choice(args, "map", MAP_KINDS, "heat")
    base = defaults(today, kind)
    area = (args.get("area") or "").strip() or None
    if area is not None and not (area.isdigit() and 6 <= len(area) <= 20):
        raise _bad("area", "区划代码无效")
    date_from = _date(args, "from", base.date_from)
    date_to = _date(args, "to", base.date_to)
    if date_from > date_to:
        raise _bad("from", "开始日期不能晚于结束日期")
    try:
        categories = tuple(sorted({int(v) for v in args.getlist("category") if v.strip()}))
    except ValueError:
        raise _bad("category", "案件类别无效") from None
    channels = tuple(dict.fromkeys(v for v in args.getlist("channel") if v.strip()))
    if any(v not in Channel.__members__.values() for v in channels):
        raise _bad("channel", "渠道无效")
    statuses = tuple(dict.fromkeys(v for v in args.getlist("status") if v.strip()))
    if any(v not in STATUS_GROUPS and v not in Status.__members__.values() for v in statuses):
        raise _bad("status", "办理状态无效")
    levels = [lv.value for lv in AreaLevel if lv is not AreaLevel.COUNTY]
    band_raw = (args.get("band") or "").strip()
    try:
        band_m = float(band_raw) if band_raw else DEFAULT_BAND_M
    except ValueError:
        raise _bad("band", "距离带应为米数") from None
    if not (0 < band_m <= MAX_BAND_M):
        raise _bad("band", f"距离带应在 0 到 {MAX_BAND_M:,.0f} 米之间")
    return MapParams(
        kind=kind,
        area=area,
        date_from=date_from,
        date_to=date_to,
        categories=categories,
        channels=channels,
        statuses=statuses,
        weight=_choice(args, "weight", WEIGHTS, "people"),
        figure=_choice(args, "figure", FIGURES, "cases"),
        level=_choice(args, "level", levels, None),
        hs_level=_choice(args, "hs_level", ("grid", "village"), "grid"),
        neighbourhood=_choice(args, "nb", NEIGHBOURHOODS, "queen"),
        band_m=band_m,
        fdr=_choice(args, "fdr", ("0", "1"), "0") == "1",
        per_1000=_choice(args, "rate", ("raw", "per1000", "0"), "raw") == "per1000",
    )


def describe(params: MapParams, category_names: dict[int, str]) -> list[str]:
    """The request's period and filters in words (plain text; escaped where shown)."""
    from webapp.cases.vocab import CHANNEL_LABELS, STATUS_LABELS

    out = [f"时间：{params.date_from.isoformat()} 至 {params.date_to.isoformat()}"]
    if params.categories:
        out.append("类别：" + "、".join(category_names.get(c, f"#{c}") for c in params.categories))
    if params.channels:
        out.append("渠道：" + "、".join(CHANNEL_LABELS[Channel(c)] for c in params.channels))
    if params.statuses:
        out.append(
            "状态："
            + "、".join(
                STATUS_GROUPS[s][0] if s in STATUS_GROUPS else STATUS_LABELS[Status(s)]
                for s in params.statuses
            )
        )
    return out
