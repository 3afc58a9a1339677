"""Template globals: vocabulary labels, the demo flag, the navigation, formatting filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, g, request, url_for
from werkzeug.routing import BuildError

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


# (label, endpoint, roles or None for everyone). Entries whose endpoint does not
# exist yet are skipped, so a feature appears in the nav when its views do.
NAV = [
    ("首页", "grid.index", None),
    ("上报", "field.report", {"grid_worker", "village_informant", "township_leader", "county_staff"}),
    ("排查", "field.sweeps", {"grid_worker", "village_informant", "township_leader", "county_staff", "admin"}),
    ("案件", "cases.index", None),
    ("登记", "cases.register", {"county_staff", "admin"}),
    ("地图", "maps.index", {"township_leader", "county_staff", "leader_in_charge", "planner", "admin"}),
    ("统计", "stats.index", {"township_leader", "county_staff", "leader_in_charge", "planner", "admin"}),
    ("走访", "visits.index", None),
    ("数据交换", "exchange.index", {"county_staff", "planner", "admin"}),
]


def nav_items(user) -> list[NavItem]:
    items = []
    for label, endpoint, roles in NAV:
        if roles is not None and user.role not in roles:
            continue
        try:
            url = url_for(endpoint)
        except BuildError:
            continue
        active = request.endpoint == endpoint or (
            request.endpoint or ""
        ).split(".")[0] == endpoint.split(".")[0] and endpoint != "grid.index"
        items.append(NavItem(label, url, active))
    return items


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.globals.update(
        CHANNEL_LABELS=CHANNEL_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        CLASS_LABELS=CLASS_LABELS,
        nav_items=nav_items,
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
