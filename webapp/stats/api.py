"""``GET /api/v1/stats``: the figures of the areas, categories, channels or months of an area.

The same parameters and the same figures as the dashboard and the exports (see
``stats.params`` for the parameters and their error codes, ``stats.figures`` for what
every figure means, and docs/stats.md).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from webapp.auth.identity import current_user, roles_required
from webapp.db import get_session
from webapp.grid.models import AreaLevel
from webapp.stats import params, queries

bp = Blueprint("stats_api", __name__, url_prefix="/api/v1")


def figure_meta(figures) -> list[dict]:
    return [
        {
            "key": f.key,
            "name": f.name,
            "unit": f.unit,
            "kind": f.kind,
            "basis": f.basis,
            "definition": f.definition,
        }
        for f in figures
    ]


@bp.get("/stats")
@roles_required(*params.STATS_ROLES)
def stats():
    session = get_session()
    parsed = params.parse(session, current_user(), request.args)
    q = parsed.query
    rows = queries.figure_rows(session, q)
    total = queries.area_total(session, q)
    return jsonify(
        {
            "area": {"code": q.area.code, "name": q.area.name, "level": q.area.level},
            "request": parsed.echo(),
            "figures": figure_meta(q.grouping.figures(AreaLevel(q.area.level))),
            "total": total,
            "rows": rows,
        }
    )
