"""Handling cases through the pages: desk registration, a case from registration to
closing, stale and concurrent actions, repeat suggestions, escaped user text."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from tests.cases_fixtures import *  # noqa: F403
from tests.cases_fixtures import PERSON, point_in
from tests.conftest import CSRF
from webapp.auth.models import AuditEntry
from webapp.cases import deadlines
from webapp.cases.models import Case, CaseEvent, RepeatDismissal
from webapp.cases.petitioners import (
    id_check_char,
    id_number_problem,
    normalize_phone,
    phone_problem,
)
from webapp.cases.workdays import national_calendar


def _form(session, demo_areas, **kw):
    lon, lat = point_in(session, demo_areas["grid_worker"])
    form = {
        "csrf_token": CSRF,
        "channel": "visit",
        "case_class": "request",
        "category_id": "4",
        "title": "讨要工地欠薪",
        "description": "某工地拖欠三个月工资（测试）",
        "people_count": "6",
        "batch_count": "1",
        "petitioner_name": "李四",
        "petitioner_phone": "139 1234 5678",
        "petitioner_id_number": PERSON["petitioner_id_number"][:-1]
        + PERSON["petitioner_id_number"][-1].lower(),
        "lon": f"{lon:.7f}",
        "lat": f"{lat:.7f}",
    }
    form.update(kw)
    return form


def _case_id(response) -> int:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    return int(re.search(r"/cases/(\d+)", response.headers["Location"]).group(1))


def _events(session, case_id):
    return list(
        session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        )
    )


# -- the desk ----------------------------------------------------------------------


def test_register_a_visit_at_a_point_on_the_map(client, session, login, demo_areas):
    user = login("county_staff")
    r = client.post("/cases/new", data=_form(session, demo_areas))
    case = session.get(Case, _case_id(r))
    assert case.grid_code == demo_areas["grid_worker"] and not case.location_approx
    assert case.status == "registered" and case.people_count == 6 and case.channel == "visit"
    assert case.petitioner_phone == "13912345678"  # normalised
    assert case.petitioner_id_number.endswith(PERSON["petitioner_id_number"][-1].upper())
    assert deadlines.last_day_of(case.due_at) >= deadlines.local_date(case.reported_at) + timedelta(
        days=15
    )
    [event] = _events(session, case.id)
    assert (event.action, event.to_status, event.actor_id) == ("register", "registered", user.id)
    assert event.data["collective"] is True
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.case_id == case.id, AuditEntry.action == "case_register")
        )
        == 1
    )
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "集体访" in page and "讨要工地欠薪" in page and "已登记" in page


def _form_id(page: str) -> str:
    return re.search(r'name="client_id" value="([^"]+)"', page).group(1)


def test_the_desk_form_sent_twice_is_one_case(client, session, login, demo_areas):
    """A double click or a browser's retry sends the same form again: one case, one event."""
    login("county_staff")
    form = _form(session, demo_areas, client_id=_form_id(client.get("/cases/new").text))
    first, again = (_case_id(client.post("/cases/new", data=form)) for _ in range(2))
    assert first == again
    assert len(_events(session, first)) == 1
    stored = session.scalar(
        select(func.count()).select_from(Case).where(Case.client_id == uuid.UUID(form["client_id"]))
    )
    audited = session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.case_id == first, AuditEntry.action == "case_register")
    )
    assert (stored, audited) == (1, 1)


def test_a_used_desk_form_filled_in_again_is_refused_not_dropped(
    client, session, login, demo_areas
):
    """The same form brought back from the history and filled in for another matter."""
    login("county_staff")
    form = _form(session, demo_areas, client_id=_form_id(client.get("/cases/new").text))
    first = _case_id(client.post("/cases/new", data=form))
    number = session.get(Case, first).number
    before = session.scalar(select(func.count()).select_from(Case))
    r = client.post("/cases/new", data={**form, "title": "另一件事：邻里噪音"})
    page = r.get_data(as_text=True)
    assert r.status_code == 409 and f"已登记为案件 {number}" in page
    assert _form_id(page) != form["client_id"]  # sent again, the page is a new registration
    assert session.scalar(select(func.count()).select_from(Case)) == before
    second = _case_id(client.post("/cases/new", data={**form, "client_id": _form_id(page)}))
    assert second != first


def test_the_desk_form_from_three_threads_at_once_is_one_case(
    live_server, live_user, live_db_url, demo_areas
):
    from tests.browser import page_csrf, post_at_once, signed_in_http

    http = signed_in_http(live_server, live_user("county_staff"))
    page = http.get(f"{live_server}/cases/new").text
    engine = create_engine(live_db_url)
    with Session(engine) as s:
        form = _form(s, demo_areas, client_id=_form_id(page))
    form["csrf_token"] = page_csrf(page)
    answers = post_at_once(http, f"{live_server}/cases/new", form)
    assert [a.status_code for a in answers] == [303] * 3, [a.text[:300] for a in answers]
    assert len({a.headers["Location"] for a in answers}) == 1
    with Session(engine) as s:
        client_id = uuid.UUID(form["client_id"])
        cases = s.scalars(select(Case.id).where(Case.client_id == client_id)).all()
        assert len(cases) == 1 and len(_events(s, cases[0])) == 1
    engine.dispose()


def test_register_with_only_a_village_sits_at_its_label_point(client, session, login, demo_areas):
    login("county_staff")
    village = demo_areas["village_informant"]
    r = client.post(
        "/cases/new",
        data=_form(session, demo_areas, lon="", lat="", village_code=village, channel="letter"),
    )
    case = session.get(Case, _case_id(r))
    assert case.location_approx and case.village_code == village and case.batch_count == 1
    same = session.execute(
        text(
            "SELECT ST_Equals(c.location, a.label_point) FROM cases c, areas a WHERE c.id = :c AND a.code = :v"
        ),
        {"c": case.id, "v": village},
    ).scalar_one()
    assert same
    assert "位置为估计" in client.get(f"/cases/{case.id}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"petitioner_id_number": "410726199001011230"}, "petitioner_id_number", "校验位不正确"),
        ({"petitioner_id_number": "41072619900101123"}, "petitioner_id_number", "应为 18 位"),
        ({"petitioner_id_number": "410726199002301234"}, "petitioner_id_number", "出生日期无效"),
        ({"petitioner_phone": "12345"}, "petitioner_phone", "电话号码格式不正确"),
        ({"title": ""}, "title", "请填写事项摘要"),
        ({"category_id": "99999"}, "category_id", "请选择问题分类"),
        ({"channel": "grid_sweep"}, "channel", "请选择信访渠道"),
        ({"people_count": "0"}, "people_count", "人数应在"),
        ({"people_count": "2", "batch_count": "3"}, "batch_count", "批次不能多于人数"),
        ({"lon": "", "lat": ""}, "location", "请在地图上点选"),
        ({"lon": "abc", "lat": "35"}, "location", "坐标无效"),
        ({"lon": "100.03", "lat": "30.01"}, "location", "不在本县"),
        ({"lon": "", "lat": "", "village_code": "999999999999"}, "location", "村（社区）不存在"),
    ],
)
def test_bad_registrations_are_refused_in_chinese_and_nothing_is_stored(
    client, session, login, demo_areas, changes, field, message
):
    login("county_staff")
    before = session.scalar(select(func.count()).select_from(Case))
    r = client.post("/cases/new", data=_form(session, demo_areas, **changes))
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert message in body
    assert 'value="李四"' in body  # what was typed is kept
    assert session.scalar(select(func.count()).select_from(Case)) == before


def test_id_number_and_phone_checks():
    first17 = "11010519491231002"
    assert id_check_char(first17) == "X"
    assert id_number_problem(first17 + "X") is None
    assert id_number_problem(first17 + "1") == "身份证号校验位不正确，请核对"
    assert normalize_phone("+86 138-1234-5678") == "13812345678"
    assert phone_problem("03737123456") is None and phone_problem("12345") is not None


# -- a case's life through the pages ---------------------------------------------------


def _act(client, session, case, action, **inputs):
    session.refresh(case)
    return client.post(
        f"/cases/{case.id}/actions/{action}",
        data={"csrf_token": CSRF, "version": case.version, **inputs},
    )


def test_from_registration_to_closing_with_events_and_audit(
    client, session, login, demo_areas, make_user
):
    user = login("county_staff")
    leader = make_user("leader_in_charge", display_name="王包案")
    case = session.get(Case, _case_id(client.post("/cases/new", data=_form(session, demo_areas))))
    steps = [
        ("accept", {}, "accepted"),
        ("set_leader", {"leader_id": str(leader.id)}, "accepted"),
        ("assign", {"unit": "城关镇人民政府", "level": "township", "mode": "assign"}, "assigned"),
        ("start", {"note": "已书面告知"}, "in_progress"),
        ("supervise", {"kind": "listed", "note": "挂牌督办"}, "in_progress"),
        ("extend", {"days": "30", "approver": "张局长", "reason": "需要鉴定"}, "in_progress"),
        ("mediate", {"parties": "工人与包工头", "agreement": "月底前付清"}, "in_progress"),
        ("conclude", {"opinion": "support", "text": "责令支付工资"}, "concluded"),
        ("follow_up", {"satisfaction": "satisfied", "method": "visit"}, "concluded"),
        ("resolve", {}, "resolved"),
        ("close", {}, "closed"),
    ]
    for action, inputs, status in steps:
        r = _act(client, session, case, action, **inputs)
        assert r.status_code == 303, (action, r.get_data(as_text=True)[:1500])
        session.refresh(case)
        assert case.status == status, action
        page = client.get(f"/cases/{case.id}").get_data(as_text=True)
        assert ('id="window-objection"' in page) is (status == "assigned"), action
        assert ('id="window-review"' in page) is (status == "concluded"), action
    assert (
        case.leader_id == leader.id and case.supervision == "listed" and case.extension_days == 30
    )
    assert (
        case.resolved_level == "township" and case.due_at is None and case.version == 1 + len(steps)
    )
    events = _events(session, case.id)
    assert [e.action for e in events] == ["register"] + [s[0] for s in steps]
    assert all(e.actor_id == user.id for e in events)
    audits = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.case_id == case.id, AuditEntry.action == "case_action")
        .order_by(AuditEntry.id)
    ).all()
    assert [a.detail["action"] for a in audits] == [s[0] for s in steps]
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    for text_ in ("挂牌督办", "王包案", "月底前付清", "责令支付工资", "满意", "已销号", "张局长"):
        assert text_ in page, text_
    # The leader in charge now sees the case (and its personal data).
    login(user=leader)
    assert PERSON["petitioner_id_number"][:10] in client.get(f"/cases/{case.id}").get_data(
        as_text=True
    )


def test_refused_actions_say_why_and_change_nothing(client, session, login, make_case, demo_areas):
    login("county_staff")
    case = make_case(demo_areas["grid_worker"], status="concluded")
    r = _act(client, session, case, "resolve")
    assert r.status_code == 409
    body = r.get_data(as_text=True)
    assert "化解前须先回访" in body and "follow_up_required" in body
    r = _act(client, session, case, "accept")
    assert r.status_code == 409 and "不能执行“受理”" in r.get_data(as_text=True)
    r = _act(client, session, case, "conclude", opinion="support", text="x")
    assert r.status_code == 409
    case.status = "in_progress"
    session.flush()
    r = _act(client, session, case, "conclude", opinion="", text="")
    assert r.status_code == 422 and "请选择处理意见" in r.get_data(as_text=True)
    r = client.post(
        f"/cases/{case.id}/actions/accept",
        data={"csrf_token": CSRF, "version": case.version},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "action_not_allowed"
    r = client.post(
        f"/cases/{case.id}/actions/fly", data={"csrf_token": CSRF, "version": case.version}
    )
    assert r.status_code == 404
    session.refresh(case)
    assert case.version == 1 and [e.action for e in _events(session, case.id)] == ["register"]


def test_an_action_form_sent_twice_is_done_once(client, session, login, make_case, demo_areas):
    """A double click on 受理 (or a retried POST) is answered as done, not as a stale page;
    the same page's form sent with other content is still refused as stale."""
    login("county_staff")
    case = make_case(demo_areas["grid_worker"])
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    form_id = re.search(r'name="form_id" value="([0-9a-f-]{36})"', page).group(1)
    form = {"csrf_token": CSRF, "version": case.version, "form_id": form_id, "note": "同意受理"}
    first = client.post(f"/cases/{case.id}/actions/accept", data=form)
    again = client.post(f"/cases/{case.id}/actions/accept", data=form)
    assert first.status_code == again.status_code == 303
    assert "这项操作已办理，未重复执行" in client.get(f"/cases/{case.id}").get_data(as_text=True)
    accepted = [e for e in _events(session, case.id) if e.action == "accept"]
    assert len(accepted) == 1 and accepted[0].note == "同意受理"
    as_json = client.post(
        f"/cases/{case.id}/actions/accept", data=form, headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 200 and as_json.get_json()["status"] == "accepted"
    other = client.post(f"/cases/{case.id}/actions/accept", data={**form, "note": "改了意见"})
    assert other.status_code == 409 and "案件已被他人更新，请刷新" in other.get_data(as_text=True)
    session.refresh(case)
    assert case.version == form["version"] + 1


def test_a_stale_version_is_refused(client, session, login, make_case, demo_areas):
    login("county_staff")
    case = make_case(demo_areas["grid_worker"])
    seen = case.version
    ok = client.post(f"/cases/{case.id}/actions/accept", data={"csrf_token": CSRF, "version": seen})
    assert ok.status_code == 303
    again = client.post(
        f"/cases/{case.id}/actions/not_accept",
        data={"csrf_token": CSRF, "version": seen, "reason": "重复"},
    )
    assert again.status_code == 409
    assert "案件已被他人更新，请刷新" in again.get_data(as_text=True)
    missing = client.post(
        f"/cases/{case.id}/actions/assign",
        data={"csrf_token": CSRF, "unit": "镇", "level": "township"},
    )
    assert missing.status_code == 409
    session.refresh(case)
    assert case.status == "accepted" and case.version == seen + 1


def test_two_people_acting_at_once_cannot_overwrite_each_other(app, live_db_url, demo_areas):
    """Two real transactions: the second waits for the row lock, then finds a newer version."""
    from webapp.auth.accounts import create_user
    from webapp.cases import queries
    from webapp.cases.rules import county_rules

    engine = create_engine(live_db_url)
    with app.app_context():
        rules = county_rules("410726")
        with Session(engine, expire_on_commit=False) as s:
            users = [
                create_user(
                    s,
                    f"conc_{i}_{uuid.uuid4().hex[:6]}",
                    "county_staff",
                    "410726",
                    "a-long-password",
                )
                for i in range(2)
            ]
            lon, lat = point_in(s, demo_areas["grid_worker"])
            stored = queries.insert_case(
                s,
                queries.NewCase(title="并发测试", category_id=1, channel="visit", lon=lon, lat=lat),
            )
            s.commit()
        first, second = Session(engine), Session(engine)
        results = {}
        queries.apply_action(
            first, users[0], stored.id, 1, "accept", {}, rules
        )  # holds the row lock

        def other():
            try:
                queries.apply_action(
                    second, users[1], stored.id, 1, "not_accept", {"reason": "x"}, rules
                )
                second.commit()
                results["second"] = "done"
            except Exception as exc:  # noqa: BLE001 - the error is the result
                second.rollback()
                results["second"] = getattr(exc, "code", repr(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join(timeout=1.0)
        assert t.is_alive()  # waiting for the first one's lock
        first.commit()
        t.join(timeout=10)
        assert results["second"] == "case_stale"
        with Session(engine) as s:
            row = s.get(Case, stored.id)
            assert (row.status, row.version) == ("accepted", 2)
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(CaseEvent)
                    .where(CaseEvent.case_id == stored.id)
                )
                == 1
            )
        first.close()
        second.close()
    engine.dispose()


# -- appeals and the same matter -------------------------------------------------------


def test_after_reexamination_the_same_matter_is_refused(
    client, session, login, make_case, demo_areas
):
    login("county_staff")
    grid = demo_areas["grid_worker"]
    old = make_case(
        grid,
        status="concluded",
        answered_at=session.execute(text("SELECT now() - interval '2 days'")).scalar_one(),
    )
    for action, inputs, _status in [
        ("request_review", {"note": "不服"}, "reviewing"),
        ("answer_review", {"opinion": "explain", "text": "维持"}, "concluded"),
        ("request_reexam", {"note": "不服复查"}, "reexamining"),
        ("answer_reexam", {"opinion": "explain", "text": "维持复查意见"}, "concluded"),
    ]:
        assert _act(client, session, old, action, **inputs).status_code == 303, action
    session.refresh(old)
    assert old.review_stage == "reexamined"
    r = _act(client, session, old, "request_review", note="再次申请")
    assert r.status_code == 409 and "复核终结" in r.get_data(as_text=True)
    new = make_case(grid)
    r = client.post(
        f"/cases/{new.id}/repeat",
        data={"csrf_token": CSRF, "version": new.version, "other_id": old.id},
    )
    assert r.status_code == 303
    session.refresh(new)
    assert new.repeat_of_id == old.id and new.is_first is False
    r = _act(client, session, new, "accept")
    assert r.status_code == 409 and "不再受理" in r.get_data(as_text=True)
    assert _act(client, session, new, "not_accept", reason="同一事项已复核终结").status_code == 303


# -- repeats ---------------------------------------------------------------------------


def test_repeat_suggestions_by_person_and_by_place(client, session, login, make_case, demo_areas):
    login("county_staff")
    grid = demo_areas["grid_worker"]
    phone = "1370000" + str(uuid.uuid4().int)[:4]
    lonlat = point_in(session, grid)
    by_person = make_case(
        grid, petitioner_phone=phone, petitioner_id_number=None, category_id=2, title="同人"
    )
    near = make_case(
        grid,
        lonlat=point_in(session, grid, dx_m=200),
        category_id=3,
        petitioner_phone=None,
        petitioner_id_number=None,
        title="近处同类",
    )
    far = make_case(
        grid,
        lonlat=point_in(session, grid, dx_m=400),
        category_id=3,
        petitioner_phone=None,
        petitioner_id_number=None,
        title="远处同类",
    )
    other_cat = make_case(
        grid,
        lonlat=point_in(session, grid, dx_m=50),
        category_id=5,
        petitioner_phone=None,
        petitioner_id_number=None,
        title="近处异类",
    )
    r = client.get(
        f"/cases/repeat-candidates?phone={phone}&category_id=3&lon={lonlat[0]}&lat={lonlat[1]}"
    )
    found = {c["id"]: c for c in r.get_json()["candidates"]}
    assert by_person.id in found and found[by_person.id]["same_person"]
    assert near.id in found and 190 <= found[near.id]["distance_m"] <= 210
    assert far.id not in found and other_cat.id not in found
    assert phone not in r.get_data(as_text=True)  # the answer carries no personal data
    # On the case file: a new case by the same person is offered the link; dismiss it.
    new = make_case(grid, petitioner_phone=phone, petitioner_id_number=None, category_id=9)
    page = client.get(f"/cases/{new.id}").get_data(as_text=True)
    assert "可能的重复信访" in page and by_person.number in page
    r = client.post(f"/cases/{new.id}/repeat/{by_person.id}/dismiss", data={"csrf_token": CSRF})
    assert r.status_code == 303
    assert session.get(RepeatDismissal, (new.id, by_person.id)) is not None
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.case_id == new.id, AuditEntry.action == "case_dismiss_repeat")
        )
        == 1
    )
    assert by_person.number not in client.get(f"/cases/{new.id}").get_data(as_text=True)
    # Dismissing twice is harmless.
    assert (
        client.post(
            f"/cases/{new.id}/repeat/{by_person.id}/dismiss", data={"csrf_token": CSRF}
        ).status_code
        == 303
    )


def test_register_as_a_repeat(client, session, login, make_case, demo_areas):
    login("county_staff")
    old = make_case(demo_areas["grid_worker"])
    r = client.post("/cases/new", data=_form(session, demo_areas, repeat_of_id=str(old.id)))
    case = session.get(Case, _case_id(r))
    assert case.repeat_of_id == old.id and case.is_first is False
    assert [e.action for e in _events(session, case.id)] == ["register", "link_repeat"]
    assert old.number in client.get(f"/cases/{case.id}").get_data(as_text=True)


# -- user text is shown escaped everywhere ---------------------------------------------

PAYLOADS = [
    '<script>alert("x")</script>',
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>&amp;',
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_are_escaped_on_every_page(client, session, login, demo_areas, make_user, payload):
    login("county_staff")
    form = _form(
        session,
        demo_areas,
        title="T" + payload,
        description="D" + payload,
        petitioner_name="N" + payload,
        case_class="accusation",
        accused_unit="A" + payload,
    )
    refused = client.post("/cases/new", data={**form, "petitioner_phone": "bad"})
    assert refused.status_code == 422
    assert payload not in refused.get_data(as_text=True) and str(
        escape("T" + payload)
    ) in refused.get_data(as_text=True)
    case = session.get(Case, _case_id(client.post("/cases/new", data=form)))
    assert case.title == "T" + payload  # stored as typed
    steps = [
        ("accept", {"note": "n1" + payload}),
        ("assign", {"unit": "U" + payload, "level": "township", "note": "n2" + payload}),
        ("start", {"note": "n3" + payload}),
        ("supervise", {"kind": "supervised", "note": "n4" + payload}),
        ("extend", {"days": "5", "approver": "P" + payload, "reason": "r" + payload}),
        ("mediate", {"parties": "Q" + payload, "agreement": "g" + payload}),
        ("escalate", {"to": "E" + payload, "reason": "e" + payload}),
        ("reopen", {"reason": "o" + payload}),
        ("conclude", {"opinion": "explain", "text": "c" + payload}),
        ("follow_up", {"satisfaction": "dissatisfied", "note": "f" + payload}),
        ("request_review", {"note": "v" + payload}),
    ]
    for action, inputs in steps:
        assert _act(client, session, case, action, **inputs).status_code == 303, action
    session.refresh(case)
    case.due_at = session.execute(text("SELECT timestamptz '2001-01-01 00:00+08'")).scalar_one()
    case.status = "in_progress"
    session.flush()
    pages = {
        "detail": client.get(f"/cases/{case.id}"),
        "list": client.get(f"/cases/?q={case.number}"),
        "due": client.get("/cases/due"),
        "reveal": client.post(f"/cases/{case.id}/reveal", data={"csrf_token": CSRF}),
        "refused": _act(client, session, case, "accept"),
    }
    for name, r in pages.items():
        body = r.get_data(as_text=True)
        assert payload not in body, name
        assert "T" + str(escape(payload)) in body, name
    detail = pages["detail"].get_data(as_text=True)
    for prefix in ("D", "N", "A", "U", "n1", "n4", "P", "Q", "g", "E", "e", "o", "c", "f", "v"):
        assert prefix + str(escape(payload)) in detail, prefix
    # The map data block cannot be closed by user text either.
    assert "</script><script" not in detail


def test_a_deadline_beyond_the_holiday_data_is_marked_as_an_estimate(
    app, client, session, login, make_case, demo_areas, monkeypatch
):
    login("county_staff")
    grid = demo_areas["grid_worker"]
    year = max(national_calendar().known_years) + 1
    later = make_case(
        grid,
        due_at=session.execute(text(f"SELECT timestamptz '{year}-03-02 00:00+08'")).scalar_one(),
    )
    known = make_case(
        grid,
        due_at=session.execute(
            text(f"SELECT timestamptz '{year - 1}-03-02 00:00+08'")
        ).scalar_one(),
    )
    assert 'id="due-estimated"' in client.get(f"/cases/{later.id}").get_data(as_text=True)
    assert 'id="due-estimated"' not in client.get(f"/cases/{known.id}").get_data(as_text=True)
    # Once the county enters the year's notice, the deadline is no longer an estimate.
    monkeypatch.setitem(app.config, "HOLIDAY_OVERRIDES", {f"{year}-01-01": "holiday"})
    monkeypatch.setitem(app.extensions, "gridcase.case_rules", {})
    assert 'id="due-estimated"' not in client.get(f"/cases/{later.id}").get_data(as_text=True)


# -- the list --------------------------------------------------------------------------


def _ids(body: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td class="nowrap"><a href="/cases/(\d+)">', body)]


def test_list_filters_and_stable_pages(client, session, login, make_case, demo_areas):
    login("county_staff")
    first, second = (
        _ids(client.get("/cases/").get_data(as_text=True)),
        _ids(client.get("/cases/?page=2").get_data(as_text=True)),
    )
    assert len(first) == 50 and len(second) == 50 and not set(first) & set(second)
    assert first == _ids(client.get("/cases/?page=1").get_data(as_text=True))  # stable
    body = client.get("/cases/?page=2&status=closed").get_data(as_text=True)
    assert 'href="/cases/?status=closed" rel="prev"' in body
    assert 'href="/cases/?status=closed&amp;page=3" rel="next"' in body
    rows = session.execute(text("SELECT id FROM cases WHERE status = 'closed'")).scalars().all()
    assert set(_ids(body)) <= set(rows)

    grid = demo_areas["grid_worker"]
    marked = make_case(grid, title="唯一标题-筛选测试_%", channel="letter", category_id=7)
    for query in (
        "q=唯一标题-筛选测试_%25",
        "channel=letter&category=7&q=筛选测试",
        f"area={grid[:9]}&q=筛选测试",
        f"area={grid[:12]}&q=筛选测试",
        f"area={grid}&q=筛选测试",
    ):
        assert _ids(client.get(f"/cases/?{query}").get_data(as_text=True)) == [marked.id], query
    assert _ids(client.get("/cases/?channel=visit&q=筛选测试").get_data(as_text=True)) == []
    assert _ids(client.get("/cases/?q=%25").get_data(as_text=True))[:1] == [
        marked.id
    ]  # % is literal
    today = deadlines.local_date(marked.reported_at)
    assert marked.id in _ids(
        client.get(f"/cases/?since={today}&until={today}").get_data(as_text=True)
    )
    assert marked.id not in _ids(
        client.get(f"/cases/?until={today - timedelta(days=1)}").get_data(as_text=True)
    )
    # Malformed filters are ignored, never a 500.
    r = client.get("/cases/?status=nope&category=x&since=2025-13-45&page=-3&area=abc&due=whenever")
    assert r.status_code == 200 and len(_ids(r.get_data(as_text=True))) == 50
