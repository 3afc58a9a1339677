"""The access matrix: every role against every case page and action, in and out of its area;
masked fields stay masked; revealing is allowed by role and logged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from tests.cases_fixtures import *  # noqa: F403
from tests.cases_fixtures import PERSON, other_township_grid
from tests.conftest import CSRF
from webapp.auth.masking import mask_id_number, mask_name, mask_phone
from webapp.auth.models import AuditEntry
from webapp.cases.models import Case, CaseEvent

ROLES = [
    "grid_worker",
    "village_informant",
    "township_leader",
    "county_staff",
    "leader_in_charge",
    "planner",
    "admin",
]
COUNTY = {"county_staff", "admin"}
HANDLERS = COUNTY | {"township_leader", "leader_in_charge"}
FIELD = HANDLERS | {"grid_worker", "village_informant"}
# Who may do each action (the same table as the rules, written out independently).
ACTION_ROLES = {
    "accept": COUNTY,
    "not_accept": COUNTY,
    "assign": COUNTY,
    "close": COUNTY,
    "reopen": COUNTY,
    "escalate": COUNTY,
    "request_review": COUNTY,
    "answer_review": COUNTY,
    "request_reexam": COUNTY,
    "answer_reexam": COUNTY,
    "set_leader": COUNTY,
    "transfer": COUNTY | {"township_leader"},
    "object": COUNTY | {"township_leader"},
    "start": HANDLERS,
    "supervise": HANDLERS,
    "extend": HANDLERS,
    "conclude": HANDLERS,
    "resolve": HANDLERS,
    "mediate": FIELD,
    "follow_up": FIELD,
}
# A status each action is allowed from, the columns its preconditions need, its inputs.
SETUP = {
    "accept": ("registered", {}, {}),
    "not_accept": ("registered", {}, {"reason": "不属于受理范围"}),
    "assign": ("accepted", {}, {"unit": "城关镇人民政府", "level": "township"}),
    "transfer": ("assigned", {}, {"unit": "县人社局", "level": "county"}),
    "object": ("assigned", {}, {"reason": "非本单位职责"}),
    "start": ("assigned", {}, {}),
    "supervise": ("in_progress", {}, {"kind": "listed", "note": "限期办结"}),
    "extend": ("in_progress", {}, {"days": "20", "approver": "局长", "reason": "需鉴定"}),
    "mediate": ("in_progress", {}, {"parties": "甲乙", "agreement": "达成协议"}),
    "conclude": ("in_progress", {}, {"opinion": "support", "text": "予以支持"}),
    "follow_up": ("concluded", {}, {"satisfaction": "satisfied"}),
    "resolve": ("concluded", {"satisfaction": "satisfied"}, {}),
    "close": ("resolved", {}, {}),
    "reopen": ("closed", {}, {"reason": "反映未落实"}),
    "escalate": ("in_progress", {}, {"to": "市信访局", "reason": "跨县"}),
    "request_review": ("concluded", {}, {"note": "不服"}),
    "answer_review": ("reviewing", {}, {"opinion": "explain", "text": "维持"}),
    "request_reexam": ("concluded", {"review_stage": "reviewed"}, {"note": "不服复查"}),
    "answer_reexam": (
        "reexamining",
        {"review_stage": "reviewed"},
        {"opinion": "explain", "text": "维持"},
    ),
    "set_leader": ("in_progress", {}, {"leader_id": "0"}),
}


@pytest.fixture
def people(session, login, demo_areas, make_case, other_county_case, make_user):
    """people(role) -> (user, a case in the user's area, a case outside it)."""

    def make(role):
        user = login(role)
        grid = demo_areas["grid_worker"]
        now = session.execute(text("SELECT now()")).scalar_one()
        recent = {"answered_at": now - timedelta(days=1), "assigned_at": now - timedelta(hours=2)}

        def inside(**kw):
            if role == "leader_in_charge":
                kw.setdefault("leader_id", user.id)
            return make_case(grid, **{**recent, **kw})

        if role in ("county_staff", "admin", "planner"):
            outside = other_county_case
        else:
            outside = make_case(other_township_grid(session, demo_areas["township_leader"]))
        return user, inside, outside

    return make


def _post(client, case, action, inputs):
    return client.post(
        f"/cases/{case.id}/actions/{action}",
        data={"csrf_token": CSRF, "version": case.version, **inputs},
    )


@pytest.mark.parametrize("role", ROLES)
def test_pages(client, session, people, role):
    user, inside, outside = people(role)
    # Overdue since long ago: first on the due page, whose lists start with the most overdue.
    case = inside(
        due_at=session.execute(text("SELECT timestamptz '2001-01-01 00:00+08'")).scalar_one()
    )
    session.refresh(outside)
    for url in ("/cases/", "/cases/due", f"/cases/?q={case.number}", "/cases/?due=overdue"):
        r = client.get(url)
        assert r.status_code == 200, url
        body = r.get_data(as_text=True)
        assert f'href="/cases/{case.id}"' in body, url
        assert f'href="/cases/{outside.id}"' not in body, url
    assert client.get(f"/cases/{case.id}").status_code == 200
    r = client.get(f"/cases/{outside.id}")
    assert r.status_code == 404 and "不存在或您无权查看" in r.get_data(as_text=True)
    assert client.get("/cases/999999999").status_code == 404
    desk = 200 if role in COUNTY else 403
    assert client.get("/cases/new").status_code == desk
    assert client.get("/cases/repeat-candidates?phone=13812345678").status_code == desk


@pytest.mark.parametrize("role", ROLES)
def test_actions(client, session, people, role):
    user, inside, outside = people(role)
    for action, (status, columns, inputs) in SETUP.items():
        case = inside(status=status, **columns)
        r = _post(client, case, action, inputs)
        if role in ACTION_ROLES[action]:
            assert r.status_code == 303, (action, r.status_code, r.get_data(as_text=True)[:3000])
            session.refresh(case)
            last = session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id.desc())
            ).first()
            assert last.action == action and last.actor_id == user.id and last.from_status == status
        else:
            assert r.status_code == 403, (action, r.status_code)
            assert "无权" in r.get_data(as_text=True)
        out = _post(client, outside, action, inputs)
        assert out.status_code == 404, (action, out.status_code)
    for path in ("repeat", f"repeat/{inside().id}/dismiss"):
        r = client.post(
            f"/cases/{outside.id}/{path}",
            data={"csrf_token": CSRF, "version": outside.version, "other_id": outside.id},
        )
        assert r.status_code == (404 if role in COUNTY else 403), path


@pytest.mark.parametrize("role", ROLES)
def test_personal_data_masked_unless_handled_and_reveal_logged(client, session, people, role):
    user, inside, outside = people(role)
    case = inside()
    body = client.get(f"/cases/{case.id}").get_data(as_text=True)
    sees = role in ("county_staff", "leader_in_charge")
    may_reveal = sees or role in ("township_leader", "admin")
    for field, value in PERSON.items():
        assert (value in body) is sees, field
    if not sees:
        assert mask_name(PERSON["petitioner_name"]) in body
        assert mask_phone(PERSON["petitioner_phone"]) in body
        assert mask_id_number(PERSON["petitioner_id_number"]) in body
        # Nor does any other page show them.
        for url in ("/cases/", "/cases/due", f"/cases/?q={case.number}"):
            page = client.get(url).get_data(as_text=True)
            assert (
                PERSON["petitioner_phone"] not in page
                and PERSON["petitioner_id_number"] not in page
            )
    assert ("reveal-button" in body) is (may_reveal and not sees)

    before = session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "reveal_personal_data", AuditEntry.case_id == case.id)
    )
    r = client.post(f"/cases/{case.id}/reveal", data={"csrf_token": CSRF})
    after = session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "reveal_personal_data", AuditEntry.case_id == case.id)
    )
    if may_reveal:
        assert r.status_code == 200
        revealed = r.get_data(as_text=True)
        assert all(v in revealed for v in PERSON.values())
        assert after == before + 1
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "reveal_personal_data", AuditEntry.case_id == case.id
            )
        ).first()
        assert entry.user_id == user.id
        # The next ordinary view is masked again.
        if not sees:
            assert PERSON["petitioner_phone"] not in client.get(f"/cases/{case.id}").get_data(
                as_text=True
            )
    else:
        assert r.status_code == 403 and after == before
        assert PERSON["petitioner_phone"] not in r.get_data(as_text=True)
    assert client.post(f"/cases/{outside.id}/reveal", data={"csrf_token": CSRF}).status_code == 404
    assert client.post(f"/cases/{case.id}/reveal").status_code == 400  # no CSRF token


def test_an_accusation_is_hidden_from_the_accused_unit(
    client, session, login, make_case, demo_areas
):
    grid = demo_areas["grid_worker"]
    long_ago = session.execute(text("SELECT timestamptz '2001-01-01 00:00+08'")).scalar_one()
    case = make_case(grid, case_class="accusation", accused_unit="城关镇国土所", due_at=long_ago)
    login("township_leader", unit="城关镇国土所")
    assert client.get(f"/cases/{case.id}").status_code == 404
    for url in ("/cases/due", "/cases/?due=overdue"):
        assert f'href="/cases/{case.id}"' not in client.get(url).get_data(as_text=True), url
    assert f'href="/cases/{case.id}"' not in client.get(f"/cases/?q={case.number}").get_data(
        as_text=True
    )
    r = client.post(
        f"/cases/{case.id}/actions/supervise",
        data={"csrf_token": CSRF, "version": case.version, "kind": "supervised", "note": "x"},
    )
    assert r.status_code == 404
    login("township_leader", unit="城关镇司法所")
    assert client.get(f"/cases/{case.id}").status_code == 200
    assert f'href="/cases/{case.id}"' in client.get("/cases/due").get_data(as_text=True)
    # Nor may county staff hand it to the body it accuses.
    login("county_staff")
    case.status = "accepted"
    session.flush()
    r = client.post(
        f"/cases/{case.id}/actions/assign",
        data={
            "csrf_token": CSRF,
            "version": case.version,
            "unit": "城关镇国土所",
            "level": "township",
        },
    )
    assert r.status_code == 422 and "不得交由被检举控告的单位" in r.get_data(as_text=True)


def test_actions_need_csrf(client, login, make_case, demo_areas):
    login("county_staff")
    case = make_case(demo_areas["grid_worker"])
    r = client.post(f"/cases/{case.id}/actions/accept", data={"version": case.version})
    assert r.status_code == 400


def test_signed_out_people_are_sent_to_sign_in(client, make_case, demo_areas):
    case = make_case(demo_areas["grid_worker"])
    for url in ("/cases/", "/cases/due", "/cases/new", f"/cases/{case.id}"):
        r = client.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert isinstance(case, Case)
