"""Ranking in the database equals ranking in Python: same targets, order, scores, reasons, plans.

``queries.ranked_targets`` scores and ranks every target of an area in one statement and
returns only what the plan's people could take. The reference is what plans did before:
every candidate read into Python (``case_candidates``, ``grid_candidates``), its Gi* bin
filled in, scored and sorted by ``targeting.rank``.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import new_plan, settings_for
from webapp.auth.permissions import case_scope_sql
from webapp.visits import planning, queries
from webapp.visits.models import VisitStop
from webapp.visits.targeting import (
    FACTOR_RULES,
    Facts,
    Rules,
    Weights,
    grids_without_case_targets,
    point_table,
    points,
    rank,
    rule_params,
    score,
    with_hot_spot,
)

FINAL = "('resolved','closed','not_accepted')"

WEIGHTS = {
    "default": {},
    "zero": {f: 0 for f in Weights().as_dict()},
    "only unvisited (ties)": {**{f: 0 for f in Weights().as_dict()}, "unvisited": 3},
    "equal (ties)": {f: 10 for f in Weights().as_dict()},
    "halves and odd tenths": {
        "open": 0.05,
        "overdue": 0.15,
        "repeat": 0.25,
        "dissatisfied": 0.35,
        "follow_up_due": 2.675,
        "hot_spot": 999.95,
        "unvisited": 0.35,
        "leader_backlog": 1000,
    },
    "hot spots and backlog": {"overdue": 0, "hot_spot": 40, "leader_backlog": 40, "unvisited": 7.7},
}


def _weights(name: str) -> Weights:
    return Weights.parse({k: str(v) for k, v in WEIGHTS[name].items()})


# -- the factor table: the same levels in SQL and Python -------------------------------


def _facts_grid() -> list[Facts]:
    values = {
        "open": [False, True],
        "overdue_days": [-3, 0, 1, 40],
        "repeats": [0, 1, 5, 6, 40],
        "dissatisfied": [False, True],
        "follow_up_due": [False, True],
        "hot_spot_bin": [-3, 0, 1, 2, 3],
        "unvisited_days": [None, -2, 0, 1, 29, 30, 31, 179, 180, 181, 5000],
        "leader_case_days": [-1, 0, 364, 365, 366],
    }
    rng = random.Random(8)
    facts = []
    for kind, visited in itertools.product(["case", "grid"], [False, True]):
        for _ in range(300):
            facts.append(
                Facts(
                    kind=kind,
                    visited_before=visited,
                    **{k: rng.choice(v) for k, v in values.items()},
                )
            )
    return facts


def _facts_table(session, facts: list[Facts]) -> None:
    session.execute(
        text(
            "CREATE TEMP TABLE f (n int, open boolean, overdue_days int, repeats int, "
            "dissatisfied boolean, follow_up_due boolean, hot_spot_bin int, unvisited_days int, "
            "leader_case_days int) ON COMMIT DROP"
        )
    )
    session.execute(
        text(
            "INSERT INTO f VALUES (:n, :open, :overdue_days, :repeats, :dissatisfied, "
            ":follow_up_due, :hot_spot_bin, :unvisited_days, :leader_case_days)"
        ),
        [
            {
                "n": i,
                **{
                    k: getattr(x, k)
                    for k in (
                        "open",
                        "overdue_days",
                        "repeats",
                        "dissatisfied",
                        "follow_up_due",
                        "hot_spot_bin",
                        "unvisited_days",
                        "leader_case_days",
                    )
                },
            }
            for i, x in enumerate(facts)
        ],
    )


RULES = [
    Rules(),
    Rules(
        repeat_cap=0,
        unvisited_unit_days=7,
        unvisited_cap_days=30,
        hot_spot_min_bin=3,
        backlog_days=0,
    ),
    Rules(
        repeat_cap=2,
        unvisited_unit_days=1,
        unvisited_cap_days=1,
        hot_spot_min_bin=1,
        backlog_days=1,
    ),
]


@pytest.mark.parametrize("rules", RULES, ids=["default", "tight", "minimal"])
def test_each_factor_reads_the_facts_alike_in_sql_and_python(session, rules):
    facts = _facts_grid()
    _facts_table(session, facts)
    columns = ", ".join(rule.sql.format(f="f") for rule in FACTOR_RULES.values())
    rows = session.execute(text(f"SELECT {columns} FROM f ORDER BY n"), rule_params(rules)).all()
    for x, row in zip(facts, rows, strict=True):
        assert tuple(row) == tuple(rule.level(x, rules) for rule in FACTOR_RULES.values()), x


@pytest.mark.parametrize("name", sorted(WEIGHTS))
@pytest.mark.parametrize("rules", RULES, ids=["default", "tight", "minimal"])
def test_points_in_sql_are_points_in_python(session, name, rules):
    facts = _facts_grid()
    _facts_table(session, facts)
    weights = _weights(name)
    w = weights.as_dict()
    tables = {f"pt_{f.value}": point_table(f, w, rules) for f in FACTOR_RULES}
    tenths = session.execute(
        text(f"SELECT {queries.points_sql('f')} FROM f ORDER BY n"),
        {**tables, **rule_params(rules)},
    ).scalars()
    for x, t in zip(facts, tenths, strict=True):
        assert t / 10 == points(x, w, rules) == score(x, weights, rules).points, x


def test_whole_days_in_double_precision_are_the_numeric_whole_days(session):
    """queries.days_since rounds in float8; it gives what numeric extract() gives."""
    rows = session.execute(
        text(
            """
            WITH d(t) AS (
                SELECT now() - (k * interval '1 day') + (e * interval '1 microsecond')
                FROM generate_series(-800, 4000, 7) k, unnest(ARRAY[-1000001, -1, 0, 1, 999999]) e
                UNION ALL
                SELECT reported_at FROM cases
            )
            SELECT count(*) FILTER (WHERE {fast} IS DISTINCT FROM
                       floor(extract(epoch FROM :now - t) / 86400)::int),
                   count(*)
            FROM d
            """.replace("{fast}", queries.days_since("t"))
        ),
        {"now": queries.db_now(session)},
    ).one()
    assert rows[0] == 0 and rows[1] > 3000


# -- the same targets from the database as from Python -----------------------------------


@pytest.fixture
def county(session, app, make_user, busy_place):
    """The demo county with more of what targeting weighs, in the test's transaction.

    Repeat chains (one reaching outside the village, one that loops), leaders' old
    cases, cases accusing a unit (and one with an empty unit), visits recorded on a
    past plan, and a published plan whose stops are taken.
    """
    planner = make_user("planner")
    leader = make_user("leader_in_charge")
    ids = (
        session.execute(
            text(
                f"SELECT id FROM cases WHERE township_code = :t AND status NOT IN {FINAL} "
                "AND repeat_of_id IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM cases r WHERE r.repeat_of_id = cases.id) "
                "ORDER BY village_code <> :v, id LIMIT 16"
            ),
            {"t": busy_place.township, "v": busy_place.village},
        )
        .scalars()
        .all()
    )
    elsewhere = session.execute(
        text(
            f"SELECT id FROM cases WHERE township_code <> :t AND status IN {FINAL} "
            "ORDER BY id LIMIT 1"
        ),
        {"t": busy_place.township},
    ).scalar_one()
    closed = (
        session.execute(
            text(
                f"SELECT id FROM cases WHERE township_code = :t AND status IN {FINAL} "
                "ORDER BY village_code <> :v, id LIMIT 2"
            ),
            {"t": busy_place.township, "v": busy_place.village},
        )
        .scalars()
        .all()
    )
    a, b, c, d, e, f, g, h = ids[:8]
    links = {b: a, c: b, e: d, f: elsewhere, g: closed[0], closed[1]: h}
    for child, parent in links.items():
        session.execute(
            text("UPDATE cases SET repeat_of_id = :p WHERE id = :c"), {"p": parent, "c": child}
        )
    session.execute(text("UPDATE cases SET repeat_of_id = :e WHERE id = :d"), {"d": d, "e": e})
    session.execute(
        text(
            "UPDATE cases SET satisfaction = 'dissatisfied', "
            "resolved_at = now() - interval '20 days' WHERE id = :i"
        ),
        {"i": closed[0]},
    )
    session.execute(
        text(
            "UPDATE cases SET leader_id = :u, reported_at = now() - interval '400 days' "
            "WHERE id = ANY(:ids)"
        ),
        {"u": leader.id, "ids": list(ids[8:11])},
    )
    accusing = (
        session.execute(
            text(
                f"SELECT id FROM cases WHERE grid_code = :g AND status NOT IN {FINAL} "
                "AND NOT (id = ANY(:ids)) ORDER BY id LIMIT 3"
            ),
            {"g": busy_place.grid, "ids": list(ids)},
        )
        .scalars()
        .all()
    )
    session.execute(
        text("UPDATE cases SET case_class = 'accusation', accused_unit = :u WHERE id = ANY(:ids)"),
        {"u": "县某某局", "ids": [*ids[11:13], *accusing]},
    )
    session.execute(text("UPDATE cases SET accused_unit = '' WHERE id = :i"), {"i": ids[14]})
    worker = make_user("grid_worker", busy_place.grid)
    today = queries.local_today(session)
    current = new_plan(session, app, planner, busy_place.township, [(worker.id, 3)], days=2)
    planning.publish(session, current)
    past = new_plan(
        session,
        app,
        planner,
        busy_place.township,
        [(worker.id, 4)],
        days=1,
        first=today - timedelta(days=3),
    )
    planning.publish(session, past)
    stop = session.execute(
        text("SELECT id, plan_id FROM visit_stops WHERE plan_id = :p ORDER BY id LIMIT 1"),
        {"p": past.id},
    ).one()
    # visits recorded at households (one on a chain's first case) and in a grid
    visits = [(ids[14], 2), (ids[15], 45), (a, 300), (None, 45)]
    for case_id, days_ago in visits:
        session.execute(
            text(
                "INSERT INTO visit_records (client_id, stop_id, plan_id, case_id, grid_code, "
                "user_id, outcome, received_at) VALUES (:cid, :s, :p, :c, "
                "coalesce((SELECT grid_code FROM cases WHERE id = :c), :g), :u, 'done', "
                "now() - :d * interval '1 day')"
            ),
            {
                "cid": uuid.uuid4(),
                "s": stop.id,
                "p": stop.plan_id,
                "c": case_id,
                "g": busy_place.other_grid,
                "u": worker.id,
                "d": days_ago,
            },
        )
    return {"planner": planner, "leader": leader, "worker": worker, "current": current}


def reference_proposal(session, plan, planner, settings) -> planning.Proposal:
    """The targets of a plan as propose() ranked them before: every candidate in Python."""
    now = queries.db_now(session)
    today = queries.local_today(session)
    bins = queries.hot_spot_bins(
        session, plan.area_code, case_scope_sql(planner), now, settings.hot_spot_days
    )
    cases = queries.case_candidates(
        session, plan.area_code, planner, now, today, settings.dissatisfied_window_days, plan.id
    )
    grids = queries.grid_candidates(
        session, plan.area_code, now, today, settings.grid_unvisited_days, plan.id
    )
    candidates = [with_hot_spot(c, bins) for c in cases + grids_without_case_targets(cases, grids)]
    return planning.Proposal(
        rank(candidates, Weights(plan.weights), settings.rules), len(candidates)
    )


def _seen(t):
    c = t.candidate
    return (
        t.key,
        t.score,
        t.reasons,
        c.facts,
        c.grid_code,
        c.lon,
        c.lat,
        c.leader_id,
        c.accused_unit,
        c.follow_up,
        c.label,
    )


@pytest.mark.parametrize("name", sorted(WEIGHTS))
@pytest.mark.parametrize("level", ["village", "township", "county"])
def test_the_database_ranks_every_target_as_python_does(
    session, app, county, busy_place, level, name
):
    area = {"village": busy_place.village, "township": busy_place.township, "county": "410726"}[
        level
    ]
    settings = settings_for(app)
    plan = SimpleNamespace(id=None, area_code=area, weights=_weights(name).as_dict())
    now = queries.db_now(session)
    bins = queries.hot_spot_bins(
        session, area, case_scope_sql(county["planner"]), now, settings.hot_spot_days
    )
    got = queries.ranked_targets(
        session,
        area,
        county["planner"],
        now,
        queries.local_today(session),
        settings.dissatisfied_window_days,
        settings.grid_unvisited_days,
        bins,
        _weights(name),
        settings.rules,
        None,
        0,
    )
    want = reference_proposal(session, plan, county["planner"], settings)
    assert [_seen(t) for t in got.targets] == [_seen(t) for t in want.targets]
    assert got.considered == want.considered and got.left_out == 0
    if name != "zero":
        assert len(want.targets) >= {"village": 1, "township": 30, "county": 300}[level]
        assert {t.candidate.kind for t in want.targets} == {"case", "grid"} or level != "county"


def test_the_reference_sees_what_the_scenario_planted(session, app, county, busy_place):
    """The comparison above is not vacuous: chains, leaders, visits and ties are there.

    Seen as the published plan sees them (its own stops are not taken from it): which of
    the planted cases that plan took depends on the day's deadlines, not on the scenario.
    """
    plan = SimpleNamespace(
        id=county["current"].id, area_code=busy_place.township, weights=Weights().as_dict()
    )
    targets = reference_proposal(session, plan, county["planner"], settings_for(app)).targets
    facts = [t.candidate.facts for t in targets]
    assert any(f.repeats >= 2 for f in facts)
    assert any(f.leader_case_days >= 365 for f in facts)
    assert any(f.visited_before for f in facts if f.unvisited_days)
    assert any(f.dissatisfied and not f.open for f in facts)
    assert any(t.candidate.accused_unit == "县某某局" for t in targets)
    scores = [t.score for t in targets]
    assert len(set(scores)) < len(scores)  # ties to break


# -- plans: the same stops whether ranked in the database or in Python ------------------


def _stops(session, plan_id):
    return session.execute(
        text(
            "SELECT kind, case_id, grid_code, ST_AsText(location), score, reasons, follow_up, "
            "user_id, day, seq, leg_m, leg_kind, unassigned_reason FROM visit_stops "
            "WHERE plan_id = :p ORDER BY user_id NULLS LAST, day, seq, score DESC, kind, "
            "case_id, grid_code"
        ),
        {"p": plan_id},
    ).all()


# (area, days, unassigned kept, weights, more targets than the people can take)
PLANS = {
    "village, everyone, 2 days": ("village", 2, 3, "default", False),
    "village, odd weights, none kept unassigned": ("village", 1, 0, "halves and odd tenths", False),
    "township, 1 day": ("township", 1, 300, "default", True),
    "township, 2 kept unassigned": ("township", 2, 2, "hot spots and backlog", True),
    "county, ties": ("county", 2, 5, "only unvisited (ties)", True),
    "county, odd weights, none kept unassigned": ("county", 1, 0, "halves and odd tenths", True),
    "county, nothing to rank": ("county", 1, 300, "zero", False),
}


@pytest.mark.parametrize("case", sorted(PLANS))
def test_a_plan_is_the_plan_python_ranking_made(session, app, make_user, county, busy_place, case):
    level, days, kept, name, crowded = PLANS[case]
    people = [
        (make_user("grid_worker", busy_place.grid, unit="县某某局").id, 2),
        (make_user("grid_worker", busy_place.other_grid).id, 1),
        (make_user("village_informant", busy_place.village).id, 2),
        (county["leader"].id, 1),
    ]
    if level != "village":
        people.append((make_user("township_leader", busy_place.township).id, 3))
    if level == "county":
        other = session.execute(
            text(
                "SELECT code FROM areas WHERE level = 'township' AND code <> :t "
                "ORDER BY code LIMIT 1"
            ),
            {"t": busy_place.township},
        ).scalar_one()
        people.append((make_user("township_leader", other).id, 4))
    area = {"village": busy_place.village, "township": busy_place.township, "county": "410726"}[
        level
    ]
    plan = new_plan(
        session,
        app,
        county["planner"],
        area,
        people,
        days=days,
        weights=_weights(name),
        VISITS_MAX_UNASSIGNED=kept,
    )
    ours, overflow = _stops(session, plan.id), plan.overflow
    settings = settings_for(app, VISITS_MAX_UNASSIGNED=kept)
    session.query(VisitStop).filter(VisitStop.plan_id == plan.id).delete()
    session.flush()
    planning.fill_plan(
        session,
        plan,
        county["planner"],
        settings,
        reference_proposal(session, plan, county["planner"], settings),
    )
    assert ours == _stops(session, plan.id)
    assert overflow == plan.overflow
    assert any(r.user_id for r in ours) == (name != "zero")
    if crowded:  # unassigned targets kept up to the setting, the rest counted
        stored = sum(1 for r in ours if r.user_id is None)
        assert stored + overflow > 0 and stored <= kept and (overflow == 0 or stored == kept)
