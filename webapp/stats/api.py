"""``GET /api/v1/stats``: the figures of the areas, categories, channels or months of an area.

The same parameters and the same figures as the dashboard and the exports (see
``stats.params`` for the parameters and their error codes, ``stats.figures`` for what
every figure means, and docs/stats.md).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from webapp.auth.identity import current_user, roles_required
from webapp.auth.permissions import STATS_ROLES
from webapp.db import get_session
from webapp.errors import AppError
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
@roles_required(*STATS_ROLES)
def stats():
    # The API says what it means: an empty parameter is a client's mistake, not "default"
    # (the dashboard's form, which sends empty fields, reads them as defaults).
    empty = sorted({k for k, v in request.args.items(multi=True) if not v.strip()})
    if empty:
        raise AppError(
            "empty_parameter",
            "查询参数不能为空：" + "、".join(empty)[:200],
            400,
            "empty query parameter: " + ", ".join(empty)[:200],
            {"parameters": empty[:20]},
        )
    session = get_session()
    parsed = params.parse(session, current_user(), request.args)
    q = parsed.query
    rows = queries.figure_rows(session, q)
    total = queries.area_total(session, q, rows)
    return jsonify(
        {
            "area": {"code": q.area.code, "name": q.area.name, "level": q.area.level},
            "request": parsed.echo(),
            "figures": figure_meta(q.grouping.figures(AreaLevel(q.area.level))),
            "total": total,
            "rows": rows,
        }
    )
