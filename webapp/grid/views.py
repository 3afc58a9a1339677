"""Pages of the area hierarchy: the county home page and each area's page."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from webapp.db import get_session
from webapp.errors import NotFound
from webapp.grid import queries
from webapp.grid.models import AreaLevel

bp = Blueprint("grid", __name__)


@bp.get("/")
def index():
    session = get_session()
    county = queries.county(session, current_app.config["COUNTY_CODE"]) or queries.county(session)
    townships = queries.children_with_case_counts(session, county) if county else []
    return render_template("grid/index.html", county=county, townships=townships)


@bp.get("/areas/<code>")
def area(code: str):
    session = get_session()
    area = queries.get_area(session, code)
    if area is None:
        raise NotFound("区划")
    children = queries.children_with_case_counts(session, area)
    return render_template(
        "grid/area.html",
        area=area,
        level=AreaLevel(area.level),
        trail=queries.ancestors(session, area),
        children=children,
    )
