"""Visit pages: who may open what, masking of personal data, the map document, edits over HTTP."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from tests.conftest import CSRF
from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import new_plan
from webapp.auth.masking import mask_name, mask_phone
from webapp.visits import planning


@pytest.fixture
def published(session, app, make_user, busy_place):
    planner = make_user("planner")
    worker = make_user("grid_worker", busy_place.grid)
    other = make_user("grid_worker", busy_place.other_grid)
    plan = new_plan(
        session, app, planner, busy_place.village, [(worker.id, 4), (other.id, 4)], days=1
    )
    planning.publish(session, plan)
    people = session.execute(
        text(
            """
            SELECT s.user_id, c.id, c.petitioner_name, c.petitioner_phone, c.petitioner_id_number
            FROM visit_stops s JOIN cases c ON c.id = s.case_id
            WHERE s.plan_id = :p AND s.user_id IS NOT NULL AND c.petitioner_name IS NOT NULL
              AND c.petitioner_phone IS NOT NULL
            """
        ),
        {"p": plan.id},
    ).all()
    mine = [p for p in people if p.user_id == worker.id]
    theirs = [p for p in people if p.user_id == other.id]
    assert mine and theirs
    return {
        "plan": plan,
        "planner": planner,
        "worker": worker,
        "other": other,
        "mine": mine,
        "theirs": theirs,
    }


def _html(client, url) -> str:
    r = client.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return r.get_data(as_text=True)


def test_planners_never_see_raw_personal_data_on_the_plan(client, login, published):
    plan = published["plan"]
    everyone = published["mine"] + published["theirs"]
    for role in ("planner", "county_staff", "admin"):
        login(role) if role != "planner" else login(user=published["planner"])
        for url in (
            f"/visits/plans/{plan.id}",
            f"/visits/plans/{plan.id}/sheet",
            f"/visits/plans/{plan.id}/map",
        ):
            page = _html(client, url)
            for p in everyone:
                assert p.petitioner_name not in page and p.petitioner_phone not in page, (role, url)
                assert p.petitioner_id_number not in page
            if not url.endswith("/map"):
                assert mask_name(everyone[0].petitioner_name) in page
    # the map carries no personal data at all, not even masked
    page = _html(client, f"/visits/plans/{plan.id}/map")
    assert mask_phone(everyone[0].petitioner_phone) not in page


def test_the_assigned_visitor_sees_their_stops_contacts_and_it_is_logged(
    client, login, session, published
):
    login(user=published["worker"])
    page = _html(client, f"/visits/today?day={published['plan'].date_from.isoformat()}")
    for p in published["mine"]:
        assert p.petitioner_name in page and p.petitioner_phone in page
        assert p.petitioner_id_number not in page
    for p in published["theirs"]:
        assert p.petitioner_name not in page
    logged = (
        session.execute(
            text(
                "SELECT detail FROM audit_log WHERE user_id = :u AND action = 'view_visit_contacts'"
            ),
            {"u": published["worker"].id},
        )
        .scalars()
        .all()
    )
    assert logged and set(logged[-1]["case_ids"]) == {p.id for p in published["mine"]}
    sheet = _html(
        client, f"/visits/plans/{published['plan'].id}/sheet?user={published['worker'].id}"
    )
    assert published["mine"][0].petitioner_phone in sheet
    assert published["theirs"][0].petitioner_name not in sheet


def test_a_township_leader_who_plans_and_walks_sees_contacts_masked_on_the_plan(
    client, login, session, app, make_user, busy_place
):
    """A township leader may plan visits and walk them: on the plan's own pages (planners'
    pages) their stops' contacts are masked like everyone's; whole, and logged, only on
    their sheet and phone page."""
    leader = make_user("township_leader", busy_place.village[:9])
    plan = new_plan(session, app, leader, busy_place.village, [(leader.id, 4)], days=1)
    planning.publish(session, plan)
    mine = session.execute(
        text(
            """
            SELECT s.id AS stop_id, c.petitioner_name, c.petitioner_phone
            FROM visit_stops s JOIN cases c ON c.id = s.case_id
            WHERE s.plan_id = :p AND s.user_id = :u AND c.petitioner_name IS NOT NULL
              AND c.petitioner_phone IS NOT NULL
            """
        ),
        {"p": plan.id, "u": leader.id},
    ).all()
    assert mine
    login(user=leader)

    def logged() -> int:
        return session.execute(
            text(
                "SELECT count(*) FROM audit_log "
                "WHERE user_id = :u AND action = 'view_visit_contacts'"
            ),
            {"u": leader.id},
        ).scalar_one()

    before = logged()
    for url in (
        f"/visits/plans/{plan.id}",
        f"/visits/plans/{plan.id}?user={leader.id}",
        f"/visits/plans/{plan.id}/stops/{mine[0].stop_id}",
        f"/visits/plans/{plan.id}/map",
    ):
        page = _html(client, url)
        for p in mine:
            assert p.petitioner_name not in page and p.petitioner_phone not in page, url
    assert mask_name(mine[0].petitioner_name) in _html(client, f"/visits/plans/{plan.id}")
    assert logged() == before
    sheet = _html(client, f"/visits/plans/{plan.id}/sheet?user={leader.id}")
    assert mine[0].petitioner_name in sheet and mine[0].petitioner_phone in sheet
    assert logged() == before + 1


def test_a_worker_sees_nothing_of_another_persons_stops_or_the_plan(client, login, published):
    plan = published["plan"]
    login(user=published["worker"])
    assert client.get(f"/visits/plans/{plan.id}").status_code == 404
    assert client.get(f"/visits/plans/{plan.id}/sheet").status_code == 404
    assert (
        client.get(f"/visits/plans/{plan.id}/sheet?user={published['other'].id}").status_code == 404
    )
    assert (
        client.get(f"/visits/plans/{plan.id}/map?user={published['other'].id}").status_code == 404
    )
    assert (
        client.get(f"/visits/plans/{plan.id}/map?user={published['worker'].id}").status_code == 200
    )
    assert client.get("/visits/new").status_code == 403
    assert client.get("/visits/").status_code == 302


def test_a_draft_is_not_shown_to_workers(client, login, session, app, make_user, busy_place):
    planner = make_user("planner")
    worker = make_user("grid_worker", busy_place.grid)
    plan = new_plan(session, app, planner, busy_place.village, [(worker.id, 3)], days=1)
    login(user=worker)
    page = _html(client, f"/visits/today?day={plan.date_from.isoformat()}")
    assert 'id="no-stops"' in page
    assert client.get(f"/visits/plans/{plan.id}/map?user={worker.id}").status_code == 404


def test_another_townships_planner_gets_404(client, login, session, published, busy_place):
    other = session.execute(
        text(
            "SELECT code FROM areas WHERE level = 'township' AND code <> :t ORDER BY code LIMIT 1"
        ),
        {"t": busy_place.township},
    ).scalar_one()
    login("township_leader", other)
    assert client.get(f"/visits/plans/{published['plan'].id}").status_code == 404
    assert (
        client.post(
            f"/visits/plans/{published['plan'].id}/optimise", data={"csrf_token": CSRF}
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/visits/plans/{published['plan'].id}/progress").status_code == 404


def test_the_map_is_its_own_document_with_inline_scripts_allowed_only_there(
    client, login, published
):
    login(user=published["planner"])
    plan_id = published["plan"].id
    page = client.get(f"/visits/plans/{plan_id}")
    assert (
        "'unsafe-inline'"
        not in page.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    )
    assert f'src="/visits/plans/{plan_id}/map' in page.get_data(as_text=True)
    doc = client.get(f"/visits/plans/{plan_id}/map")
    script_src = doc.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    nonce = re.fullmatch(r" 'self' 'nonce-([A-Za-z0-9_-]{16,})'", script_src).group(1)
    html = doc.get_data(as_text=True)
    # Every inline script carries this response's nonce; nothing is allowed inline otherwise.
    assert html.count(f'nonce="{nonce}"') == len(re.findall(r"<script(?![^>]*\bsrc=)", html)) > 0
    resources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert resources and all(u.startswith(("/vendor/", "/static/")) for u in resources)
    assert "vs-stop" in html and "L.polyline" in html


def test_making_a_plan_over_http(client, login, session, make_user, busy_place):
    planner = login("planner")
    worker = make_user("grid_worker", busy_place.grid)
    page = _html(client, f"/visits/new?area={busy_place.village}")
    assert f'name="person_{worker.id}"' in page
    today = session.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar_one()
    form = {
        "csrf_token": CSRF,
        "area": busy_place.village,
        "title": "敲门行动第一周",
        "date_from": today.isoformat(),
        "date_to": today.isoformat(),
        "start_mode": "committee",
        f"person_{worker.id}": "1",
        f"capacity_{worker.id}": "4",
        "w_hot_spot": "30",
    }
    r = client.post("/visits/new", data=form)
    assert r.status_code == 302
    plan_id = int(r.headers["Location"].rsplit("/", 1)[1])
    page = _html(client, f"/visits/plans/{plan_id}")
    assert "敲门行动第一周" in page and 'value="30"' in page
    assert (
        session.execute(
            text("SELECT created_by FROM visit_plans WHERE id = :i"), {"i": plan_id}
        ).scalar()
        == planner.id
    )
    progress = client.get(f"/api/v1/visits/plans/{plan_id}/progress").json
    assert progress["totals"]["total"] == 4 and progress["totals"]["pending"] == 4
    assert (
        client.post(f"/visits/plans/{plan_id}/publish", data={"csrf_token": CSRF}).status_code
        == 302
    )
    assert "已发布" in _html(client, f"/visits/plans/{plan_id}")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"title": ""}, "请填写计划名称"),
        ({"date_to": "2000-01-01"}, "结束日期不能早于开始日期"),
        ({"date_from": "not-a-date"}, "开始日期格式应为"),
        ({"capacity_X": "0"}, "每日走访数须为"),
        ({"w_open": "-5"}, "权重须在"),
        ({"start_mode": "point", "start_lon": "abc"}, "请在地图上点选起点"),
        ({"person_X": ""}, "请至少选择一名走访人员"),
    ],
    ids=[
        "no-title",
        "dates-reversed",
        "bad-date",
        "zero-capacity",
        "negative-weight",
        "bad-start",
        "nobody",
    ],
)
def test_a_bad_plan_is_refused_in_chinese_and_nothing_is_stored(
    client, login, session, make_user, busy_place, change, message
):
    login("planner")
    worker = make_user("grid_worker", busy_place.grid)
    today = session.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar_one()
    form = {
        "csrf_token": CSRF,
        "area": busy_place.village,
        "title": "计划",
        "date_from": today.isoformat(),
        "date_to": today.isoformat(),
        f"person_{worker.id}": "1",
        f"capacity_{worker.id}": "3",
    }
    for k, v in change.items():
        form[k.replace("X", str(worker.id))] = v
    before = session.execute(text("SELECT count(*) FROM visit_plans")).scalar_one()
    r = client.post("/visits/new", data=form)
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert session.execute(text("SELECT count(*) FROM visit_plans")).scalar_one() == before


def test_edits_over_http_keep_capacity(client, login, session, app, make_user, busy_place):
    planner = login("planner")
    w1 = make_user("grid_worker", busy_place.grid)
    plan = new_plan(session, app, planner, busy_place.village, [(w1.id, 2)], days=2)
    stops = session.execute(
        text(
            "SELECT id, day, seq FROM visit_stops WHERE plan_id = :p AND user_id IS NOT NULL "
            "ORDER BY day, seq"
        ),
        {"p": plan.id},
    ).all()
    first_day = [s for s in stops if s.day == plan.date_from]
    second = [s for s in stops if s.day == plan.date_to][0]
    r = client.post(
        f"/visits/plans/{plan.id}/stops/{second.id}/move",
        data={"csrf_token": CSRF, "user_day": f"{w1.id}|{plan.date_from.isoformat()}"},
    )
    assert r.status_code == 409 and "已排满" in r.get_data(as_text=True)
    r = client.post(
        f"/visits/plans/{plan.id}/stops/{first_day[1].id}/move",
        data={"csrf_token": CSRF, "direction": "up"},
    )
    assert r.status_code == 302
    order = (
        session.execute(
            text(
                "SELECT id FROM visit_stops WHERE plan_id = :p AND user_id = :u AND day = :d "
                "ORDER BY seq"
            ),
            {"p": plan.id, "u": w1.id, "d": plan.date_from},
        )
        .scalars()
        .all()
    )
    assert order == [first_day[1].id, first_day[0].id]
    assert (
        client.post(
            f"/visits/plans/{plan.id}/stops/{first_day[0].id}/drop", data={"csrf_token": CSRF}
        ).status_code
        == 302
    )
    assert (
        client.post(
            f"/visits/plans/{plan.id}/stops/{second.id}/move",
            data={"csrf_token": CSRF, "user_day": f"{w1.id}|{plan.date_from.isoformat()}"},
        ).status_code
        == 302
    )
    assert _html(client, f"/visits/plans/{plan.id}/stops/{second.id}")
    assert (
        client.post(
            f"/visits/plans/{plan.id}/optimise", data={"csrf_token": CSRF, "user_day": "garbage"}
        ).status_code
        == 400
    )


def test_a_refused_plan_keeps_what_was_typed(client, login, session, make_user, busy_place):
    login("planner")
    worker = make_user("grid_worker", busy_place.grid)
    form = {
        "csrf_token": CSRF,
        "area": busy_place.village,
        "title": "第二周敲门行动",
        "date_from": "2000-01-01",
        "date_to": "2000-01-02",
        f"person_{worker.id}": "1",
        f"capacity_{worker.id}": "6",
        "w_dissatisfied": "40",
    }
    r = client.post("/visits/new", data=form)
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "开始日期不能早于今天" in page
    assert 'value="第二周敲门行动"' in page and 'value="40"' in page
    assert re.search(rf'name="person_{worker.id}"[^>]*checked', page)
    assert re.search(rf'name="capacity_{worker.id}"[^>]*value="6"', page)


def _form_id(page: str) -> str:
    return re.search(r'name="client_id" value="([0-9a-f-]{36})"', page).group(1)


def test_the_same_plan_form_sent_twice_makes_one_plan(
    client, login, session, make_user, busy_place
):
    login("planner")
    worker = make_user("grid_worker", busy_place.grid)
    page = _html(client, f"/visits/new?area={busy_place.village}")
    today = session.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar_one()
    form = {
        "csrf_token": CSRF,
        "client_id": _form_id(page),
        "area": busy_place.village,
        "title": "双击也只生成一个",
        "date_from": today.isoformat(),
        "date_to": today.isoformat(),
        f"person_{worker.id}": "1",
        f"capacity_{worker.id}": "3",
    }

    def plans() -> int:
        return session.execute(
            text("SELECT count(*) FROM visit_plans WHERE title LIKE '双击%'")
        ).scalar_one()

    first = client.post("/visits/new", data=form)
    again = client.post("/visits/new", data=form)
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert "未重复生成" in _html(client, again.headers["Location"])
    assert plans() == 1
    # The page brought back from the history and filled in again: refused, not taken for
    # a resend, what was typed kept on a form of its own.
    other = client.post("/visits/new", data={**form, "title": "双击后改了名"})
    page = other.get_data(as_text=True)
    assert other.status_code == 409 and "这张表已生成过另一个计划" in page
    assert 'value="双击后改了名"' in page and _form_id(page) != form["client_id"]
    assert plans() == 1
    sent = client.post(
        "/visits/new", data={**form, "title": "双击后改了名", "client_id": _form_id(page)}
    )
    assert sent.status_code == 302 and plans() == 2


def test_a_refused_plan_form_keeps_its_id(client, login, session, make_user, busy_place):
    login("planner")
    worker = make_user("grid_worker", busy_place.grid)
    page = _html(client, f"/visits/new?area={busy_place.village}")
    form = {
        "csrf_token": CSRF,
        "client_id": _form_id(page),
        "area": busy_place.village,
        "title": "",
        f"person_{worker.id}": "1",
        f"capacity_{worker.id}": "3",
    }
    refused = client.post("/visits/new", data=form)
    assert refused.status_code == 400
    assert _form_id(refused.get_data(as_text=True)) == form["client_id"]


def test_the_plan_form_from_three_threads_at_once_is_one_plan(
    live_server, live_user, live_db_url, demo_areas
):
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from tests.browser import page_csrf, post_at_once, signed_in_http

    worker = live_user("grid_worker")
    grid = demo_areas["grid_worker"]
    village = grid[:12]
    http = signed_in_http(live_server, live_user("planner", grid[:9]))
    page = http.get(f"{live_server}/visits/new?area={village}").text
    assert f'name="person_{worker.id}"' in page
    engine = create_engine(live_db_url)
    with Session(engine) as s:
        today = s.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar_one()
    form = {
        "csrf_token": page_csrf(page),
        "client_id": _form_id(page),
        "area": village,
        "title": "三个线程同时提交",
        "date_from": today.isoformat(),
        "date_to": today.isoformat(),
        f"person_{worker.id}": "1",
        f"capacity_{worker.id}": "3",
    }
    answers = post_at_once(http, f"{live_server}/visits/new", form)
    assert [a.status_code for a in answers] == [302] * 3, [a.text[:300] for a in answers]
    assert len({a.headers["Location"] for a in answers}) == 1
    with Session(engine) as s:
        made = s.execute(
            text("SELECT count(*) FROM visit_plans WHERE client_id = :c"),
            {"c": uuid.UUID(form["client_id"])},
        ).scalar_one()
    engine.dispose()
    assert made == 1
