"""Template globals: vocabulary labels, the demo flag, the navigation and home shortcuts, filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, g, request, url_for
from werkzeug.routing import BuildError

from webapp.auth import permissions
from webapp.cases.vocab import CHANNEL_LABELS, CLASS_LABELS, STATUS_LABELS

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(LOCAL_TZ)
    return value.strftime(fmt)


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


def _anyone(user) -> bool:
    return True


def _sweeps(user) -> bool:
    # Who files sweeps gets the form; who oversees them, the coverage (field.sweeps sends them on).
    return permissions.files_sweeps(user) or permissions.may_see_sweep_coverage(user)


def _visits(user) -> bool:
    return permissions.may_plan_visits(user) or permissions.may_visit(user)


# (label, endpoint, who may use it: a predicate of auth.permissions). Entries whose
# endpoint does not exist are skipped, so a feature appears when its views do.
NAV = [
    ("首页", "grid.index", _anyone),
    ("上报", "field.report", permissions.may_report_from_field),
    ("排查", "field.sweeps", _sweeps),
    ("案件", "cases.index", _anyone),
    ("登记", "cases.register", permissions.may_register_cases),
    ("地图", "maps.index", permissions.may_read_maps),
    ("统计", "stats.index", permissions.may_read_stats),
    ("走访", "visits.index", _visits),
    ("数据交换", "exchange.index", permissions.may_exchange),
]
# Pages that belong to an entry other than the first of their feature's.
NAV_OWNER = {"field.coverage": "field.sweeps"}


def _url(endpoint: str, **values) -> str | None:
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def nav_items(user) -> list[NavItem]:
    """The navigation for ``user``: the page shown is marked, else the entry of its feature."""
    entries = [
        (label, endpoint, url)
        for label, endpoint, may in NAV
        if may(user) and (url := _url(endpoint)) is not None
    ]
    current = NAV_OWNER.get(request.endpoint or "", request.endpoint or "")
    if not any(endpoint == current for _, endpoint, _ in entries):
        feature = current.split(".")[0]
        current = next(
            (e for _, e, _ in entries if e.split(".")[0] == feature and e != "grid.index"), current
        )
    return [NavItem(label, url, endpoint == current) for label, endpoint, url in entries]


@dataclass(frozen=True)
class Shortcut:
    label: str
    hint: str
    url: str


# The home page's shortcuts: a role's daily work, first things first (label, hint,
# endpoint, who may use it).
SHORTCUTS = [
    (
        "现场上报",
        "在现场用手机上报矛盾纠纷，可离线",
        "field.report",
        permissions.may_report_from_field,
    ),
    ("本期排查", "报送本网格本期排查，无发现也要零报告", "field.sweeps", permissions.files_sweeps),
    ("今日走访", "按路线入户走访，记录结果和回访满意度", "visits.today", permissions.may_visit),
    ("走访计划", "确定走访对象，分派人员和路线", "visits.index", permissions.may_plan_visits),
    (
        "登记来访来信",
        "窗口登记来访、来信、网上信访",
        "cases.register",
        permissions.may_register_cases,
    ),
    ("临期和超期案件", "按期限督办", "cases.due", _anyone),
    ("统计", "辖区指标、排名、趋势和月报", "stats.index", permissions.may_read_stats),
    ("地图", "热力图、指标地图和热点分析", "maps.index", permissions.may_read_maps),
    ("信访要情", "异常增多和热点演变预警", "stats.warning_panel", permissions.may_read_stats),
    ("排查覆盖", "哪些网格本期未报送排查", "field.coverage", permissions.may_see_sweep_coverage),
    ("数据交换", "台账导入，案件和区划导出", "exchange.index", permissions.may_exchange),
    ("案件", "辖区内的全部案件", "cases.index", _anyone),
]


def home_shortcuts(user) -> list[Shortcut]:
    """What ``user``'s home page leads to: every page of their daily work they may use."""
    return [
        Shortcut(label, hint, url)
        for label, hint, endpoint, may in SHORTCUTS
        if may(user) and (url := _url(endpoint)) is not None
    ]


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.globals.update(
        CHANNEL_LABELS=CHANNEL_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        CLASS_LABELS=CLASS_LABELS,
        nav_items=nav_items,
        home_shortcuts=home_shortcuts,
        may_register_cases=permissions.may_register_cases,
    )

    @app.context_processor
    def demo_flag():
        return {"is_demo": _is_demo}


def _is_demo() -> bool:
    """Whether the database holds the fictional demo county (cached per request)."""
    if "is_demo" not in g:
        from webapp.db import get_session
        from webapp.grid.queries import is_demo

        try:
            g.is_demo = is_demo(get_session())
        except Exception:  # an error page must render even when the database is down
            g.is_demo = False
    return g.is_demo
