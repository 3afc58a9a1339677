"""Map pages: the page with its filters (``maps.index``) and the folium document it frames.

The map document is served from its own route so that its CSP, and only its CSP,
allows folium's inline scripts (by a per-response nonce) and the configured tile
hosts. Both routes parse the same query string and check the same scope: an area
the user may not see answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, current_app, render_template, request, url_for

from webapp.auth.identity import current_user, roles_required
from webapp.auth.permissions import MAP_ROLES, case_scope_sql, may_see_area, may_see_single_cases
from webapp.cases.queries import categories as list_categories
from webapp.cases.vocab import CHANNEL_LABELS, STATUS_LABELS
from webapp.db import get_session
from webapp.errors import AppError, NotFound
from webapp.grid.models import CODE_LENGTH, LEVEL_LABELS, AreaLevel
from webapp.grid.queries import area_features
from webapp.maps import queries
from webapp.maps.assets import app_prefixes, document_response
from webapp.maps.basemap import basemap_from_config
from webapp.maps.figures import AREA_FIGURE_KEYS, FIGURES
from webapp.maps.params import (
    MAP_KINDS,
    NEIGHBOURHOODS,
    STATUS_GROUPS,
    WEIGHTS,
    MapParams,
    describe,
    parse,
    today_local,
)

if TYPE_CHECKING:
    from webapp.maps import builders

bp = Blueprint("maps", __name__, url_prefix="/maps")

# A cases map carries at most this many markers; above it, counts per area.
MARKER_LIMIT = 500
# Heat cells by the level of the area shown (about: cells are whole cells of the heat
# tally, queries.lattice_for); roles that may not see single cases get cells no side
# of which is under AGGREGATE_CELL_M. A county's and a township's cells are the tally's
# coarse cells (its whole months are read from it); villages and grids sum their cases.
HEAT_CELL_M = {
    AreaLevel.COUNTY: 500.0,
    AreaLevel.TOWNSHIP: 500.0,
    AreaLevel.VILLAGE: 100.0,
    AreaLevel.GRID: 50.0,
}
AGGREGATE_CELL_M = 250.0


@bp.record_once
def _check_basemap(state) -> None:
    basemap_from_config(state.app.config)  # a base map that cannot work stops the app at start


def _request(session, user) -> tuple[MapParams, queries.AreaInfo]:
    params = parse(request.args, today_local())
    code = params.area or user.area_code
    area = queries.area_info(session, code) if may_see_area(user, code) else None
    if area is None:
        raise NotFound("区划")
    if params.kind == "cases" and not may_see_single_cases(user):
        raise AppError(
            "no_single_cases",
            "您的角色只能查看汇总数据，不能查看单个案件的位置",
            403,
            "this role sees aggregates only",
        )
    return params, area


@bp.get("/")
@roles_required(*MAP_ROLES)
def index():
    user, session = current_user(), get_session()
    params, area = _request(session, user)
    today = today_local()
    trail = [a for a in queries.area_trail(session, area.code) if may_see_area(user, a.code)]
    kinds = {k: v for k, v in MAP_KINDS.items() if k != "cases" or may_see_single_cases(user)}
    return render_template(
        "maps/index.html",
        params=params,
        area=area,
        trail=trail,
        kinds=kinds,
        today=today,
        frame_url=url_for("maps.frame", **params.query(today, area=area.code)),
        link=lambda **changes: url_for("maps.index", **params.query(today, **changes)),
        categories=list_categories(session),
        channels=CHANNEL_LABELS,
        statuses=STATUS_LABELS,
        status_groups=STATUS_GROUPS,
        figures=FIGURES,
        weights=WEIGHTS,
        neighbourhoods=NEIGHBOURHOODS,
        levels=[
            lv for lv in AreaLevel if list(AreaLevel).index(lv) > list(AreaLevel).index(area.level)
        ],
        children=queries.child_areas(session, area),
        level_labels=LEVEL_LABELS,
        aggregate_only=not may_see_single_cases(user),
        marker_limit=MARKER_LIMIT,
    )


@bp.get("/frame")
@roles_required(*MAP_ROLES)
def frame():
    user, session = current_user(), get_session()
    params, area = _request(session, user)
    basemap = basemap_from_config(current_app.config)
    assets = app_prefixes()
    m = BUILD[params.kind](session, user, params, area, basemap, assets)
    return document_response(m, assets, basemap.hosts, basemap.origins)


# -- fetching each map's data -------------------------------------------------------------


def drill_target(area: queries.AreaInfo, code: str) -> str | None:
    """The area one level below ``area`` that holds the area ``code`` (None at the bottom)."""
    child = area.level.child
    if child is None or code == area.code:
        return None
    if child is AreaLevel.GRID:
        return code if len(code) > CODE_LENGTH[AreaLevel.VILLAGE] else None
    return code[: CODE_LENGTH[child]]


def _frame(
    session,
    user,
    params,
    area,
    basemap,
    assets,
    level: AreaLevel,
    title: str,
    notes=(),
    figure_keys: tuple[str, ...] = AREA_FIGURE_KEYS,
) -> builders.MapFrame:
    """What every map shows; ``figure_keys`` are the figures its tooltips read (none: no query)."""
    from webapp.maps import builders  # folium: imported by a map, not at app start

    tolerance = queries.simplify_tolerance(area.bounds)
    features = area_features(session, level, area.code, tolerance)
    figures = queries.area_figures(
        session,
        level,
        area.code,
        params.period(),
        params.filters(),
        case_scope_sql(user),
        figure_keys,
    )
    today = today_local()
    links: dict[str, str] = {}
    drill = {}
    for f in features["features"]:
        target = drill_target(area, f["properties"]["code"])
        if target is not None:
            if target not in links:
                links[target] = url_for("maps.index", **params.query(today, area=target))
            drill[f["properties"]["code"]] = links[target]
    names = {c.id: c.name for c in list_categories(session, active_only=False)}
    return builders.MapFrame(
        area=area,
        outline=queries.area_outline(session, area.code, tolerance),
        features=features,
        figures=figures,
        drill=drill,
        basemap=basemap,
        assets=assets,
        title=f"{area.name} · {title}",
        notes=tuple(describe(params, names)) + tuple(notes),
    )


def _child_level(area: queries.AreaInfo) -> AreaLevel:
    return area.level.child or area.level


def _heat(session, user, params, area, basemap, assets):
    from webapp.maps import builders  # folium: imported by a map, not at app start

    heat = queries.heat_lattice(
        session,
        area,
        HEAT_CELL_M[area.level],
        params.case_filter(),
        case_scope_sql(user),
        params.weight,
        min_cell_m=0.0 if may_see_single_cases(user) else AGGREGATE_CELL_M,
    )
    frame = _frame(
        session,
        user,
        params,
        area,
        basemap,
        assets,
        _child_level(area),
        "热力图",
        (f"权重：{WEIGHTS[params.weight]}",),
        builders.HEAT_FIGURE_KEYS,
    )
    return builders.heat_map(frame, heat)


def _choropleth(session, user, params, area, basemap, assets):
    from webapp.maps import builders  # folium: imported by a map, not at app start

    level = _child_level(area)
    if params.level and list(AreaLevel).index(AreaLevel(params.level)) > list(AreaLevel).index(
        area.level
    ):
        level = AreaLevel(params.level)
    frame = _frame(
        session,
        user,
        params,
        area,
        basemap,
        assets,
        level,
        FIGURES[params.figure].label,
        (f"按{LEVEL_LABELS[level]}显示", FIGURES[params.figure].definition.definition),
    )
    return builders.choropleth_map(frame, params.figure)


def _hotspots(session, user, params, area, basemap, assets):
    from webapp.maps import builders  # folium: imported by a map, not at app start

    level = AreaLevel(params.hs_level)
    if area.level is AreaLevel.GRID:
        level = AreaLevel.GRID  # a grid holds no village: show the grid itself
    analysis = queries.area_hot_spots(
        session,
        area,
        level,
        user.area_code,
        params.case_filter(),
        case_scope_sql(user),
        per_1000=params.per_1000,
        neighbourhood=params.neighbourhood,
        band_m=params.band_m if params.neighbourhood == "distance" else None,
        fdr=params.fdr,
    )
    notes = [f"分析单元：{LEVEL_LABELS[level]}（共 {analysis.units} 个）"]
    if analysis.region.code != area.code:
        notes.append(
            f"本区域{LEVEL_LABELS[level]}不足 {queries.MIN_HOTSPOT_AREAS} 个，"
            f"在「{analysis.region.name}」范围内分析"
        )
    if analysis.result is None:
        notes.append("参与分析的区域过少，无法进行热点分析")
    elif analysis.units < queries.MIN_HOTSPOT_AREAS:
        notes.append(f"参与分析的区域少于 {queries.MIN_HOTSPOT_AREAS} 个，结果仅供参考")
    nb = NEIGHBOURHOODS[params.neighbourhood]
    if params.neighbourhood == "distance":
        nb += f" {params.band_m:,.0f} 米"
    counted = FIGURES["per_1000" if params.per_1000 else "cases"].label
    notes.append(f"邻域：{nb}；计数：{counted}")
    # The tooltips show the analysis' own values: no figures of the areas are read.
    frame = _frame(
        session, user, params, area, basemap, assets, level, "热点分析", notes, figure_keys=()
    )
    return builders.hotspot_map(frame, analysis)


def _cases(session, user, params, area, basemap, assets):
    from webapp.maps import builders  # folium: imported by a map, not at app start

    scope = case_scope_sql(user)
    total = queries.count_cases(session, area.code, params.case_filter(), scope)
    level = _child_level(area)
    points = None
    if total <= MARKER_LIMIT or area.level in (AreaLevel.VILLAGE, AreaLevel.GRID):
        points = queries.case_points(session, area.code, params.case_filter(), scope, MARKER_LIMIT)
    frame = _frame(
        session,
        user,
        params,
        area,
        basemap,
        assets,
        level,
        "案件分布",
        figure_keys=builders.CASES_FIGURE_KEYS,
    )
    return builders.cases_map(
        frame, total, points, lambda case_id: url_for("cases.detail", case_id=case_id)
    )


BUILD = {"heat": _heat, "choropleth": _choropleth, "hotspots": _hotspots, "cases": _cases}
