"""JSON for the field page's offline queue and for clients: outcomes, today's stops, progress."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, jsonify, request

from webapp.auth.identity import current_user
from webapp.db import get_session
from webapp.errors import AppError, NotFound
from webapp.visits import outcomes, planning, queries
from webapp.visits.presenting import stop_view

bp = Blueprint("visits_api", __name__, url_prefix="/api/v1/visits")


@bp.post("/stops/<int:stop_id>/outcomes")
def record(stop_id: int):
    """Record one outcome; 201 the first time, 200 with ``created: false`` for a resend."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise AppError("invalid_json", "请求内容须为 JSON 对象", 400, "a JSON object is required")
    user = current_user()
    session = get_session()
    inp = outcomes.parse_outcome(data, queries.db_now(session))
    result = outcomes.record_outcome(session, user, stop_id, inp)
    session.commit()
    return jsonify(result.as_dict()), 201 if result.created else 200


@bp.get("/today")
def today():
    """The signed-in person's stops of a day (default today) on published plans, in order."""
    user = current_user()
    session = get_session()
    raw = request.args.get("day")
    try:
        # An empty ``day=`` is a client's mistake, not "today" (like every /api/v1 filter).
        day = queries.local_today(session) if raw is None else date.fromisoformat(raw)
    except ValueError:
        raise AppError("invalid_parameter", "日期格式应为 YYYY-MM-DD", 400) from None
    views = [stop_view(r, user.id, True) for r in queries.my_stops(session, user.id, day)]
    if queries.log_contact_views(session, user, views, day=day.isoformat(), page="api"):
        session.commit()
    return jsonify(
        {
            "day": day.isoformat(),
            "stops": [
                {
                    "id": v.id,
                    "plan_id": v.plan_id,
                    "seq": v.seq,
                    "kind": v.kind,
                    "follow_up": v.follow_up,
                    "title": v.title,
                    "grid": v.grid_name,
                    "lon": v.lon,
                    "lat": v.lat,
                    "leg_m": v.leg_m,
                    "leg_kind": v.leg_kind,
                    "state": v.state,
                    "reasons": [r["text"] for r in v.reasons],
                    "petitioner_name": v.petitioner_name,
                    "petitioner_phone": v.petitioner_phone,
                }
                for v in views
            ],
        }
    )


@bp.get("/plans/<int:plan_id>/progress")
def progress(plan_id: int):
    """Done / nobody home / refused / pending per person, for planners."""
    user = current_user()
    session = get_session()
    plan = queries.get_plan(session, plan_id)
    if plan is None or not planning.may_manage_plan(user, plan):
        raise NotFound("走访计划")
    people = queries.plan_people(session, plan.id)
    keys = ("total", "done", "nobody_home", "refused", "pending")
    return jsonify(
        {
            "plan_id": plan.id,
            "status": plan.status,
            "version": plan.version,
            "people": [
                {
                    "user_id": p.user_id,
                    "name": p.display_name,
                    **{k: getattr(p, k) for k in keys},
                    "distance_m": round(float(p.distance_m), 1),
                }
                for p in people
            ],
            "totals": {k: sum(getattr(p, k) for p in people) for k in keys},
        }
    )
