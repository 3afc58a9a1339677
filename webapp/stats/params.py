"""Reading a statistics request (area, level, period, filters) from query parameters.

The dashboard, the API and the exports read the same parameters the same way, and
refuse bad ones with the same stable error codes:

=========================  ======  =============================================
code                       status  when
=========================  ======  =============================================
``unknown_parameter``      400     a parameter this endpoint does not know
``invalid_level``          400     ``level`` is not county/town/village/grid
``level_above_area``       400     ``level`` is above the level of ``area``
``invalid_grouping``       400     ``by`` is not area/category/channel/month
``invalid_date``           400     ``from``/``to``/``as_of`` is not YYYY-MM-DD
``invalid_period``         400     ``from`` is after ``to``
``period_too_long``        400     the period is longer than ten years
``unknown_category``       400     a ``category`` code that does not exist
``unknown_channel``        400     a ``channel`` that is not in the vocabulary
``invalid_backlog_years``  400     ``backlog_years`` is not a whole number 1-30
``not_found``              404     ``area`` does not exist or is out of scope
=========================  ======  =============================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from webapp.auth.permissions import case_scope_sql, may_see_area
from webapp.cases.models import Category
from webapp.cases.vocab import EARLIEST_DAY, LATEST_DAY, Channel
from webapp.errors import AppError, NotFound
from webapp.grid.models import AreaLevel
from webapp.grid.queries import get_area
from webapp.stats import figures as F
from webapp.stats.queries import Filters, Grouping, Period, StatsQuery, local_midnight

LEVELS = {
    "county": AreaLevel.COUNTY,
    "town": AreaLevel.TOWNSHIP,
    "township": AreaLevel.TOWNSHIP,
    "village": AreaLevel.VILLAGE,
    "grid": AreaLevel.GRID,
}
GROUPINGS = ("area", "category", "channel", "month")
MAX_PERIOD_DAYS = 3660
LEVEL_ORDER = list(AreaLevel)

COMMON_PARAMS = frozenset(
    {"area", "level", "by", "from", "to", "as_of", "category", "channel", "backlog_years"}
)


def bad(code: str, message: str, message_en: str, **details) -> AppError:
    return AppError(code, message, 400, message_en, details=details or None)


def today_local() -> date:
    from webapp.stats.queries import LOCAL_TZ

    return datetime.now(LOCAL_TZ).date()


def parse_date(name: str, value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise bad(
            "invalid_date",
            f"参数 {name} 应为日期，格式 YYYY-MM-DD（如 2026-01-31）",
            f"{name} must be a date as YYYY-MM-DD",
            parameter=name,
        ) from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise bad(
            "invalid_date",
            f"参数 {name} 超出范围（1990 至 2099 年）",
            f"{name} must be within 1990-2099",
            parameter=name,
        )
    return day


def refuse_unknown(args: MultiDict, allowed: frozenset[str]) -> None:
    """Raise ``unknown_parameter`` naming every parameter of ``args`` not in ``allowed``."""
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise bad(
            "unknown_parameter",
            f"不支持的参数：{'、'.join(unknown)}",
            f"unknown parameter(s): {', '.join(unknown)}",
            parameters=unknown,
        )


def requested_area(session: Session, user, args: MultiDict):
    """The area ``area`` names (the user's own by default); 404 if unknown or not the user's to see."""
    code = (args.get("area") or user.area_code).strip()
    area = get_area(session, code) if code.isdigit() and may_see_area(user, code) else None
    if area is None:
        raise NotFound("区划")
    return area


def parse_backlog_years(args: MultiDict) -> int:
    """``backlog_years``: how many years back the backlog reaches (1-30; the app's setting by default)."""
    if not args.get("backlog_years"):
        return int(current_app.config.get("STATS_BACKLOG_YEARS", F.DEFAULT_BACKLOG_YEARS))
    return whole_number("backlog_years", args["backlog_years"], 1, 30)


def whole_number(name: str, value: str, lo: int, hi: int) -> int:
    """``value`` as a whole number from ``lo`` to ``hi``; else ``invalid_<name>``."""
    value = value.strip()
    # ASCII digits only: "²" is a digit to str.isdigit() but not to int(); and a short
    # one (int() refuses over 4,300 digits).
    if not (value.isascii() and value.isdigit() and len(value) <= 9) or not lo <= int(value) <= hi:
        raise bad(
            f"invalid_{name}",
            f"参数 {name} 应为 {lo} 至 {hi} 之间的整数",
            f"{name} must be a whole number from {lo} to {hi}",
            parameter=name,
        )
    return int(value)


def _many(args: MultiDict, name: str) -> list[str]:
    out: list[str] = []
    for value in args.getlist(name):
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return out


@dataclass(frozen=True)
class Parsed:
    query: StatsQuery
    level: AreaLevel  # the level of the rows (for by=area)
    by: str
    category_codes: tuple[str, ...]

    def echo(self) -> dict:
        """The request as understood, for the answer and for export file names."""
        return {
            "area": self.query.area.code,
            "level": self.level.value,
            "by": self.by,
            **self.query.period.to_dict(),
            "category": list(self.category_codes),
            "channel": list(self.query.filters.channels),
            "backlog_years": self.query.backlog_years,
        }


def parse(
    session: Session,
    user,
    args: MultiDict,
    allowed: frozenset[str] = COMMON_PARAMS,
    default_months: int | None = None,
) -> Parsed:
    """Read and check a statistics request; raise :class:`AppError` for bad parameters.

    Defaults: the user's own area, the level below it, this year up to today, all
    categories and channels. ``default_months`` makes the default period the last N
    calendar months instead.
    """
    refuse_unknown(args, allowed)
    area = requested_area(session, user, args)
    area_level = AreaLevel(area.level)

    level_text = (args.get("level") or "").strip().lower()
    if level_text:
        if level_text not in LEVELS:
            raise bad(
                "invalid_level",
                "参数 level 应为 county、town、village 或 grid",
                "level must be one of county, town, village, grid",
                parameter="level",
            )
        level = LEVELS[level_text]
        if LEVEL_ORDER.index(level) < LEVEL_ORDER.index(area_level):
            raise bad(
                "level_above_area",
                f"层级 {level.label} 高于所选区划（{area.name}，{area_level.label}）",
                "level is above the level of the area",
                parameter="level",
            )
    else:
        level = area_level.child or area_level

    by = (args.get("by") or "area").strip().lower()
    if by not in GROUPINGS:
        raise bad(
            "invalid_grouping",
            "参数 by 应为 area、category、channel 或 month",
            "by must be one of area, category, channel, month",
            parameter="by",
        )

    today = today_local()
    end = parse_date("to", args["to"]) if args.get("to") else today
    if args.get("from"):
        start = parse_date("from", args["from"])
    elif default_months:
        first = date(end.year, end.month, 1)
        for _ in range(default_months - 1):
            first = date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
        start = first
    else:
        start = date(end.year, 1, 1)
    if start > end:
        raise bad(
            "invalid_period", "起始日期不能晚于截止日期", "from is after to", parameter="from"
        )
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise bad(
            "period_too_long",
            "统计期最长十年",
            "the period may be at most ten years",
            parameter="from",
        )
    as_of = None
    if args.get("as_of"):
        as_of = local_midnight(parse_date("as_of", args["as_of"]) + timedelta(days=1))

    codes = _many(args, "category")
    category_ids: tuple[int, ...] = ()
    if codes:
        found = dict(
            session.execute(
                select(Category.code, Category.id).where(Category.code.in_(codes))
            ).all()
        )
        missing = [c for c in codes if c not in found]
        if missing:
            raise bad(
                "unknown_category",
                f"没有这个类别：{'、'.join(missing)}",
                f"unknown category code(s): {', '.join(missing)}",
                parameter="category",
            )
        category_ids = tuple(found[c] for c in codes)
    channels = _many(args, "channel")
    wrong = [c for c in channels if c not in {ch.value for ch in Channel}]
    if wrong:
        raise bad(
            "unknown_channel",
            f"没有这个渠道：{'、'.join(wrong)}",
            f"unknown channel(s): {', '.join(wrong)}",
            parameter="channel",
        )

    query = StatsQuery(
        area=area,
        period=Period(start, end, as_of),
        grouping=Grouping(by, level if by == "area" else None),
        filters=Filters(category_ids, tuple(channels)),
        scope=case_scope_sql(user),
        backlog_years=parse_backlog_years(args),
    )
    return Parsed(query, level, by, tuple(codes))
