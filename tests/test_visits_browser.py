"""Real browser: a planner makes a village plan and opens its map; a worker records on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from tests.browser import sign_in_page
from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import in_browser, new_plan  # noqa: F401
from webapp.db import database
from webapp.visits import planning

pytestmark = pytest.mark.browser


def test_a_planner_makes_a_plan_for_a_village_and_opens_its_map(
    in_browser, live_server, live_user, busy_places, artifacts
):
    place = busy_places[2]
    planner = live_user("planner")
    worker = live_user("grid_worker", place.grid)
    informant = live_user("village_informant", place.village)
    in_browser(
        live_server,
        lambda page: _plan_a_village(page, planner, worker, informant, place, artifacts),
    )


def _plan_a_village(page, planner, worker, informant, place, artifacts):
    sign_in_page(page, planner)

    page.goto("/visits/")
    page.click("#new-plan")
    page.select_option("#choose-area select[name=area]", place.village)
    page.click("#choose-area button[type=submit]")
    expect(page.locator("#plan-form")).to_be_visible()

    # the start-point picker draws the village and takes a click
    expect(page.locator("#pick-map path.leaflet-interactive").first).to_be_visible()
    page.locator("#pick-map").click(position={"x": 200, "y": 150})
    assert page.input_value("#start_lon") and page.input_value("#start_lat")
    assert page.is_checked("#start-point-mode")
    page.check("input[name=start_mode][value=committee]")

    page.check(f"#person_{worker.id}")
    page.fill(f"input[name=capacity_{worker.id}]", "4")
    page.check(f"#person_{informant.id}")
    page.fill(f"input[name=capacity_{informant.id}]", "3")
    page.fill("#w_hot_spot", "25")
    page.click("#make-plan")
    page.wait_for_url(re.compile(r"/visits/plans/\d+$"))
    expect(page.locator("#plan-status")).to_have_text("草稿")
    stops = page.locator("#stops tbody tr")
    assert stops.count() > 0
    expect(page.locator("#w_hot_spot")).to_have_value("25")

    # the map document inside the page: numbered stops and route lines, local assets only
    frame = page.frame_locator("#plan-map")
    expect(frame.locator(".vs-stop").first).to_be_visible()
    assert frame.locator(".vs-stop").count() == stops.count()
    assert frame.locator("path.leaflet-interactive").count() > 0
    page.screenshot(path=str(artifacts / "visits-plan.png"), full_page=True)

    page.click("#publish")
    expect(page.locator("#plan-status")).to_have_text("已发布")

    with page.expect_popup() as popup:
        page.click("#open-map")
    full = popup.value
    full.wait_for_load_state("networkidle")
    expect(full.locator(".vs-stop").first).to_be_visible()
    full.screenshot(path=str(artifacts / "visits-map.png"))
    full.close()

    page.click("#print-sheets")
    expect(page.locator(".vs-sheet").first).to_be_visible()
    assert page.blocked == [] and page.failed == []
    assert page.console_errors == []


@pytest.fixture
def worker_with_a_plan(live_app, live_user, busy_places):
    place = busy_places[0]
    planner = live_user("planner")
    worker = live_user("grid_worker", place.grid)
    db = database(live_app)
    with live_app.app_context():
        s = db.sessions()
        plan = new_plan(s, live_app, planner, place.village, [(worker.id, 3)], days=1)
        planning.publish(s, plan)
        s.commit()
        plan_id = plan.id
        s.close()
    return worker, plan_id


def _records(live_app, stop_id: int) -> list:
    with live_app.app_context():
        s = database(live_app).sessions()
        rows = s.execute(
            text("SELECT outcome, client_id FROM visit_records WHERE stop_id = :s"), {"s": stop_id}
        ).all()
        s.close()
    return rows


@pytest.mark.phone
def test_a_worker_records_an_outcome_on_a_phone_even_offline(
    in_browser, live_server, live_app, worker_with_a_plan, artifacts
):
    worker, _plan_id = worker_with_a_plan
    in_browser(
        live_server, lambda page: _record_on_a_phone(page, live_app, worker, artifacts), phone=True
    )


def _record_on_a_phone(page, live_app, worker, artifacts):
    sign_in_page(page, worker)
    page.goto("/visits/")  # a worker's visits page is today's stops
    page.wait_for_url(re.compile(r"/visits/today"))
    cards = page.locator(".vs-card")
    assert cards.count() >= 2  # as many as the grid has targets, up to the capacity of 3
    first = cards.first
    stop_id = int(first.get_attribute("data-stop"))
    expect(first.locator("details.vs-record")).to_have_attribute("open", "")
    page.screenshot(path=str(artifacts / "visits-phone-today.png"))

    # no network: the outcome waits in the phone's queue
    page.context.set_offline(True)
    first.locator("label", has_text="无人在家").click()
    first.locator("textarea[name=note]").fill("敲门两次无人应答")
    first.locator("button.vs-submit").click()
    expect(first.locator("[data-state-label]")).to_have_text("无人在家（待发送）")
    expect(page.locator("#queue-status")).to_contain_text("1 条走访记录待发送")
    assert _records(live_app, stop_id) == []

    # the network is back: it is sent by itself, once
    page.context.set_offline(False)
    expect(first.locator("[data-state-label]")).to_have_text("无人在家", timeout=20_000)
    expect(page.locator("#queue-status")).to_be_hidden()
    rows = _records(live_app, stop_id)
    assert [r.outcome for r in rows] == ["nobody_home"]

    # the page shows the server's state after a reload, and the next stop can be recorded
    page.reload()
    expect(page.locator(f"#stop-{stop_id} [data-state-label]")).to_have_text("无人在家")
    second = page.locator(".vs-card").nth(1)
    second.locator("details.vs-record > summary").click()
    second.locator("label", has_text="已走访").click()
    if second.get_attribute("data-follow-up") == "1":
        second.locator("label", has_text="基本满意").click()
    second.locator("button.vs-submit").click()
    expect(second.locator("[data-state-label]")).to_have_text("已走访", timeout=20_000)
    page.screenshot(path=str(artifacts / "visits-phone-recorded.png"), full_page=True)
    assert page.blocked == []
    assert page.console_errors == [] or all(
        "ERR_INTERNET_DISCONNECTED" in e for e in page.console_errors
    )


@pytest.mark.phone
def test_a_shared_phone_keeps_each_accounts_visit_records_to_that_account(
    in_browser, live_server, live_app, live_user, worker_with_a_plan
):
    """A record waiting on a phone is sent, shown and dropped only by the account that made
    it: another account signed in on the same phone neither sees it nor sends it (the
    server would refuse it as not theirs, and it would be lost as refused)."""
    first, _plan_id = worker_with_a_plan
    second = live_user("grid_worker")

    def scenario(page):
        sign_in_page(page, first)
        page.goto("/visits/today")
        card = page.locator(".vs-card").first
        stop_id = int(card.get_attribute("data-stop"))
        # The server cannot be reached for the outcomes: the record waits in the outbox.
        page.route("**/outcomes", lambda route: route.abort())
        card.locator("label", has_text="无人在家").click()
        card.locator("textarea[name=note]").fill("第一位网格员的记录")
        card.locator("button.vs-submit").click()
        expect(card.locator("[data-state-label]")).to_have_text("无人在家（待发送）")

        page.context.clear_cookies()  # the first account's session is gone
        sign_in_page(page, second)
        page.unroute("**/outcomes")
        page.goto("/visits/today")
        expect(page.locator("#queue-status")).to_contain_text(
            "本机另有 1 条其他账号的走访记录待发送"
        )
        expect(page.locator("#queue-status")).not_to_contain_text("被退回")
        page.wait_for_timeout(3000)  # long past the outbox's first retry
        assert _records(live_app, stop_id) == []

        page.context.clear_cookies()
        sign_in_page(page, first)
        page.goto("/visits/today")
        expect(page.locator(f"#stop-{stop_id} [data-state-label]")).to_have_text(
            "无人在家", timeout=20_000
        )
        assert [r.outcome for r in _records(live_app, stop_id)] == ["nobody_home"]

    in_browser(live_server, scenario, phone=True)
