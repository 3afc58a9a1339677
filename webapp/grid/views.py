"""Pages of the area hierarchy: the home page and each area's page, within the user's scope."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from webapp.auth.identity import current_user
from webapp.auth.permissions import case_scope_sql, may_see_area
from webapp.db import get_session
from webapp.errors import NotFound
from webapp.grid import queries
from webapp.grid.models import AreaLevel

bp = Blueprint("grid", __name__)


@bp.get("/")
def index():
    user = current_user()
    session = get_session()
    if len(user.area_code) != 6:
        return redirect(url_for("grid.area", code=user.area_code))
    county = queries.get_area(session, user.area_code)
    townships = (
        queries.children_with_case_counts(session, county, case_scope_sql(user)) if county else []
    )
    return render_template("grid/index.html", county=county, townships=townships)


@bp.get("/areas/<code>")
def area(code: str):
    user = current_user()
    session = get_session()
    area = queries.get_area(session, code) if may_see_area(user, code) else None
    if area is None:
        raise NotFound("区划")
    children = queries.children_with_case_counts(session, area, case_scope_sql(user))
    trail = [a for a in queries.ancestors(session, area) if may_see_area(user, a.code)]
    return render_template(
        "grid/area.html", area=area, level=AreaLevel(area.level), trail=trail, children=children
    )
