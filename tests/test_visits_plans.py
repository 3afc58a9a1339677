"""Visit plans on the demo county: scope, capacity, assignment, routes, edits, publishing."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import new_plan, settings_for, standalone_cases, stops_of
from webapp.errors import AppError, NotFound
from webapp.visits import planning, queries, routing
from webapp.visits.models import VisitPlan
from webapp.visits.targeting import Weights


@pytest.fixture
def crew(make_user, busy_place):
    """A planner for the county, two grid workers of the village and its informant."""
    return {
        "planner": make_user("planner"),
        "w1": make_user("grid_worker", busy_place.grid),
        "w2": make_user("grid_worker", busy_place.other_grid),
        "informant": make_user("village_informant", busy_place.village),
    }


def test_a_village_plan_stays_in_the_village_and_within_capacity(session, app, crew, busy_place):
    caps = {crew["w1"].id: 3, crew["w2"].id: 2, crew["informant"].id: 2}
    plan = new_plan(session, app, crew["planner"], busy_place.village, list(caps.items()), days=2)
    rows = stops_of(session, plan.id)
    assigned = [r for r in rows if r.user_id is not None]
    assert assigned and all(r.grid_code.startswith(busy_place.village) for r in rows)
    load = Counter((r.user_id, r.day) for r in assigned)
    assert all(n <= caps[u] for (u, _), n in load.items())
    # nothing is left unassigned while someone who may take it has room on a day: the
    # informant takes any target of the village, a grid worker those of their grid
    days = [
        plan.date_from + timedelta(days=i) for i in range((plan.date_to - plan.date_from).days + 1)
    ]
    for r in rows:
        if r.user_id is None:
            eligible = [crew["informant"].id]
            eligible += [crew["w1"].id] if r.grid_code == busy_place.grid else []
            eligible += [crew["w2"].id] if r.grid_code == busy_place.other_grid else []
            assert all(load[(u, d)] == caps[u] for u in eligible for d in days), r
    assert {r.grid_code for r in assigned if r.user_id == crew["w1"].id} == {busy_place.grid}
    assert {r.grid_code for r in assigned if r.user_id == crew["w2"].id} == {busy_place.other_grid}
    # each person's day is numbered 1..n with a measured leg for every stop
    days = defaultdict(list)
    for r in assigned:
        days[(r.user_id, r.day)].append(r)
    for stops in days.values():
        assert [s.seq for s in stops] == list(range(1, len(stops) + 1))
        assert all(s.leg_m is not None and s.leg_m >= 0 for s in stops)
    # the most urgent targets come first: w1's first day outscores the second
    w1 = sorted({r.day for r in assigned if r.user_id == crew["w1"].id})
    first = [r.score for r in assigned if r.user_id == crew["w1"].id and r.day == w1[0]]
    second = [r.score for r in assigned if r.user_id == crew["w1"].id and r.day == w1[1]]
    assert min(first) >= max(second)


def test_targets_nobody_can_take_stay_on_the_plan_with_the_reason(session, app, crew, busy_place):
    plan = new_plan(session, app, crew["planner"], busy_place.village, [(crew["w1"].id, 1)], days=1)
    rows = stops_of(session, plan.id)
    assert [r.grid_code for r in rows if r.user_id] == [busy_place.grid]
    loose = session.execute(
        text(
            "SELECT grid_code, seq, unassigned_reason FROM visit_stops WHERE plan_id = :p AND "
            "user_id IS NULL"
        ),
        {"p": plan.id},
    ).all()
    assert loose and all(seq is None for _, seq, _ in loose)
    for grid, _, reason in loose:
        expected = (
            "负责人员在计划期内已排满"
            if grid == busy_place.grid
            else "计划人员中没有负责该网格的人员"
        )
        assert reason == expected


def test_legs_are_geodesic_along_the_stored_order(session, app, crew, busy_place):
    plan = new_plan(session, app, crew["planner"], busy_place.village, [(crew["w1"].id, 6)], days=1)
    start = session.execute(
        text(
            "SELECT ST_X(start_point), ST_Y(start_point) FROM visit_plan_people WHERE plan_id = :p"
        ),
        {"p": plan.id},
    ).one()
    rows = session.execute(
        text(
            "SELECT ST_X(location), ST_Y(location), leg_m FROM visit_stops "
            "WHERE plan_id = :p AND user_id IS NOT NULL ORDER BY seq"
        ),
        {"p": plan.id},
    ).all()
    points = [(r[0], r[1]) for r in rows]
    expected = routing.geodesic_legs(tuple(start), points, list(range(len(points))))
    assert [r[2] for r in rows] == pytest.approx(expected, rel=1e-6, abs=0.01)
    # and the stored order is the router's: never longer than nearest neighbour
    nn = routing.path_length_m(
        tuple(start), points, routing.nearest_neighbour(tuple(start), points)
    )
    assert sum(expected) <= nn + 1e-6


def test_no_target_outside_the_planners_scope(session, app, make_user, busy_place):
    # A planner working for a township, for a body one case accuses.
    planner = make_user("planner", busy_place.township, unit="县某某局")
    w1 = make_user("grid_worker", busy_place.grid)
    (accused,) = standalone_cases(session, busy_place.grid, 1)
    session.execute(
        text("UPDATE cases SET case_class = 'accusation', accused_unit = '县某某局' WHERE id = :i"),
        {"i": accused},
    )
    plan = new_plan(session, app, planner, busy_place.village, [(w1.id, 50)], days=3)
    rows = stops_of(session, plan.id)
    case_ids = {r.case_id for r in rows if r.case_id}
    assert case_ids and accused not in case_ids
    cond, params = (
        "c.township_code = :t AND (c.accused_unit IS NULL OR c.accused_unit <> '县某某局')",
        {"t": busy_place.township},
    )
    in_scope = set(session.execute(text(f"SELECT id FROM cases c WHERE {cond}"), params).scalars())
    assert case_ids <= in_scope
    # nor by hand, nor a plan for an area outside the planner's own
    number = session.execute(
        text("SELECT number FROM cases WHERE id = :i"), {"i": accused}
    ).scalar_one()
    with pytest.raises(NotFound):
        planning.add_case(session, plan, planner, number, None, None, settings_for(app))
    elsewhere = session.execute(
        text("SELECT number FROM cases WHERE township_code <> :t ORDER BY id LIMIT 1"),
        {"t": busy_place.township},
    ).scalar_one()
    with pytest.raises(NotFound):
        planning.add_case(session, plan, planner, elsewhere, None, None, settings_for(app))
    with pytest.raises(NotFound):
        new_plan(session, app, planner, "410726", [(w1.id, 5)])


def test_a_township_leader_plans_only_their_township(session, app, make_user, busy_place):
    leader = make_user("township_leader", busy_place.township)
    w1 = make_user("grid_worker", busy_place.grid)
    plan = new_plan(session, app, leader, busy_place.village, [(w1.id, 4)], days=1)
    assert all(r.grid_code.startswith(busy_place.township) for r in stops_of(session, plan.id))
    other = session.execute(
        text(
            "SELECT code FROM areas WHERE level = 'village' AND township_code <> :t ORDER BY "
            "code LIMIT 1"
        ),
        {"t": busy_place.township},
    ).scalar_one()
    with pytest.raises(NotFound):
        new_plan(session, app, leader, other, [(w1.id, 4)])


def test_people_must_be_able_to_walk_the_area(session, app, make_user, busy_place):
    planner = make_user("planner")
    far = session.execute(
        text(
            "SELECT code FROM areas WHERE level = 'grid' AND township_code <> :t ORDER BY code "
            "LIMIT 1"
        ),
        {"t": busy_place.township},
    ).scalar_one()
    stranger = make_user("grid_worker", far)
    with pytest.raises(AppError) as err:
        new_plan(session, app, planner, busy_place.village, [(stranger.id, 4)])
    assert err.value.code == "ineligible_people"
    assert (
        session.execute(
            text("SELECT count(*) FROM visit_plans WHERE title = '测试走访计划'")
        ).scalar()
        == 0
    )


def test_the_leader_in_charge_takes_their_own_cases(session, app, make_user, busy_place):
    planner = make_user("planner")
    leader = make_user("leader_in_charge")
    w1 = make_user("grid_worker", busy_place.grid)
    owned = standalone_cases(session, busy_place.grid, 2)
    session.execute(
        text(
            "UPDATE cases SET leader_id = :u, reported_at = now() - interval '400 days' WHERE "
            "id = ANY(:ids)"
        ),
        {"u": leader.id, "ids": list(owned)},
    )
    plan = new_plan(session, app, planner, busy_place.village, [(leader.id, 5), (w1.id, 5)], days=2)
    rows = {r.case_id: r for r in stops_of(session, plan.id) if r.case_id}
    assert all(rows[i].user_id == leader.id for i in owned)
    assert {r.case_id for r in rows.values() if r.user_id == leader.id} <= set(owned)
    reasons = session.execute(
        text("SELECT reasons FROM visit_stops WHERE plan_id = :p AND case_id = :c"),
        {"p": plan.id, "c": owned[0]},
    ).scalar_one()
    assert any(r["factor"] == "leader_backlog" for r in reasons)


def test_a_picked_start_point_is_everyones_start(session, app, crew, busy_place):
    lon, lat = session.execute(
        text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :g"),
        {"g": busy_place.grid},
    ).one()
    plan = new_plan(
        session,
        app,
        crew["planner"],
        busy_place.village,
        [(crew["w1"].id, 3), (crew["w2"].id, 3)],
        start=(lon, lat),
    )
    starts = {
        (round(p.start_lon, 7), round(p.start_lat, 7))
        for p in queries.plan_people(session, plan.id)
    }
    assert starts == {(round(lon, 7), round(lat, 7))}
    with pytest.raises(AppError) as err:
        new_plan(
            session,
            app,
            crew["planner"],
            busy_place.village,
            [(crew["w1"].id, 3)],
            start=(113.0, 34.0),
        )
    assert err.value.code == "start_outside_area"


def test_targets_on_another_published_plan_are_not_proposed_again(session, app, crew, busy_place):
    first = new_plan(
        session, app, crew["planner"], busy_place.village, [(crew["w1"].id, 4)], days=1
    )
    planning.publish(session, first)
    taken = {r.case_id for r in stops_of(session, first.id) if r.user_id and r.case_id}
    second = new_plan(
        session, app, crew["planner"], busy_place.village, [(crew["w1"].id, 4)], days=1
    )
    again = {r.case_id for r in stops_of(session, second.id) if r.case_id}
    assert taken and not (taken & again)


# -- editing -----------------------------------------------------------------------------


@pytest.fixture
def plan(session, app, crew, busy_place) -> VisitPlan:
    # the busiest grid has targets for w1's two days; w2's grid fills one day of two stops
    return new_plan(
        session,
        app,
        crew["planner"],
        busy_place.village,
        [(crew["w1"].id, 3), (crew["w2"].id, 2)],
        days=2,
    )


def _day(session, plan, user_id, day):
    return [r for r in stops_of(session, plan.id) if r.user_id == user_id and r.day == day]


def test_moving_into_a_full_day_is_refused(session, plan, crew):
    w1, w2 = crew["w1"].id, crew["w2"].id
    day = plan.date_from
    # w2's first day full (capacity 2): topped up from w1's second day if the plan left room
    spare = _day(session, plan, w1, plan.date_to)
    while len(_day(session, plan, w2, day)) < 2:
        planning.move_stop(session, plan, spare.pop().id, w2, day)
    stop = _day(session, plan, w1, day)[0]
    with pytest.raises(AppError) as err:
        planning.move_stop(session, plan, stop.id, w2, day)
    assert err.value.code == "day_full"
    assert len(_day(session, plan, w2, day)) == 2 and len(_day(session, plan, w1, day)) == 3
    with pytest.raises(AppError) as err:
        planning.move_stop(session, plan, stop.id, w1, plan.date_to + timedelta(days=1))
    assert err.value.code == "day_outside_plan"
    # the other day, once it has room, takes the move
    for r in _day(session, plan, w2, plan.date_to):
        planning.move_stop(session, plan, r.id, None, None)
    planning.move_stop(session, plan, stop.id, w2, plan.date_to)
    assert [r.id for r in _day(session, plan, w2, plan.date_to)] == [stop.id]


def test_reorder_and_unassign_and_assign(session, plan, crew):
    w1 = crew["w1"].id
    day = plan.date_from
    before = [r.id for r in _day(session, plan, w1, day)]
    planning.move_stop(session, plan, before[2], w1, day, 1)
    assert [r.id for r in _day(session, plan, w1, day)] == [before[2], before[0], before[1]]
    planning.move_stop(session, plan, before[0], None, None)
    after = _day(session, plan, w1, day)
    assert [r.id for r in after] == [before[2], before[1]] and [r.seq for r in after] == [1, 2]
    planning.move_stop(session, plan, before[0], w1, day, 2)
    assert [r.id for r in _day(session, plan, w1, day)] == [before[2], before[0], before[1]]
    assert plan.version > 1


def test_drop_renumbers_and_a_visited_stop_stays(session, plan, crew):
    w1 = crew["w1"].id
    day = plan.date_from
    ids = [r.id for r in _day(session, plan, w1, day)]
    planning.drop_stop(session, plan, ids[0])
    assert [r.seq for r in _day(session, plan, w1, day)] == [1, 2]
    session.execute(
        text(
            "INSERT INTO visit_records (client_id, stop_id, plan_id, grid_code, user_id, outcome) "
            "SELECT gen_random_uuid(), s.id, s.plan_id, s.grid_code, s.user_id, 'done' FROM "
            "visit_stops s WHERE s.id = :i"
        ),
        {"i": ids[1]},
    )
    with pytest.raises(AppError) as err:
        planning.drop_stop(session, plan, ids[1])
    assert err.value.code == "stop_has_visits"


def test_add_a_case_by_hand(session, app, plan, crew, busy_place):
    cfg = settings_for(app)
    on_plan = {r.case_id for r in stops_of(session, plan.id) if r.case_id}
    number, case_id = session.execute(
        text(
            "SELECT number, id FROM cases WHERE grid_code = :g AND NOT (id = ANY(:on)) ORDER "
            "BY id LIMIT 1"
        ),
        {"g": busy_place.grid, "on": list(on_plan)},
    ).one()
    w1 = crew["w1"].id
    day = plan.date_to
    planning.drop_stop(session, plan, _day(session, plan, w1, day)[0].id)
    stop = planning.add_case(session, plan, crew["planner"], number, w1, day, cfg)
    row = [r for r in _day(session, plan, w1, day) if r.id == stop.id][0]
    assert row.case_id == case_id and row.seq == 3
    reasons = session.execute(
        text("SELECT reasons FROM visit_stops WHERE id = :i"), {"i": stop.id}
    ).scalar_one()
    assert reasons[-1]["text"] == "计划人员手动添加"
    with pytest.raises(AppError) as err:
        planning.add_case(session, plan, crew["planner"], number, None, None, cfg)
    assert err.value.code == "already_on_plan"


def test_optimise_keeps_visited_stops_first(session, plan, crew):
    w1 = crew["w1"].id
    day = plan.date_from
    ids = [r.id for r in _day(session, plan, w1, day)]
    planning.move_stop(session, plan, ids[2], w1, day, 1)  # spoil the order
    session.execute(text("UPDATE visit_stops SET state = 'done' WHERE id = :i"), {"i": ids[1]})
    planning.move_stop(session, plan, ids[1], w1, day, 1)
    planning.optimise(session, plan, w1, day)
    after = _day(session, plan, w1, day)
    assert after[0].id == ids[1] and after[0].state == "done"
    assert sorted(r.id for r in after) == sorted(ids)


def test_publish_then_only_edits_not_regeneration(session, app, plan, crew):
    cfg = settings_for(app)
    planning.regenerate(
        session, plan, crew["planner"], Weights.parse({"w_unvisited": "0"}, plan.weights), {}, cfg
    )
    assert plan.weights["unvisited"] == 0
    planning.publish(session, plan)
    assert plan.published and plan.published_at is not None
    with pytest.raises(AppError) as err:
        planning.regenerate(session, plan, crew["planner"], Weights(), {}, cfg)
    assert err.value.code == "plan_published"
    with pytest.raises(AppError):
        planning.publish(session, plan)
    with pytest.raises(AppError):
        planning.delete_draft(session, plan)


def test_a_chain_of_repeat_petitions_is_one_household(session, make_user, busy_place):
    planner = make_user("planner")
    a, b, c = standalone_cases(session, busy_place.grid, 3)
    session.execute(
        text(
            "UPDATE cases SET repeat_of_id = CASE id WHEN :b THEN :a WHEN :c THEN :b END, "
            "reported_at = now() - (CASE id WHEN :b THEN 20 ELSE 10 END) * interval '1 day' "
            "WHERE id IN (:b, :c)"
        ),
        {"a": a, "b": b, "c": c},
    )
    session.execute(
        text("UPDATE cases SET reported_at = now() - interval '30 days' WHERE id = :a"), {"a": a}
    )
    now = queries.db_now(session)
    today = queries.local_today(session)
    found = queries.case_candidates(session, busy_place.village, planner, now, today, 365)
    chain = [f for f in found if f.case_id in (a, b, c)]
    assert len(chain) == 1
    assert chain[0].case_id == c  # the most recent petition of the matter
    assert chain[0].facts.repeats == 2
    assert chain[0].facts.unvisited_days == 30  # since the matter was first raised
    # a corrupt chain that loops does not hang the query
    session.execute(text("UPDATE cases SET repeat_of_id = :c WHERE id = :a"), {"a": a, "c": c})
    looped = queries.case_candidates(session, busy_place.village, planner, now, today, 365)
    ids = [f.case_id for f in looped]
    assert len(ids) == len(set(ids))
