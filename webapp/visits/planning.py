"""Making and editing visit plans: facts from SQL, pure scoring, assignment and routing.

The functions here own the rules of a plan (who may plan where, that no one's day is
ever over capacity, that visited stops stay put); the SQL lives in
:mod:`webapp.visits.queries`, the pure parts in ``targeting``, ``assignment`` and
``routing``. They flush, never commit: the view commits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from webapp.auth.models import User
from webapp.auth.permissions import case_scope_sql, may_plan_visits, may_see_area
from webapp.errors import AppError, NotFound
from webapp.grid.models import Area
from webapp.roads import queries as roads
from webapp.visits import queries
from webapp.visits.assignment import Person, Task, assign, room
from webapp.visits.models import PlanStatus, VisitPlan, VisitPlanPerson, VisitRecord, VisitStop
from webapp.visits.routing import Route, plan_route, plan_route_on
from webapp.visits.settings import VisitSettings
from webapp.visits.targeting import Candidate, Target, Weights, points, with_hot_spot

MANUAL_REASON = {"factor": "manual", "text": "计划人员手动添加", "points": 0.0}


def may_manage_plan(user: User, plan: VisitPlan) -> bool:
    """Whether ``user`` may see and edit ``plan`` as a planner (a planner of its area)."""
    return may_plan_visits(user) and may_see_area(user, plan.area_code)


def plan_for_planner(session: Session, user: User, plan_id: int, lock: bool = False) -> VisitPlan:
    """The plan, if ``user`` may manage it; a plan out of reach is 404 like a missing one."""
    plan = queries.get_plan(session, plan_id, lock=lock)
    if plan is None or not may_manage_plan(user, plan):
        raise NotFound("走访计划")
    return plan


# -- making a plan --------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRequest:
    user_id: int
    capacity: int


@dataclass(frozen=True)
class PlanRequest:
    title: str
    area_code: str
    date_from: date
    date_to: date
    people: tuple[PersonRequest, ...]
    weights: Weights
    start: tuple[float, float] | None = None  # a point picked on the map; None: committees

    @property
    def days(self) -> list[date]:
        return days_between(self.date_from, self.date_to)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def parse_plan_request(
    form: Mapping[str, str], settings: VisitSettings, today: date
) -> PlanRequest:
    """Read and check the new-plan form; refuse with every problem named in Chinese."""
    problems: dict[str, str] = {}
    title = (form.get("title") or "").strip()
    if not title:
        problems["title"] = "请填写计划名称"
    elif len(title) > 200:
        problems["title"] = "计划名称不超过 200 个字符"
    area = (form.get("area") or "").strip()
    if not area.isdigit():
        problems["area"] = "请选择走访区域"
    first = _date(form.get("date_from"), "date_from", "开始日期", problems)
    last = _date(form.get("date_to"), "date_to", "结束日期", problems)
    if first and last:
        if last < first:
            problems["date_to"] = "结束日期不能早于开始日期"
        elif (last - first).days + 1 > settings.max_days:
            problems["date_to"] = f"一个计划最长 {settings.max_days} 天"
        if first < today:
            problems["date_from"] = "开始日期不能早于今天"
    people = []
    for key, value in form.items():
        if not key.startswith("person_") or not value:
            continue
        try:
            uid = int(key[len("person_") :])
        except ValueError:
            continue
        raw = form.get(f"capacity_{uid}") or str(settings.default_capacity)
        try:
            cap = int(raw)
        except ValueError:
            cap = -1
        if not 1 <= cap <= settings.max_capacity:
            problems[f"capacity_{uid}"] = f"每日走访数须为 1 到 {settings.max_capacity} 的整数"
            continue
        people.append(PersonRequest(uid, cap))
    if not people and "people" not in problems:
        problems["people"] = "请至少选择一名走访人员"
    start = None
    if form.get("start_mode") == "point":
        try:
            lon, lat = float(form.get("start_lon", "")), float(form.get("start_lat", ""))
            if not (
                math.isfinite(lon)
                and math.isfinite(lat)
                and -180 <= lon <= 180
                and -90 <= lat <= 90
            ):
                raise ValueError
            start = (lon, lat)
        except ValueError:
            problems["start"] = "请在地图上点选起点，或选择“各自村委会”"
    try:
        weights = Weights.parse(form, settings.weights.as_dict())
    except AppError as exc:
        problems["weights"] = exc.message
        weights = settings.weights
    if problems:
        raise AppError(
            "invalid_plan",
            "计划有误：" + "；".join(problems.values()),
            400,
            "invalid plan",
            problems,
        )
    return PlanRequest(
        title, area, first, last, tuple(sorted(people, key=lambda p: p.user_id)), weights, start
    )  # type: ignore[arg-type]


def _date(raw: str | None, key: str, label: str, problems: dict) -> date | None:
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError:
        problems[key] = f"{label}格式应为 YYYY-MM-DD"
        return None


def make_plan(
    session: Session, planner: User, req: PlanRequest, settings: VisitSettings
) -> VisitPlan:
    """Create a draft plan: targets scored, given to people and days, routed. Flushes."""
    if not may_plan_visits(planner):
        raise AppError(
            "forbidden_role", "您的角色无权制定走访计划", 403, "not allowed to plan visits"
        )
    area = session.scalar(select(Area).where(Area.code == req.area_code))
    if area is None or not may_see_area(planner, req.area_code):
        raise NotFound("区划")
    eligible = {
        p.id: p
        for p in queries.eligible_people(session, req.area_code, [p.user_id for p in req.people])
    }
    missing = [p.user_id for p in req.people if p.user_id not in eligible]
    if missing:
        raise AppError(
            "ineligible_people",
            "所选人员中有人不能走访该区域（账号停用、角色不符或辖区不在该区域）",
            400,
            "some people may not visit this area",
            {"user_ids": missing},
        )
    if req.start is not None and not queries.point_in_area(session, req.area_code, *req.start):
        raise AppError(
            "start_outside_area",
            f"起点不在{area.name}范围内，请重新在地图上选点",
            400,
            "start point outside the area",
        )
    plan = VisitPlan(
        title=req.title,
        area_code=req.area_code,
        date_from=req.date_from,
        date_to=req.date_to,
        status=PlanStatus.DRAFT.value,
        weights=req.weights.as_dict(),
        start_mode="point" if req.start else "committee",
        start_point=f"SRID=4326;POINT({req.start[0]} {req.start[1]})" if req.start else None,
        created_by=planner.id,
    )
    session.add(plan)
    session.flush()
    starts = queries.committee_starts(session, req.area_code, [p.user_id for p in req.people])
    for p in req.people:
        if req.start is not None:
            lon, lat, label = (
                req.start[0],
                req.start[1],
                f"地图选点（{req.start[0]:.5f}, {req.start[1]:.5f}）",
            )
        else:
            s = starts[p.user_id]
            lon, lat, label = s.lon, s.lat, s.label
        session.add(
            VisitPlanPerson(
                plan_id=plan.id,
                user_id=p.user_id,
                daily_capacity=p.capacity,
                start_point=f"SRID=4326;POINT({lon} {lat})",
                start_label=label,
            )
        )
    session.flush()
    fill_plan(session, plan, planner, settings)
    return plan


@dataclass(frozen=True)
class Proposal:
    """What the targeting produced for a plan, before it is stored."""

    targets: list[Target]  # best first: every target that could be assigned, then the best
    # of the rest (at least as many as the plan keeps unassigned)
    considered: int  # candidates measured
    left_out: int = 0  # further targets with points, none of which could be assigned


def propose(
    session: Session,
    plan: VisitPlan,
    planner: User,
    settings: VisitSettings,
    people: Sequence[Person] | None = None,
) -> Proposal:
    """Measure, weight and rank the targets of the plan's area in the planner's scope.

    Ranked in the database: only the targets the plan's people could take come back
    (:class:`assignment.Room`), with the best of the rest for the unassigned list.
    """
    now = queries.db_now(session)
    today = queries.local_today(session)
    scope = case_scope_sql(planner)
    bins = queries.hot_spot_bins(session, plan.area_code, scope, now, settings.hot_spot_days)
    if people is None:
        people, _ = _people(session, plan.id)
    days = len(days_between(plan.date_from, plan.date_to))
    ranked = queries.ranked_targets(
        session,
        plan.area_code,
        planner,
        now,
        today,
        settings.dissatisfied_window_days,
        settings.grid_unvisited_days,
        bins,
        Weights(plan.weights),
        settings.rules,
        room(people, queries.grid_codes(session, plan.area_code), days),
        settings.max_unassigned,
        plan.id,
    )
    return Proposal(ranked.targets, ranked.considered, ranked.left_out)


def _people(session: Session, plan_id: int) -> tuple[list[Person], dict[int, tuple[float, float]]]:
    rows = session.execute(
        text(
            """
            SELECT pp.user_id, u.role, u.area_code, pp.daily_capacity, u.unit, u.display_name,
                   ST_X(pp.start_point) AS lon, ST_Y(pp.start_point) AS lat
            FROM visit_plan_people pp JOIN users u ON u.id = pp.user_id
            WHERE pp.plan_id = :p ORDER BY pp.user_id
            """
        ),
        {"p": plan_id},
    ).all()
    people = [
        Person(r.user_id, r.role, r.area_code, r.daily_capacity, r.unit, r.display_name)
        for r in rows
    ]
    return people, {r.user_id: (r.lon, r.lat) for r in rows}


def route_day(
    session: Session,
    net: roads.RoadNetwork,
    start: tuple[float, float],
    stops: Sequence[tuple[float, float]],
) -> Route:
    """Order one day's stops from ``start``: on walking distances along the county's roads
    when it has a routable network, else on geodesic distances."""
    return _route_day(session, net, start, stops)[0]


def _route_day(
    session: Session,
    net: roads.RoadNetwork,
    start: tuple[float, float],
    stops: Sequence[tuple[float, float]],
    joined: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Route, Sequence[int] | None]:
    """:func:`route_day`, and the junctions where the start and each stop join the roads
    (``joined``: those junctions and their access, when already looked up)."""
    if not net.routable or not stops:
        return plan_route(start, stops), None
    matrix = roads.distance_matrix(session, net, [start, *stops], joined)
    junctions = None if matrix.junctions is None else matrix.junctions.tolist()
    return plan_route_on(matrix.metres), junctions


@dataclass(frozen=True)
class _RoutedDay:
    user_id: int
    day: date
    targets: list[Target]
    route: Route
    junctions: Sequence[int] | None  # where the start (0) and stop i (i + 1) join the roads


def _route_days(
    session: Session,
    net: roads.RoadNetwork,
    starts: Mapping[int, tuple[float, float]],
    by_day: Mapping[tuple[int, date], list[Target]],
) -> list[_RoutedDay]:
    """Route every person's day; along the roads, with one junction lookup for all days."""
    days = sorted(by_day.items())
    ends = [[starts[u], *((t.candidate.lon, t.candidate.lat) for t in g)] for (u, _), g in days]
    joined = roads.junctions(session, net, [p for e in ends for p in e]) if net.routable else None
    out, at = [], 0
    for ((user_id, day), group), places in zip(days, ends, strict=True):
        part = None
        if joined is not None:
            part = (joined[0][at : at + len(places)], joined[1][at : at + len(places)])
            at += len(places)
        route, junctions = _route_day(session, net, places[0], places[1:], part)
        out.append(_RoutedDay(user_id, day, group, route, junctions))
    return out


def plan_network(session: Session, plan: VisitPlan) -> roads.RoadNetwork:
    """The road network of the plan's county (what its routes can follow)."""
    return roads.network(session, plan.area_code[:6])


def fill_plan(
    session: Session,
    plan: VisitPlan,
    planner: User,
    settings: VisitSettings,
    proposal: Proposal | None = None,
) -> None:
    """Assign the proposed targets (by default :func:`propose`'s) within capacity, route
    each day, store."""
    people, starts = _people(session, plan.id)
    if proposal is None:
        proposal = propose(session, plan, planner, settings, people)
    targets = proposal.targets
    tasks = [
        Task(t.key, t.candidate.grid_code, t.candidate.leader_id, t.candidate.accused_unit)
        for t in targets
    ]
    placements = assign(tasks, people, days_between(plan.date_from, plan.date_to))
    by_day: dict[tuple[int, date], list[Target]] = defaultdict(list)
    unassigned: list[tuple[Target, str]] = []
    for target, placed in zip(targets, placements, strict=True):
        if placed.assigned:
            by_day[(placed.user_id, placed.day)].append(target)  # type: ignore[index]
        else:
            unassigned.append((target, placed.reason or ""))
    net = plan_network(session, plan)
    stops: list[queries.NewStop] = []
    legs: list[queries.RouteLeg] = []  # along the roads, with the junctions routing found
    for d in _route_days(session, net, starts, by_day):
        points = [starts[d.user_id], *((t.candidate.lon, t.candidate.lat) for t in d.targets)]
        previous = 0
        for seq, i in enumerate(d.route.order, start=1):
            stops.append(_new_stop(d.targets[i], d.user_id, d.day, seq))
            if d.junctions is not None:
                legs.append(
                    queries.RouteLeg(
                        points[previous], points[i + 1], d.junctions[previous], d.junctions[i + 1]
                    )
                )
            previous = i + 1
    kept = unassigned[: settings.max_unassigned]
    stops.extend(_new_stop(t, None, None, None, reason) for t, reason in kept)
    if legs:  # measured along the roads as they are stored
        queries.insert_stops(session, plan.id, stops, legs, net)
    else:
        queries.insert_stops(session, plan.id, stops)
        queries.number_and_measure(session, plan.id)
    plan.overflow = len(unassigned) - len(kept) + proposal.left_out
    session.flush()


def _new_stop(
    t: Target, user_id, day, seq, reason: str | None = None, by_hand: bool = False
) -> queries.NewStop:
    c: Candidate = t.candidate
    reasons = [r.as_dict() for r in t.reasons]
    if by_hand:
        reasons.append(dict(MANUAL_REASON))
    return queries.NewStop(
        kind=c.kind,
        case_id=c.case_id,
        grid_code=c.grid_code,
        lon=c.lon,
        lat=c.lat,
        score=t.score,
        reasons=reasons,
        follow_up=c.follow_up,
        user_id=user_id,
        day=day,
        seq=seq,
        unassigned_reason=reason,
        added_by_hand=by_hand,
    )


def regenerate(
    session: Session,
    plan: VisitPlan,
    planner: User,
    weights: Weights,
    capacities: Mapping[int, int],
    settings: VisitSettings,
) -> None:
    """Throw the draft's stops away and propose again with new weights or capacities."""
    _require_draft(plan, "只有草稿计划可以重新生成；已发布的计划请逐条调整")
    for user_id, cap in capacities.items():
        if not 1 <= cap <= settings.max_capacity:
            raise AppError(
                "invalid_capacity", f"每日走访数须为 1 到 {settings.max_capacity} 的整数"
            )
        session.execute(
            text(
                "UPDATE visit_plan_people SET daily_capacity = :c WHERE plan_id = :p AND "
                "user_id = :u"
            ),
            {"c": cap, "p": plan.id, "u": user_id},
        )
    plan.weights = weights.as_dict()
    session.execute(delete(VisitStop).where(VisitStop.plan_id == plan.id))
    session.flush()
    fill_plan(session, plan, planner, settings)
    queries.touch_plan(session, plan)


def _require_draft(plan: VisitPlan, message: str) -> None:
    if plan.published:
        raise AppError("plan_published", message, 409, "the plan is published")


def publish(session: Session, plan: VisitPlan) -> None:
    """Publish a draft: its people see their stops from now on."""
    _require_draft(plan, "该计划已发布")
    assigned = session.execute(
        text("SELECT count(*) FROM visit_stops WHERE plan_id = :p AND user_id IS NOT NULL"),
        {"p": plan.id},
    ).scalar_one()
    if not assigned:
        raise AppError("plan_empty", "计划中没有已分配的走访点，无法发布", 409, "nothing assigned")
    plan.status = PlanStatus.PUBLISHED.value
    plan.published_at = queries.db_now(session)
    session.flush()
    queries.touch_plan(session, plan)


def delete_draft(session: Session, plan: VisitPlan) -> None:
    _require_draft(plan, "已发布的计划不能删除")
    session.delete(plan)
    session.flush()


# -- editing stops --------------------------------------------------------------------


def _has_visits(session: Session, stop_id: int) -> bool:
    return (
        session.scalar(select(VisitRecord.id).where(VisitRecord.stop_id == stop_id).limit(1))
        is not None
    )


def drop_stop(session: Session, plan: VisitPlan, stop_id: int) -> None:
    """Take a stop off the plan (a stop with a recorded visit stays: it is history)."""
    stop = queries.get_stop(session, plan.id, stop_id, lock=True)
    if stop is None:
        raise NotFound("走访点")
    if _has_visits(session, stop.id):
        raise AppError(
            "stop_has_visits", "该走访点已有走访记录，不能删除", 409, "the stop has recorded visits"
        )
    user_id, day = stop.user_id, stop.day
    session.delete(stop)
    session.flush()
    if user_id is not None:
        queries.number_and_measure(session, plan.id, user_id, day)
    queries.touch_plan(session, plan)


def _plan_person(session: Session, plan_id: int, user_id: int) -> VisitPlanPerson:
    person = session.get(VisitPlanPerson, (plan_id, user_id))
    if person is None:
        raise AppError("not_on_plan", "该人员不在本计划中", 400, "person not on the plan")
    return person


def _check_room(
    session: Session, plan: VisitPlan, user_id: int, day: date, exclude_stop: int | None
) -> None:
    """Refuse when the person's day is full (the plan row is locked, so this is race-free)."""
    if not plan.date_from <= day <= plan.date_to:
        raise AppError("day_outside_plan", "日期不在计划期内", 400, "day outside the plan")
    person = _plan_person(session, plan.id, user_id)
    load = session.execute(
        text(
            "SELECT count(*) FROM visit_stops WHERE plan_id = :p AND user_id = :u AND day = :d "
            "AND id IS DISTINCT FROM CAST(:x AS bigint)"
        ),
        {"p": plan.id, "u": user_id, "d": day, "x": exclude_stop},
    ).scalar_one()
    if load >= person.daily_capacity:
        raise AppError(
            "day_full",
            f"该人员当天已排满（每日 {person.daily_capacity} 个），请选择其他日期或人员",
            409,
            "the person's day is full",
        )


def _check_accusation(session: Session, stop: VisitStop, user_id: int) -> None:
    if stop.case_id is None:
        return
    clash = session.execute(
        text(
            "SELECT 1 FROM cases c JOIN users u ON u.id = :u "
            "WHERE c.id = :c AND c.accused_unit IS NOT NULL AND c.accused_unit = u.unit"
        ),
        {"u": user_id, "c": stop.case_id},
    ).first()
    if clash:
        raise AppError(
            "accused_unit", "该案件检举控告的是此人所在单位，不能交其走访", 409, "accused unit"
        )


def move_stop(
    session: Session,
    plan: VisitPlan,
    stop_id: int,
    user_id: int | None,
    day: date | None,
    position: int | None = None,
) -> None:
    """Give a stop to a person and day (at ``position``, 1-based; default last), or unassign it.

    Reordering within the same day is the same call. Never exceeds a daily capacity.
    """
    stop = queries.get_stop(session, plan.id, stop_id, lock=True)
    if stop is None:
        raise NotFound("走访点")
    old = (stop.user_id, stop.day)
    if (user_id is None) != (day is None):
        raise AppError("invalid_move", "请同时选择人员和日期", 400, "person and day go together")
    if (user_id, day) != old and stop.state != "pending":
        raise AppError(
            "stop_visited", "已走访的点不能改派给其他人员或日期", 409, "the stop was visited"
        )
    if user_id is None:
        stop.user_id = stop.day = stop.seq = stop.leg_m = stop.leg_kind = stop.leg_path = None
        stop.unassigned_reason = "计划人员取消分配"
        session.flush()
    else:
        if (user_id, day) != old:
            _check_room(session, plan, user_id, day, stop.id)  # type: ignore[arg-type]
            _check_accusation(session, stop, user_id)
        ids = (
            session.execute(
                text(
                    "SELECT id FROM visit_stops WHERE plan_id = :p AND user_id = :u AND day = "
                    ":d AND id <> :s "
                    "ORDER BY seq NULLS LAST, id"
                ),
                {"p": plan.id, "u": user_id, "d": day, "s": stop.id},
            )
            .scalars()
            .all()
        )
        at = len(ids) if position is None else min(max(position, 1), len(ids) + 1) - 1
        ids = list(ids)
        ids.insert(at, stop.id)
        stop.user_id, stop.day, stop.unassigned_reason = user_id, day, None
        session.flush()
        _set_order(session, ids)
        queries.number_and_measure(session, plan.id, user_id, day)
    if old[0] is not None and old != (user_id, day):
        queries.number_and_measure(session, plan.id, old[0], old[1])
    queries.touch_plan(session, plan)


def _set_order(session: Session, ids: Sequence[int]) -> None:
    session.execute(
        text(
            "UPDATE visit_stops s SET seq = t.n, updated_at = now() "
            "FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS t(id, n) WHERE s.id = t.id"
        ),
        {"ids": list(ids)},
    )
    session.flush()


def add_case(
    session: Session,
    plan: VisitPlan,
    planner: User,
    number: str,
    user_id: int | None,
    day: date | None,
    settings: VisitSettings,
) -> VisitStop:
    """Add a case (by its number) to the plan by hand, scored like the others."""
    number = number.strip()
    case_id = session.execute(
        text("SELECT id FROM cases WHERE number = :n"), {"n": number}
    ).scalar()
    now = queries.db_now(session)
    cand = (
        queries.case_candidate(session, case_id, plan.area_code, planner, now)
        if case_id is not None
        else None
    )
    if cand is None:
        raise NotFound("案件", f"no case {number} in the plan's area and your scope")
    if session.scalar(
        select(VisitStop.id).where(VisitStop.plan_id == plan.id, VisitStop.case_id == case_id)
    ):
        raise AppError(
            "already_on_plan", "该案件已在本计划中", 409, "the case is already on the plan"
        )
    bins = queries.hot_spot_bins(
        session, plan.area_code, case_scope_sql(planner), now, settings.hot_spot_days
    )
    cand = with_hot_spot(cand, bins)
    target = Target(
        cand,
        points(cand.facts, plan.weights, settings.rules),
        Weights(plan.weights),
        settings.rules,
    )
    queries.insert_stops(
        session,
        plan.id,
        [_new_stop(target, None, None, None, "计划人员手动添加，待分配", by_hand=True)],
    )
    stop = session.scalar(
        select(VisitStop).where(VisitStop.plan_id == plan.id, VisitStop.case_id == case_id)
    )
    if user_id is not None:
        move_stop(session, plan, stop.id, user_id, day)
    else:
        queries.touch_plan(session, plan)
    return stop


def optimise(
    session: Session, plan: VisitPlan, user_id: int | None = None, day: date | None = None
) -> int:
    """Re-route the pending stops of one person's day (or every day of the plan).

    Stops already visited keep their place at the head of the day; the rest are
    routed from the last visited stop (or the start point). Returns the days routed.
    """
    cond = "AND s.user_id = :u AND s.day = :d" if user_id is not None else ""
    rows = session.execute(
        text(
            f"""
            SELECT s.id, s.user_id, s.day, s.state, ST_X(s.location) AS lon,
                ST_Y(s.location) AS lat,
                   ST_X(pp.start_point) AS slon, ST_Y(pp.start_point) AS slat
            FROM visit_stops s
            JOIN visit_plan_people pp ON pp.plan_id = s.plan_id AND pp.user_id = s.user_id
            WHERE s.plan_id = :p AND s.user_id IS NOT NULL {cond}
            ORDER BY s.user_id, s.day, s.seq NULLS LAST, s.id
            """
        ),
        {"p": plan.id, "u": user_id, "d": day},
    ).all()
    groups: dict[tuple[int, date], list] = defaultdict(list)
    for r in rows:
        groups[(r.user_id, r.day)].append(r)
    net = plan_network(session, plan)
    for rs in groups.values():
        visited = [r for r in rs if r.state != "pending"]
        pending = [r for r in rs if r.state == "pending"]
        origin = (visited[-1].lon, visited[-1].lat) if visited else (rs[0].slon, rs[0].slat)
        route = route_day(session, net, origin, [(r.lon, r.lat) for r in pending])
        _set_order(session, [r.id for r in visited] + [pending[i].id for i in route.order])
    queries.number_and_measure(session, plan.id, user_id, day)
    queries.touch_plan(session, plan)
    return len(groups)
