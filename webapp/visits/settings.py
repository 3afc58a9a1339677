"""Configuration of door-to-door visits: default weights, windows and limits.

Every value can be set in the app config (``VISITS_*``); the default weights can
also come from the environment as JSON, e.g.
``GRIDCASE_VISITS_WEIGHTS='{"overdue": 30, "hot_spot": 10}'``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from webapp.visits.targeting import DEFAULT_WEIGHTS, Rules, Weights

DEFAULTS: dict[str, object] = {
    # Points per unit of each factor (see targeting.FACTOR_UNITS); planners change them per plan.
    "VISITS_WEIGHTS": {k.value: v for k, v in DEFAULT_WEIGHTS.items()},
    # Visits a person makes a day unless the planner says otherwise.
    "VISITS_DEFAULT_CAPACITY": 8,
    "VISITS_MAX_CAPACITY": 200,
    # Longest plan, in days.
    "VISITS_MAX_DAYS": 31,
    # A leader's case unresolved this long since first raised is a backlog case (积案).
    "VISITS_BACKLOG_DAYS": 365,
    # A dissatisfied follow-up older than this (days) no longer makes a case a target.
    "VISITS_DISSATISFIED_WINDOW_DAYS": 365,
    # A grid becomes a target when nobody recorded a visit in it for this many days.
    "VISITS_GRID_UNVISITED_DAYS": 30,
    # Gi* hot spots are computed over cases reported in this many past days ...
    "VISITS_HOT_SPOT_DAYS": 365,
    # ... and count from this bin up (2: hot at 95 % confidence, 3: at 99 %).
    "VISITS_HOT_SPOT_MIN_BIN": 2,
    # Targets nobody can take are kept on the plan up to this many (the rest are counted).
    "VISITS_MAX_UNASSIGNED": 300,
    # A tile URL template served inside the network (e.g. a local Tianditu mirror) for
    # the plan map; None draws the boundaries only (nothing is loaded from outside).
    "VISITS_MAP_TILES": None,
    "VISITS_MAP_TILES_ATTRIBUTION": "",
}


@dataclass(frozen=True)
class VisitSettings:
    weights: Weights
    rules: Rules
    default_capacity: int
    max_capacity: int
    max_days: int
    dissatisfied_window_days: int
    grid_unvisited_days: int
    hot_spot_days: int
    max_unassigned: int
    map_tiles: str | None
    map_tiles_attribution: str


def visit_settings(config: Mapping[str, object]) -> VisitSettings:
    """Read the visit settings from an app config, falling back to the defaults."""

    def get(key: str) -> object:
        return config.get(key, DEFAULTS[key])

    def number(key: str) -> int:
        return int(get(key))  # type: ignore[call-overload]

    weights = get("VISITS_WEIGHTS")
    tiles = get("VISITS_MAP_TILES")
    return VisitSettings(
        weights=Weights.parse(weights if isinstance(weights, Mapping) else {}),
        rules=Rules(
            backlog_days=number("VISITS_BACKLOG_DAYS"),
            hot_spot_min_bin=number("VISITS_HOT_SPOT_MIN_BIN"),
        ),
        default_capacity=number("VISITS_DEFAULT_CAPACITY"),
        # the database allows at most 200 visits a day (visit_plan_people check)
        max_capacity=min(number("VISITS_MAX_CAPACITY"), 200),
        max_days=number("VISITS_MAX_DAYS"),
        dissatisfied_window_days=number("VISITS_DISSATISFIED_WINDOW_DAYS"),
        grid_unvisited_days=number("VISITS_GRID_UNVISITED_DAYS"),
        hot_spot_days=number("VISITS_HOT_SPOT_DAYS"),
        max_unassigned=number("VISITS_MAX_UNASSIGNED"),
        map_tiles=str(tiles) if tiles else None,
        map_tiles_attribution=str(get("VISITS_MAP_TILES_ATTRIBUTION") or ""),
    )


def init_app(app) -> None:
    """Put the defaults into the app config; read default weights from the environment."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    raw = os.environ.get("GRIDCASE_VISITS_WEIGHTS")
    if raw:
        try:
            given = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"GRIDCASE_VISITS_WEIGHTS is not JSON: {exc}") from exc
        app.config["VISITS_WEIGHTS"] = Weights.parse(given, app.config["VISITS_WEIGHTS"]).as_dict()
    if "GRIDCASE_VISITS_MAP_TILES" in os.environ:
        app.config["VISITS_MAP_TILES"] = os.environ["GRIDCASE_VISITS_MAP_TILES"] or None
