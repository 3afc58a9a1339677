"""Template globals: vocabulary labels, the demo flag, formatting filters."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, g

from webapp.cases.vocab import CHANNEL_LABELS, CLASS_LABELS, STATUS_LABELS

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(LOCAL_TZ)
    return value.strftime(fmt)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.globals.update(
        CHANNEL_LABELS=CHANNEL_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        CLASS_LABELS=CLASS_LABELS,
    )

    @app.context_processor
    def demo_flag():
        return {"is_demo": _is_demo}


def _is_demo() -> bool:
    """Whether the database holds the fictional demo county (cached per request)."""
    if "is_demo" not in g:
        from webapp.db import get_session
        from webapp.grid.queries import is_demo

        g.is_demo = is_demo(get_session())
    return g.is_demo
