"""The rules of this deployment: each county's time limits and the working-day calendar.

Read from the app config (``CASE_LIMITS``, ``HOLIDAY_OVERRIDES``, ``REPEAT_RADIUS_M``,
``REPEAT_WINDOW_DAYS``), or from the environment as JSON (``GRIDCASE_CASE_LIMITS``,
``GRIDCASE_HOLIDAY_OVERRIDES``) when the config does not set them. See
``cases.deadlines`` and ``cases.workdays`` for what they mean.
"""

from __future__ import annotations

import json
import os

from flask import current_app

from webapp.cases.deadlines import limits_for
from webapp.cases.workdays import national_calendar
from webapp.cases.workflow import Rules

DEFAULT_REPEAT_RADIUS_M = 300.0
DEFAULT_REPEAT_WINDOW_DAYS = 730


def _setting(name: str, default):
    config = current_app.config
    if name in config:
        return config[name]
    raw = os.environ.get(f"GRIDCASE_{name}")
    return json.loads(raw) if raw else default


def county_rules(county_code: str) -> Rules:
    """The limits of ``county_code`` and the calendar, cached on the app per county."""
    cache = current_app.extensions.setdefault("gridcase.case_rules", {})
    if county_code not in cache:
        limits = limits_for(_setting("CASE_LIMITS", {}), county_code)
        cache[county_code] = Rules(limits, national_calendar(_setting("HOLIDAY_OVERRIDES", {})))
    return cache[county_code]


def repeat_radius_m() -> float:
    return float(_setting("REPEAT_RADIUS_M", DEFAULT_REPEAT_RADIUS_M))


def repeat_window_days() -> int:
    return int(_setting("REPEAT_WINDOW_DAYS", DEFAULT_REPEAT_WINDOW_DAYS))
