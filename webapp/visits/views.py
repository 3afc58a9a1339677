"""Pages of door-to-door visits: plans for planners, today's stops for the people walking them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from webapp.auth import audit
from webapp.auth.identity import current_user
from webapp.auth.permissions import may_plan_visits, may_see_area, may_visit
from webapp.auth.roles import ROLE_LABELS
from webapp.cases.queries import categories
from webapp.db import get_session
from webapp.errors import AppError, NotFound, wants_json
from webapp.forms import content_hash, form_id
from webapp.grid.queries import get_area
from webapp.maps.assets import app_prefixes, document_response
from webapp.maps.basemap import NO_BASEMAP, BaseMap, TileSource
from webapp.visits import outcomes, planning, queries, settings
from webapp.visits.builders import plan_map
from webapp.visits.models import OUTCOME_LABELS, STATE_LABELS, PlanStatus, VisitPlan
from webapp.visits.presenting import (
    ON_A_PLAN,
    by_person_day,
    day_label,
    distance_label,
    map_data,
    stop_view,
)
from webapp.visits.settings import visit_settings
from webapp.visits.targeting import FACTOR_LABELS, FACTOR_UNITS, Factor, Weights

bp = Blueprint("visits", __name__, url_prefix="/visits")
LARGE_PLAN = 300  # stops; a larger plan's page shows one person at a time


def case_url(case_id: int | None) -> str | None:
    """The case file page of a case (None for a grid stop)."""
    return None if case_id is None else url_for("cases.detail", case_id=case_id)


def init_app(app) -> None:
    settings.init_app(app)
    app.jinja_env.globals.update(
        visit_case_url=case_url,
        visit_day_label=day_label,
        visit_distance=distance_label,
        VISIT_STATE_LABELS=STATE_LABELS,
        VISIT_OUTCOME_LABELS=OUTCOME_LABELS,
        ROLE_LABELS=ROLE_LABELS,
    )


def _settings():
    return visit_settings(current_app.config)


def _int_arg(name: str) -> int | None:
    """An account id: ASCII digits within PostgreSQL's integer (beyond it the query fails)."""
    raw = request.values.get(name, "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) < 2**31):
        raise AppError("invalid_parameter", f"参数 {name} 无效", 400)
    return int(raw)


def _date_arg(name: str) -> date | None:
    raw = request.values.get(name, "")
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        raise AppError("invalid_parameter", f"日期 {name} 格式应为 YYYY-MM-DD", 400) from None


def _user_day(raw: str) -> tuple[int | None, date | None]:
    """Parse the "user_id|YYYY-MM-DD" of a move form ("" = unassigned)."""
    if not raw:
        return None, None
    try:
        uid, day = raw.split("|", 1)
        return int(uid), date.fromisoformat(day)
    except ValueError:
        raise AppError("invalid_parameter", "请选择人员和日期", 400) from None


# -- index ------------------------------------------------------------------------------


@bp.get("/")
def index():
    user = current_user()
    session = get_session()
    if not may_plan_visits(user):
        return redirect(url_for("visits.today"))
    plans = queries.plans_within(session, user.area_code)
    mine = queries.my_days(session, user.id, queries.local_today(session))
    return render_template("visits/index.html", plans=plans, my_days=mine, PlanStatus=PlanStatus)


# -- making a plan ----------------------------------------------------------------------


@bp.get("/new")
def new():
    user = current_user()
    _require_planner(user)
    return _new_form(user, request.args.get("area") or "")


def _new_form(
    user, area_code: str, form=None, error: AppError | None = None, client_id: str | None = None
):
    """The new-plan form; after a refused submission, with what was typed and the problems.

    ``client_id``: the form's id (``webapp.forms``), kept while the same form is sent again.
    """
    session = get_session()
    cfg = _settings()
    area = get_area(session, area_code) if area_code and may_see_area(user, area_code) else None
    if area_code and area is None:
        raise NotFound("区划")
    today = queries.local_today(session)
    weights = cfg.weights
    if form is not None:
        try:
            weights = Weights.parse(form, cfg.weights.as_dict())
        except AppError:
            pass  # the error message names the bad weight; show the defaults again
    page = render_template(
        "visits/new.html",
        areas=queries.areas_for_planning(session, user.area_code),
        area=area,
        people=queries.eligible_people(session, area.code) if area else [],
        today=today,
        default_from=today + timedelta(days=1),
        default_to=today + timedelta(days=5),
        cfg=cfg,
        factors=_factor_rows(weights),
        rules=cfg.rules,
        form=form or {},
        error=error,
        client_id=client_id or str(uuid.uuid4()),
    )
    return (page, error.status) if error else page


@bp.post("/new")
def create():
    user = current_user()
    _require_planner(user)
    session = get_session()
    cfg = _settings()
    # An area out of reach is 404 like a missing one, before anything else is looked at.
    code = (request.form.get("area") or "").strip()
    if code and not (code.isdigit() and may_see_area(user, code) and get_area(session, code)):
        raise NotFound("区划")
    client_id, digest = form_id(request.form.get("client_id")), content_hash(request.form)
    try:
        made = queries.plan_made_by_form(session, client_id)
        if made is not None:  # the same form again: a double click, a retried POST
            if made.created_by != user.id or made.request_hash != digest:
                raise AppError(
                    "form_resubmitted",
                    "这张表已生成过另一个计划；如要制定新的计划，请按本页重新填写后提交",
                    409,
                    "this form already made another plan",
                )
            session.rollback()
            flash("这张表已生成过这个计划，未重复生成。", "info")
            return redirect(url_for("visits.plan", plan_id=made.id))
        req = planning.parse_plan_request(request.form, cfg, queries.local_today(session))
        plan = planning.make_plan(session, user, req, cfg)
        plan.client_id, plan.request_hash = uuid.UUID(client_id), digest
        session.flush()
        _audit(session, user, "visit_plan_create", plan)
    except AppError as exc:
        # A script posting the form (Accept: application/json) gets the error itself.
        if exc.status >= 500 or exc.code in ("not_found", "forbidden_role") or wants_json():
            raise
        session.rollback()
        if exc.code == "form_resubmitted":  # what was typed stays, on a form of its own
            client_id = str(uuid.uuid4())
        return _new_form(user, request.form.get("area", ""), request.form, exc, client_id)
    session.commit()
    flash("已生成计划草稿。请检查目标、分工和路线，确认后发布给走访人员。", "info")
    return redirect(url_for("visits.plan", plan_id=plan.id))


def _require_planner(user) -> None:
    if not may_plan_visits(user):
        raise AppError(
            "forbidden_role", "您的角色无权制定走访计划", 403, "not allowed to plan visits"
        )


def _factor_rows(weights: Weights) -> list[dict]:
    return [
        {"key": f.value, "label": FACTOR_LABELS[f], "unit": FACTOR_UNITS[f], "value": weights[f]}
        for f in Factor
    ]


# -- a plan -----------------------------------------------------------------------------


def _plan_context(session, user, plan: VisitPlan, only_user: int | None) -> dict:
    people = queries.plan_people(session, plan.id)
    total = sum(p.total for p in people)
    if only_user is None and total > LARGE_PLAN and people:
        only_user = people[0].user_id
    rows = queries.stop_rows(session, plan.id, user_id=only_user, assigned=True)
    views = [stop_view(r, ON_A_PLAN, plan.published) for r in rows]
    loose = [
        stop_view(r, ON_A_PLAN, plan.published)
        for r in queries.stop_rows(session, plan.id, assigned=False)
    ]
    loads = queries.day_loads(session, plan.id)
    slots = [
        {
            "value": f"{p.user_id}|{d.isoformat()}",
            "label": f"{p.display_name} · {day_label(d)}"
            f"（{loads.get((p.user_id, d), 0)}/{p.daily_capacity}）",
            "full": loads.get((p.user_id, d), 0) >= p.daily_capacity,
        }
        for p in people
        for d in planning.days_between(plan.date_from, plan.date_to)
    ]
    return {
        "plan": plan,
        "area": queries.plan_area(session, plan),
        "people": people,
        "groups": by_person_day(views),
        "unassigned": loose,
        "only_user": only_user,
        "slots": slots,
        "factors": _factor_rows(Weights(plan.weights)),
        "rules": _settings().rules,
        "totals": {
            k: sum(getattr(p, k) for p in people)
            for k in ("total", "done", "nobody_home", "refused", "pending")
        },
        "distance_m": sum(p.distance_m for p in people),
        "routing": routing_note(session, plan),
    }


def routing_note(session, plan: VisitPlan) -> dict:
    """How the plan's routes are measured, for the line above its map."""
    net = planning.plan_network(session, plan)
    kinds = queries.leg_kinds(session, plan.id)
    return {"network": net, "kinds": kinds, "road_legs": kinds.get("road", 0)}


@bp.get("/plans/<int:plan_id>")
def plan(plan_id: int):
    user = current_user()
    session = get_session()
    plan = planning.plan_for_planner(session, user, plan_id)
    return render_template(
        "visits/plan.html", **_plan_context(session, user, plan, _int_arg("user"))
    )


def _plan_for_viewer(session, user, plan_id: int, only_user: int | None) -> VisitPlan:
    """A plan for its map or sheets: its planners see it all; a visitor, their own part once
    published (``only_user`` is them). Anything else is 404, like a missing plan."""
    plan = queries.get_plan(session, plan_id)
    if plan is None:
        raise NotFound("走访计划")
    own = plan.published and only_user == user.id
    if not (own or planning.may_manage_plan(user, plan)):
        raise NotFound("走访计划")
    return plan


@bp.get("/plans/<int:plan_id>/map")
def plan_map_page(plan_id: int):
    """The plan map as its own document (folium's inline scripts run by a nonce, here only)."""
    user = current_user()
    session = get_session()
    only_user, only_day = _int_arg("user"), _date_arg("day")
    plan = _plan_for_viewer(session, user, plan_id, only_user)
    rows = queries.stop_rows(session, plan.id, user_id=only_user, day=only_day, assigned=True)
    views = [stop_view(r, user.id, plan.published) for r in rows]
    people = queries.plan_people(session, plan.id)
    loose = []
    if only_user is None and planning.may_manage_plan(user, plan):
        loose = [
            stop_view(r, user.id, plan.published)
            for r in queries.stop_rows(session, plan.id, assigned=False)
        ]
    cfg = _settings()
    data = map_data(
        by_person_day(views),
        {p.user_id: (p.start_lon, p.start_lat, p.start_label) for p in people},
        loose,
        queries.area_outline(session, plan.area_code),
        [p.user_id for p in people],
        cfg.map_tiles,
        cfg.map_tiles_attribution,
        queries.leg_paths(session, plan.id, only_user, only_day),
    )
    assets = app_prefixes()
    tiles = TileSource("底图", cfg.map_tiles, "", "abc") if cfg.map_tiles else None
    basemap = BaseMap("xyz", (tiles,)) if tiles else NO_BASEMAP
    return document_response(plan_map(data, assets), assets, basemap.hosts, basemap.origins)


@bp.get("/plans/<int:plan_id>/sheet")
def sheet(plan_id: int):
    """Printable sheets, one per person and day (the visitor's own show contacts whole)."""
    user = current_user()
    session = get_session()
    only_user, only_day = _int_arg("user"), _date_arg("day")
    plan = _plan_for_viewer(session, user, plan_id, only_user)
    rows = queries.stop_rows(session, plan.id, user_id=only_user, day=only_day, assigned=True)
    views = [stop_view(r, user.id, plan.published) for r in rows]
    _log_contacts(session, user, views, plan_id=plan.id, page="sheet")
    people = {p.user_id: p for p in queries.plan_people(session, plan.id)}
    manager = planning.may_manage_plan(user, plan)
    back = (
        url_for("visits.plan", plan_id=plan.id)
        if manager
        else url_for("visits.today", day=only_day)
    )
    return render_template(
        "visits/sheet.html",
        plan=plan,
        area=queries.plan_area(session, plan),
        groups=by_person_day(views),
        people=people,
        back_url=back,
        routing=routing_note(session, plan),
    )


def _audit(session, user, action: str, plan: VisitPlan, **detail) -> None:
    """Every change to a plan is in the audit log, with the plan and what changed."""
    audit.record(
        session, action, user, detail={"plan_id": plan.id, "area": plan.area_code, **detail}
    )


def _log_contacts(session, user, views, **detail) -> None:
    if queries.log_contact_views(session, user, views, **detail):
        session.commit()


def _edit_target(plan_id: int):
    user = current_user()
    session = get_session()
    return user, session, planning.plan_for_planner(session, user, plan_id, lock=True)


def _back(plan_id: int, anchor: str = ""):
    target = request.form.get("next") or ""
    if target.startswith("/visits/") and not target.startswith("//"):
        return redirect(target + anchor)
    return redirect(url_for("visits.plan", plan_id=plan_id) + anchor)


@bp.post("/plans/<int:plan_id>/regenerate")
def regenerate(plan_id: int):
    user, session, plan = _edit_target(plan_id)
    cfg = _settings()
    weights = Weights.parse(request.form, plan.weights)
    capacities = {}
    for key, value in request.form.items():
        if key.startswith("capacity_") and value:
            try:
                capacities[int(key[9:])] = int(value)
            except ValueError:
                raise AppError("invalid_capacity", "每日走访数须为整数") from None
    planning.regenerate(session, plan, user, weights, capacities, cfg)
    _audit(session, user, "visit_plan_regenerate", plan)
    session.commit()
    flash("已按新的权重和人员安排重新生成计划。", "info")
    return redirect(url_for("visits.plan", plan_id=plan.id))


@bp.post("/plans/<int:plan_id>/publish")
def publish(plan_id: int):
    user, session, plan = _edit_target(plan_id)
    planning.publish(session, plan)
    _audit(session, user, "visit_plan_publish", plan)
    session.commit()
    flash("计划已发布：走访人员现在可以在“今日走访”中看到各自的走访点。", "info")
    return redirect(url_for("visits.plan", plan_id=plan.id))


@bp.post("/plans/<int:plan_id>/delete")
def delete(plan_id: int):
    user, session, plan = _edit_target(plan_id)
    _audit(session, user, "visit_plan_delete", plan)
    planning.delete_draft(session, plan)
    session.commit()
    flash("草稿已删除。", "info")
    return redirect(url_for("visits.index"))


@bp.post("/plans/<int:plan_id>/optimise")
def optimise(plan_id: int):
    user, session, plan = _edit_target(plan_id)
    uid, day = _user_day(request.form.get("user_day", ""))
    n = planning.optimise(session, plan, uid, day)
    _audit(
        session,
        user,
        "visit_plan_optimise",
        plan,
        user_id=uid,
        day=day.isoformat() if day else None,
    )
    session.commit()
    flash(f"已重新优化 {n} 条路线（已走访的点保持原位）。", "info")
    return _back(plan.id)


@bp.post("/plans/<int:plan_id>/stops/<int:stop_id>/drop")
def drop(plan_id: int, stop_id: int):
    user, session, plan = _edit_target(plan_id)
    planning.drop_stop(session, plan, stop_id)
    _audit(session, user, "visit_stop_drop", plan, stop_id=stop_id)
    session.commit()
    flash("已从计划中删除该走访点。", "info")
    return _back(plan.id)


@bp.post("/plans/<int:plan_id>/stops/<int:stop_id>/move")
def move(plan_id: int, stop_id: int):
    user, session, plan = _edit_target(plan_id)
    if request.form.get("direction") in ("up", "down"):
        stop = queries.get_stop(session, plan.id, stop_id)
        if stop is None or stop.user_id is None:
            raise NotFound("走访点")
        step = -1 if request.form["direction"] == "up" else 1
        planning.move_stop(
            session, plan, stop_id, stop.user_id, stop.day, max(1, (stop.seq or 1) + step)
        )
    else:
        uid, day = _user_day(request.form.get("user_day", ""))
        planning.move_stop(session, plan, stop_id, uid, day, _int_arg("position"))
    _audit(session, user, "visit_stop_move", plan, stop_id=stop_id)
    session.commit()
    return _back(plan.id, f"#stop-{stop_id}")


@bp.get("/plans/<int:plan_id>/stops/<int:stop_id>")
def stop(plan_id: int, stop_id: int):
    user = current_user()
    session = get_session()
    plan = planning.plan_for_planner(session, user, plan_id)
    rows = [r for r in queries.stop_rows(session, plan.id) if r.id == stop_id]
    if not rows:
        raise NotFound("走访点")
    ctx = _plan_context(session, user, plan, None)
    return render_template(
        "visits/stop.html",
        plan=plan,
        stop=stop_view(rows[0], ON_A_PLAN, plan.published),
        slots=ctx["slots"],
    )


@bp.post("/plans/<int:plan_id>/add")
def add(plan_id: int):
    user, session, plan = _edit_target(plan_id)
    uid, day = _user_day(request.form.get("user_day", ""))
    stop = planning.add_case(
        session, plan, user, request.form.get("number", ""), uid, day, _settings()
    )
    _audit(session, user, "visit_stop_add", plan, stop_id=stop.id, case_id=stop.case_id)
    session.commit()
    flash("已把该案件加入计划。", "info")
    return _back(plan.id, f"#stop-{stop.id}")


@bp.get("/areas/<code>.geojson")
def area_outline(code: str):
    """Grid outlines of an area, for the start-point picker of the new-plan form."""
    user = current_user()
    _require_planner(user)
    if not may_see_area(user, code) or get_area(get_session(), code) is None:
        raise NotFound("区划")
    return jsonify(queries.area_outline(get_session(), code))


# -- in the field -----------------------------------------------------------------------


@bp.get("/today")
def today():
    """Today's stops of the signed-in person, in walking order (phone-first)."""
    user = current_user()
    session = get_session()
    today = queries.local_today(session)
    day = _date_arg("day") or today
    rows = queries.my_stops(session, user.id, day)
    views = [stop_view(r, user.id, True) for r in rows]
    _log_contacts(session, user, views, day=day.isoformat(), page="today")
    plans = {}
    if views:
        for pid in sorted({v.plan_id for v in views}):
            plans[pid] = queries.get_plan(session, pid)
    return render_template(
        "visits/today.html",
        day=day,
        today=today,
        stops=views,
        plans=plans,
        days=queries.my_days(session, user.id, today),
        categories=categories(session),
        new_client_id=lambda: str(uuid.uuid4()),
        may_plan=may_plan_visits(user),
        may_visit=may_visit(user),
        new_problem_channel=outcomes.new_problem_channel(user),
    )


@bp.post("/stops/<int:stop_id>/outcome")
def outcome(stop_id: int):
    """Record an outcome from the plain form (the page's script posts to the API instead)."""
    user = current_user()
    session = get_session()
    inp = outcomes.parse_outcome(request.form, queries.db_now(session))
    result = outcomes.record_outcome(session, user, stop_id, inp)
    session.commit()
    if result.created:
        msg = f"已记录：{OUTCOME_LABELS[outcomes.Outcome(result.outcome)]}"
        if result.new_case_number:
            msg += f"；新发现问题已登记为案件 {result.new_case_number}"
        if result.follow_up is not None and not result.follow_up.applied:
            msg += f"；回访未记入案件：{result.follow_up.message}"
        flash(msg, "info")
    else:
        flash("该结果此前已记录，未重复保存。", "info")
    day = request.form.get("day") or ""
    return redirect(url_for("visits.today", day=day or None) + f"#stop-{stop_id}")
