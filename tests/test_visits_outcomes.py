"""Recording visit outcomes: once per client id (also concurrently), follow-ups, new problems."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import CSRF_HEADERS
from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import new_plan, standalone_cases
from webapp.db import database
from webapp.errors import AppError, NotFound
from webapp.visits import outcomes, planning
from webapp.visits.models import Outcome


@pytest.fixture
def field(session, app, make_user, busy_place):
    """A published plan for the busy village, one concluded case on it awaiting its follow-up."""
    planner = make_user("planner")
    worker = make_user("grid_worker", busy_place.grid)
    (concluded,) = standalone_cases(
        session, busy_place.grid, 1, statuses=("in_progress", "assigned")
    )
    session.execute(
        text(
            "UPDATE cases SET status = 'concluded', concluded_at = now() - interval '5 days', "
            "opinion = 'support' "
            "WHERE id = :i"
        ),
        {"i": concluded},
    )
    plan = new_plan(session, app, planner, busy_place.village, [(worker.id, 20)], days=1)
    planning.publish(session, plan)
    stops = session.execute(
        text(
            "SELECT id, case_id, follow_up FROM visit_stops WHERE plan_id = :p AND user_id = "
            ":u ORDER BY seq"
        ),
        {"p": plan.id, "u": worker.id},
    ).all()
    follow_up = next(s for s in stops if s.case_id == concluded)
    assert follow_up.follow_up
    plain = next(s for s in stops if not s.follow_up and s.case_id)
    return {
        "plan": plan,
        "planner": planner,
        "worker": worker,
        "follow_up": follow_up,
        "plain": plain,
        "case_id": concluded,
    }


def _now(session):
    return session.execute(text("SELECT now()")).scalar_one()


def inp(session, **data):
    data.setdefault("client_id", str(uuid.uuid4()))
    return outcomes.parse_outcome(data, _now(session))


def _count(session, sql, **params):
    return session.execute(text(sql), params).scalar_one()


def test_a_follow_up_updates_the_case_once_however_often_it_is_sent(session, field):
    case_id = field["case_id"]
    version = _count(session, "SELECT version FROM cases WHERE id = :i", i=case_id)
    sent = inp(session, outcome="done", satisfaction="basically", note="已落实补偿款")
    first = outcomes.record_outcome(session, field["worker"], field["follow_up"].id, sent)
    again = outcomes.record_outcome(session, field["worker"], field["follow_up"].id, sent)
    assert first.created and not again.created and again.visit_id == first.visit_id
    assert (
        _count(session, "SELECT count(*) FROM visit_records WHERE client_id = :c", c=sent.client_id)
        == 1
    )
    assert _count(session, "SELECT satisfaction FROM cases WHERE id = :i", i=case_id) == "basically"
    assert _count(session, "SELECT version FROM cases WHERE id = :i", i=case_id) == version + 1
    events = session.execute(
        text(
            "SELECT data, note, actor_id, from_status, to_status FROM case_events "
            "WHERE case_id = :i AND action = 'follow_up'"
        ),
        {"i": case_id},
    ).all()
    assert len(events) == 1
    data, note, actor, before, after = events[0]
    assert (
        data["satisfaction"] == "basically"
        and data["method"] == "visit"
        and data["visit_id"] == first.visit_id
    )
    assert note == "已落实补偿款" and actor == field["worker"].id and before == after == "concluded"
    assert (
        _count(session, "SELECT state FROM visit_stops WHERE id = :i", i=field["follow_up"].id)
        == "done"
    )


def test_satisfaction_rules(session, field):
    worker, fu, plain = field["worker"], field["follow_up"].id, field["plain"].id
    with pytest.raises(AppError) as err:
        outcomes.record_outcome(session, worker, fu, inp(session, outcome="done"))
    assert err.value.code == "satisfaction_required"
    with pytest.raises(AppError) as err:
        outcomes.record_outcome(
            session, worker, plain, inp(session, outcome="done", satisfaction="satisfied")
        )
    assert err.value.code == "satisfaction_not_applicable"
    # nobody home at a follow-up: no satisfaction, the case is untouched
    outcomes.record_outcome(session, worker, fu, inp(session, outcome="nobody_home"))
    assert (
        _count(session, "SELECT satisfaction FROM cases WHERE id = :i", i=field["case_id"]) is None
    )
    assert _count(session, "SELECT state FROM visit_stops WHERE id = :i", i=fu) == "nobody_home"
    assert _count(session, "SELECT count(*) FROM visit_records WHERE stop_id = :i", i=fu) == 1


def test_a_new_problem_becomes_one_case(session, field):
    worker, stop = field["worker"], field["plain"].id
    category = _count(session, "SELECT id FROM categories WHERE code = 'fire_safety'")
    sent = inp(
        session,
        outcome="done",
        note="楼道堆放杂物",
        problem={"title": "楼道堆放杂物堵塞消防通道", "category_id": category, "people_count": 3},
    )
    first = outcomes.record_outcome(session, worker, stop, sent)
    again = outcomes.record_outcome(session, worker, stop, sent)
    assert first.new_case_number and again.new_case_number == first.new_case_number
    rows = session.execute(
        text(
            "SELECT id, channel, reporter_id, title, people_count, grid_code, location_approx "
            "FROM cases "
            "WHERE client_id = :c"
        ),
        {"c": uuid.uuid5(outcomes.NEW_CASE_NAMESPACE, str(sent.client_id))},
    ).all()
    assert len(rows) == 1
    new = rows[0]
    assert new.channel == "grid_sweep" and new.reporter_id == worker.id and new.people_count == 3
    assert new.location_approx  # no phone position: the stop's point
    assert (
        _count(session, "SELECT new_case_id FROM visit_records WHERE id = :v", v=first.visit_id)
        == new.id
    )
    assert (
        _count(
            session,
            "SELECT count(*) FROM case_events WHERE case_id = :i AND action = 'register'",
            i=new.id,
        )
        == 1
    )


def test_a_new_problem_stays_in_the_visitors_county(session, field, tmp_path):
    """A phone standing in another county (one database may hold several) files the new
    problem at the stop's point, in the visitor's county, never into the other county."""
    from tests.builders import import_test_county, u

    import_test_county(session, tmp_path)
    category = _count(session, "SELECT id FROM categories WHERE code = 'fire_safety'")
    lon, lat = u(3, 1.5)
    sent = inp(
        session,
        outcome="done",
        lon=lon,
        lat=lat,
        problem={"title": "路边违章搭建", "category_id": category},
    )
    outcomes.record_outcome(session, field["worker"], field["plain"].id, sent)
    county, approx = session.execute(
        text("SELECT county_code, location_approx FROM cases WHERE client_id = :c"),
        {"c": uuid.uuid5(outcomes.NEW_CASE_NAMESPACE, str(sent.client_id))},
    ).one()
    assert county == field["worker"].county_code and approx


def test_a_leader_finds_a_problem_on_the_leader_channel(session, app, make_user, busy_place):
    leader = make_user("township_leader", busy_place.township)
    planner = make_user("planner")
    plan = new_plan(session, app, planner, busy_place.village, [(leader.id, 3)], days=1)
    planning.publish(session, plan)
    stop = _count(
        session,
        "SELECT id FROM visit_stops WHERE plan_id = :p AND user_id = :u LIMIT 1",
        p=plan.id,
        u=leader.id,
    )
    lon, lat = session.execute(
        text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :g"),
        {"g": busy_place.grid},
    ).one()
    category = _count(session, "SELECT id FROM categories WHERE code = 'other'")
    result = outcomes.record_outcome(
        session,
        leader,
        stop,
        inp(
            session,
            outcome="refused",
            lon=lon,
            lat=lat,
            problem={"title": "路灯损坏", "category_id": category},
        ),
    )
    channel, approx, grid = session.execute(
        text("SELECT channel, location_approx, grid_code FROM cases WHERE id = :i"),
        {"i": result.new_case_id},
    ).one()
    assert channel == "leader" and not approx and grid == busy_place.grid


def test_only_the_assigned_person_on_a_published_plan_records(
    session, app, field, make_user, busy_place
):
    other = make_user("grid_worker", busy_place.grid)
    with pytest.raises(NotFound):
        outcomes.record_outcome(session, other, field["plain"].id, inp(session, outcome="done"))
    draft = new_plan(session, app, field["planner"], busy_place.village, [(other.id, 2)], days=1)
    stop = _count(
        session,
        "SELECT id FROM visit_stops WHERE plan_id = :p AND user_id IS NOT NULL LIMIT 1",
        p=draft.id,
    )
    with pytest.raises(NotFound):
        outcomes.record_outcome(session, other, stop, inp(session, outcome="done"))


def test_a_client_id_belongs_to_one_submission(session, field):
    sent = inp(session, outcome="nobody_home")
    outcomes.record_outcome(session, field["worker"], field["plain"].id, sent)
    with pytest.raises(AppError) as err:
        outcomes.record_outcome(session, field["worker"], field["follow_up"].id, sent)
    assert err.value.code == "client_id_reused"


@pytest.mark.parametrize(
    "data, code",
    [
        ({"outcome": "done"}, "client_id"),
        ({"client_id": "x", "outcome": "done"}, "client_id"),
        ({"client_id": str(uuid.uuid4()), "outcome": "maybe"}, "outcome"),
        ({"client_id": str(uuid.uuid4()), "outcome": "done", "satisfaction": "ok"}, "satisfaction"),
        ({"client_id": str(uuid.uuid4()), "outcome": "done", "lon": "abc", "lat": "1"}, "location"),
        ({"client_id": str(uuid.uuid4()), "outcome": "done", "note": "长" * 2001}, "note"),
        (
            {
                "client_id": str(uuid.uuid4()),
                "outcome": "done",
                "problem": {"title": "", "category_id": 1},
            },
            "problem_title",
        ),
        (
            {"client_id": str(uuid.uuid4()), "outcome": "done", "problem_title": "x"},
            "problem_category",
        ),
    ],
    ids=[
        "no-client-id",
        "bad-client-id",
        "bad-outcome",
        "bad-satisfaction",
        "bad-position",
        "long-note",
        "problem-without-title",
        "problem-without-category",
    ],
)
def test_bad_input_is_refused_in_chinese(session, data, code):
    with pytest.raises(AppError) as err:
        outcomes.parse_outcome(data, _now(session))
    assert err.value.code == "invalid_outcome" and code in err.value.details


def test_a_wrong_phone_clock_does_not_fail_the_outcome(session):
    parsed = outcomes.parse_outcome(
        {"client_id": str(uuid.uuid4()), "outcome": "done", "visited_at": "2001-01-01T08:00:00"},
        _now(session),
    )
    assert parsed.visited_at is None and parsed.outcome is Outcome.DONE


def test_the_api_answers_201_then_200_for_a_resend(client, login, session, field):
    login(user=field["worker"])
    body = {"client_id": str(uuid.uuid4()), "outcome": "refused", "note": "不愿多谈"}
    url = f"/api/v1/visits/stops/{field['plain'].id}/outcomes"
    first = client.post(url, json=body, headers=CSRF_HEADERS)
    again = client.post(url, json=body, headers=CSRF_HEADERS)
    assert first.status_code == 201 and first.json["created"] is True
    assert again.status_code == 200 and again.json["created"] is False
    assert again.json["visit_id"] == first.json["visit_id"]
    bad = client.post(url, json={"outcome": "done"}, headers=CSRF_HEADERS)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_outcome"
    no_csrf = client.post(url, json=body)
    assert no_csrf.status_code == 400 and no_csrf.json["error"]["code"] == "csrf_failed"
    assert (
        client.post(
            url, data="[1]", content_type="application/json", headers=CSRF_HEADERS
        ).status_code
        == 400
    )
    other = client.post(
        f"/api/v1/visits/stops/{field['follow_up'].id + 10**9}/outcomes",
        json=body,
        headers=CSRF_HEADERS,
    )
    assert other.status_code in (404, 409)


def test_the_plain_form_records_once(client, login, session, field):
    login(user=field["worker"])
    form = {
        "csrf_token": "test-csrf-token",
        "client_id": str(uuid.uuid4()),
        "outcome": "done",
        "satisfaction": "satisfied",
        "day": "",
    }
    url = f"/visits/stops/{field['follow_up'].id}/outcome"
    assert client.post(url, data=form).status_code == 302
    assert client.post(url, data=form).status_code == 302
    assert (
        _count(
            session, "SELECT count(*) FROM visit_records WHERE client_id = :c", c=form["client_id"]
        )
        == 1
    )
    page = client.get("/visits/today").get_data(as_text=True)
    assert "已走访" in page


# -- concurrently -------------------------------------------------------------------------


def test_two_copies_sent_at_once_are_recorded_once(live_app, live_user, busy_places):
    """Two connections insert the same client id; the second waits, then finds the first."""
    place = busy_places[1]
    worker = live_user("grid_worker", place.grid)
    planner = live_user("planner")
    db = database(live_app)
    with live_app.app_context():
        s = db.sessions()
        (concluded,) = standalone_cases(s, place.grid, 1)
        s.execute(
            text("UPDATE cases SET status = 'concluded', concluded_at = now() WHERE id = :i"),
            {"i": concluded},
        )
        plan = new_plan(s, live_app, planner, place.village, [(worker.id, 30)], days=1)
        planning.publish(s, plan)
        stop_id = s.execute(
            text("SELECT id FROM visit_stops WHERE plan_id = :p AND case_id = :c"),
            {"p": plan.id, "c": concluded},
        ).scalar_one()
        s.commit()
        s.close()

    client_id = str(uuid.uuid4())
    inserted = threading.Event()
    release = threading.Event()
    results: dict[str, object] = {}

    def first():
        with live_app.app_context():
            s = db.sessions()
            try:
                user = s.get(type(worker), worker.id)
                data = {"client_id": client_id, "outcome": "done", "satisfaction": "dissatisfied"}
                results["first"] = outcomes.record_outcome(
                    s, user, stop_id, outcomes.parse_outcome(data, _now(s))
                )
                inserted.set()
                release.wait(10)
                s.commit()
            except Exception as exc:  # pragma: no cover - reported below
                results["first"] = exc
                inserted.set()
            finally:
                s.close()

    def second():
        inserted.wait(10)
        with live_app.app_context():
            s = db.sessions()
            try:
                user = s.get(type(worker), worker.id)
                data = {"client_id": client_id, "outcome": "done", "satisfaction": "dissatisfied"}
                results["second"] = outcomes.record_outcome(
                    s, user, stop_id, outcomes.parse_outcome(data, _now(s))
                )
                s.commit()
            except Exception as exc:  # pragma: no cover - reported below
                results["second"] = exc
            finally:
                s.close()

    t1, t2 = threading.Thread(target=first), threading.Thread(target=second)
    t1.start()
    t2.start()
    inserted.wait(10)
    time.sleep(0.5)  # the second copy is now waiting on the first one's row
    assert "second" not in results
    release.set()
    t1.join(20)
    t2.join(20)
    a, b = results["first"], results["second"]
    assert isinstance(a, outcomes.Recorded) and isinstance(b, outcomes.Recorded), results
    assert a.created and not b.created and a.visit_id == b.visit_id
    with live_app.app_context():
        s = db.sessions()
        assert (
            s.execute(
                text("SELECT count(*) FROM visit_records WHERE client_id = :c"), {"c": client_id}
            ).scalar_one()
            == 1
        )
        assert (
            s.execute(
                text(
                    "SELECT count(*) FROM case_events WHERE case_id = :i AND action = 'follow_up'"
                ),
                {"i": concluded},
            ).scalar_one()
            == 1
        )
        s.close()


# -- through the case workflow --------------------------------------------------------------


def test_a_follow_up_visit_is_the_workflows_follow_up_action(session, field):
    """Lock, rules, version, event and audit: the same path as the case page's 回访 form."""
    case_id = field["case_id"]
    sent = inp(session, outcome="done", satisfaction="dissatisfied")
    first = outcomes.record_outcome(session, field["worker"], field["follow_up"].id, sent)
    assert first.follow_up == outcomes.FollowUp(True)
    audit = session.execute(
        text("SELECT user_id, detail FROM audit_log WHERE action = 'case_action' AND case_id = :i"),
        {"i": case_id},
    ).all()
    assert [(a.user_id, a.detail["action"], a.detail["to"]) for a in audit] == [
        (field["worker"].id, "follow_up", "concluded")
    ]
    event = session.execute(
        text("SELECT note, data FROM case_events WHERE case_id = :i AND action = 'follow_up'"),
        {"i": case_id},
    ).one()
    assert event.note == "入户回访：不满意"  # no note typed: the default
    assert event.data == {
        "satisfaction": "dissatisfied",
        "method": "visit",
        "visit_id": first.visit_id,
        "plan_id": field["plan"].id,
        "stop_id": field["follow_up"].id,
    }
    # A resend says what the first copy did, and does nothing again.
    again = outcomes.record_outcome(session, field["worker"], field["follow_up"].id, sent)
    assert again.follow_up == outcomes.FollowUp(True) and not again.created
    assert again.as_dict()["follow_up"] == {"applied": True, "code": None, "message": None}


def test_the_rules_decide_whether_a_visit_is_a_follow_up(session, field):
    """The case moved on after the plan was made: the visit is recorded, the case is not touched."""
    case_id = field["case_id"]
    session.execute(
        text(
            "UPDATE cases SET status = 'resolved', resolved_at = now(), satisfaction = 'satisfied' "
            "WHERE id = :i"
        ),
        {"i": case_id},
    )
    version = _count(session, "SELECT version FROM cases WHERE id = :i", i=case_id)
    sent = inp(session, outcome="done", satisfaction="basically")
    got = outcomes.record_outcome(session, field["worker"], field["follow_up"].id, sent)
    assert got.created and not got.follow_up.applied
    assert got.follow_up.code == "action_not_allowed" and "已化解" in got.follow_up.message
    row = session.execute(
        text("SELECT version, satisfaction FROM cases WHERE id = :i"), {"i": case_id}
    ).one()
    assert (row.version, row.satisfaction) == (version, "satisfied")
    assert not _count(
        session,
        "SELECT count(*) FROM case_events WHERE case_id = :i AND action = 'follow_up'",
        i=case_id,
    )
    assert (
        _count(session, "SELECT state FROM visit_stops WHERE id = :i", i=field["follow_up"].id)
        == "done"
    )
    resent = outcomes.record_outcome(session, field["worker"], field["follow_up"].id, sent)
    assert resent.follow_up == outcomes.FollowUp(False)


def test_a_follow_up_outside_the_visitors_scope_is_not_written(
    session, field, make_user, busy_place
):
    """Scope is the case workflow's too: a stop handed to someone who may not see the case."""
    other = make_user("grid_worker", busy_place.other_grid)
    session.execute(
        text("UPDATE visit_stops SET user_id = :u WHERE id = :s"),
        {"u": other.id, "s": field["follow_up"].id},
    )
    got = outcomes.record_outcome(
        session,
        other,
        field["follow_up"].id,
        inp(session, outcome="done", satisfaction="satisfied"),
    )
    assert got.created and got.follow_up.code == "not_found"
    assert (
        _count(session, "SELECT satisfaction FROM cases WHERE id = :i", i=field["case_id"]) is None
    )


def test_follow_up_stops_are_those_the_workflow_takes_a_follow_up_in():
    from webapp.cases.workflow import TRANSITIONS, Action
    from webapp.visits import queries

    assert queries.FOLLOW_UP_FROM == set(TRANSITIONS[Action.FOLLOW_UP])
    assert "l.status IN {follow_up_from} AS follow_up" in queries.CASE_FACTS_SQL


def test_a_new_problem_is_stored_with_its_reporter_and_first_deadline(session, field):
    """insert_case sets the reporter and the first deadline itself (no UPDATE afterwards)."""
    category = _count(session, "SELECT id FROM categories WHERE code = 'fire_safety'")
    sent = inp(
        session, outcome="done", problem={"title": "电动车楼道充电", "category_id": category}
    )
    got = outcomes.record_outcome(session, field["worker"], field["plain"].id, sent)
    row = session.execute(
        text("SELECT reporter_id, due_at, reported_at, status FROM cases WHERE number = :n"),
        {"n": got.new_case_number},
    ).one()
    assert row.reporter_id == field["worker"].id and row.status == "registered"
    assert row.due_at is not None and row.due_at > row.reported_at
