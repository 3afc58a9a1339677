"""A grid worker's phone, in a real browser: report with a photo, then offline, then back.

Also the resend against the live server: the same report from five threads at once
makes one case.
"""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.browser import sign_in_page
from tests.conftest import TEST_PASSWORD
from tests.field_fixtures import category_id, grid_point, image_bytes, phone  # noqa: F401
from webapp.field.photos import photo_path

pytestmark = pytest.mark.browser


@pytest.fixture
def live_db(live_db_url):
    engine = create_engine(live_db_url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def live_photos(live_app, tmp_path, monkeypatch):
    monkeypatch.setitem(live_app.config, "PHOTO_DIR", str(tmp_path / "photos"))
    return tmp_path / "photos"


def cases_by(conn, user_id) -> list:
    conn.rollback()  # a fresh snapshot: see what the server committed since
    return conn.execute(
        text(
            "SELECT id, number, channel, description FROM cases WHERE reporter_id = :u ORDER BY id"
        ),
        {"u": user_id},
    ).all()


def at_phone_position(page, conn, grid_code, live_server):
    lon, lat = grid_point(conn, grid_code)
    page.context.grant_permissions(["geolocation"], origin=live_server)
    page.context.set_geolocation({"longitude": lon, "latitude": lat, "accuracy": 12})


def fill_report(page, description, photo=None):
    page.select_option("select[name=category_id]", label="邻里/婚姻家庭")
    page.fill("textarea[name=description]", description)
    page.fill("input[name=people_count]", "2")
    if photo is not None:
        page.set_input_files(
            "#photo-input",
            files=[{"name": "dispute.jpg", "mimeType": "image/jpeg", "buffer": photo}],
        )
        page.wait_for_selector("#photo-list .field-photo")
    page.click("#submit")


def wait_until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll ``expression`` in the page.

    ``wait_for_function`` evaluates strings, which the page's CSP forbids.
    """
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(200)


def wait_service_worker(page):
    wait_until(page, "!!(navigator.serviceWorker && navigator.serviceWorker.controller)")


@pytest.mark.phone
def test_a_grid_worker_reports_from_a_phone_online_and_offline(
    phone, live_server, live_user, live_db, live_photos, demo_areas, artifacts
):
    def scenario(page):
        grid = demo_areas["grid_worker"]
        user = live_user("grid_worker")
        at_phone_position(page, live_db, grid, live_server)
        sign_in_page(page, user)
        page.goto("/field/report")
        grid_name = live_db.execute(
            text("SELECT name FROM areas WHERE code = :c"), {"c": grid}
        ).scalar_one()

        # the position, its accuracy and the place it is in, before sending
        page.wait_for_selector("#place strong")
        assert page.locator("#place strong").inner_text() == grid_name
        assert "精度约 12 米" in page.locator("#gps-status").inner_text()
        assert page.locator("#map path.leaflet-interactive").count() > 1  # the grid outlines
        page.wait_for_selector(".leaflet-marker-icon")

        # a dispute with a photo: its case number comes back
        payload = '<img src=x onerror="window.pwned=1">邻居因排水沟堵塞争吵'
        fill_report(page, payload, photo=image_bytes("JPEG", size=(1024, 768), gps=True))
        number = page.locator("#result .field-case-number")
        number.wait_for()
        cases = cases_by(live_db, user.id)
        assert (
            len(cases) == 1
            and cases[0].number == number.inner_text()
            and cases[0].channel == "grid_sweep"
        )
        assert cases[0].description == payload
        page.wait_for_selector("#queue li[data-state=sent] >> text=照片 1/1 已上传")
        photos = live_db.execute(
            text("SELECT count(*) FROM case_photos WHERE case_id = :c"), {"c": cases[0].id}
        ).scalar_one()
        assert photos == 1
        # the worker's text is shown as text
        assert payload[:30] in page.locator("#queue").inner_text()
        assert (
            page.evaluate("window.pwned === undefined") and page.locator("#queue img").count() == 0
        )
        page.screenshot(path=str(artifacts / "field-report-sent.png"), full_page=True)
        assert page.blocked == [] and page.console_errors == []

        # offline: the page still opens (service worker), and two reports wait on the phone,
        # the first with a photo taken offline
        wait_service_worker(page)
        page.context.set_offline(True)
        page.reload()
        page.wait_for_selector("#report-form")
        page.wait_for_selector(".leaflet-marker-icon")
        offline_photo = image_bytes("PNG", size=(800, 600))
        fill_report(page, "离线上报一：两户因宅基地边界争执", photo=offline_photo)
        page.wait_for_selector("#queue li[data-state=waiting]")
        fill_report(page, "离线上报二：务工人员讨要工资")
        wait_until(page, "document.querySelectorAll('#queue li[data-state=waiting]').length === 2")
        assert "2 条待发送" in page.locator("#queue-count").inner_text()
        assert "当前离线" in page.locator("#net-status").inner_text()
        assert "离线，恢复网络后自动发送" in page.locator("#queue").inner_text()
        # Still offline, the page is opened afresh: the reports and the photo (a Blob)
        # come back from IndexedDB, not from the page's memory.
        page.reload()
        page.wait_for_selector("#report-form")
        wait_until(page, "document.querySelectorAll('#queue li[data-state=waiting]').length === 2")
        first = page.locator("#queue li", has_text="离线上报一")
        assert "照片 0/1 已上传" in first.inner_text()
        stored = page.evaluate(
            """() => FieldQueue.all().then(items => items
                 .filter(i => i.state === 'waiting')
                 .map(i => (i.photos || []).map(p => p.blob instanceof Blob ? p.blob.size : -1)))"""
        )
        assert sorted(stored, key=len) == [[], [len(offline_photo)]]
        page.screenshot(path=str(artifacts / "field-report-offline-queue.png"), full_page=True)
        assert len(cases_by(live_db, user.id)) == 1

        # back online: both go, exactly once each, the photo with its report
        page.context.set_offline(False)
        wait_until(
            page,
            "document.querySelectorAll('#queue li[data-state=waiting]').length === 0",
            timeout=30,
        )
        page.wait_for_selector(
            "#queue li:has-text('离线上报一') >> text=照片 1/1 已上传", timeout=30_000
        )
        cases = cases_by(live_db, user.id)
        assert len(cases) == 3
        assert {c.description for c in cases[1:]} == {
            "离线上报一：两户因宅基地边界争执",
            "离线上报二：务工人员讨要工资",
        }
        live_db.rollback()
        photos = live_db.execute(
            text(
                "SELECT c.description, p.original_format, p.width, p.height, p.sha256 "
                "FROM case_photos p JOIN cases c ON c.id = p.case_id WHERE c.id = ANY(:ids)"
            ),
            {"ids": [c.id for c in cases[1:]]},
        ).all()
        assert [(p.description, p.original_format, p.width, p.height) for p in photos] == [
            ("离线上报一：两户因宅基地边界争执", "PNG", 800, 600)
        ]
        assert photo_path(live_photos, photos[0].sha256).is_file()
        shown = set(re.findall(r"410726-\d{4}-\d{7}", page.locator("#queue").inner_text()))
        assert shown == {c.number for c in cases}
        page.screenshot(path=str(artifacts / "field-report-synced.png"), full_page=True)
        assert page.blocked == []

    phone(scenario)


@pytest.mark.phone
def test_a_queued_report_survives_an_expired_session(
    phone, live_server, live_user, live_db, live_photos, demo_areas
):
    def scenario(page):
        grid = demo_areas["grid_worker"]
        user = live_user("grid_worker")
        at_phone_position(page, live_db, grid, live_server)
        sign_in_page(page, user)
        page.goto("/field/report")
        page.wait_for_selector("#place strong")
        wait_service_worker(page)

        page.context.set_offline(True)
        fill_report(page, "会话过期期间排队的上报")
        page.wait_for_selector("#queue li[data-state=waiting]")
        page.context.clear_cookies()  # the session is gone meanwhile
        page.context.set_offline(False)

        alert = page.locator("#login-needed")
        alert.wait_for(state="visible")
        assert "重新登录" in alert.inner_text()
        assert page.locator("#queue li[data-state=waiting]").count() == 1
        assert cases_by(live_db, user.id) == []

        alert.locator("a").click()
        page.wait_for_url(re.compile(r"/login\?next=/field/report"))
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", TEST_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/field/report$"))
        page.wait_for_selector("#queue li[data-state=sent]", timeout=30_000)
        cases = cases_by(live_db, user.id)
        assert [c.description for c in cases] == ["会话过期期间排队的上报"]
        assert page.blocked == []

    phone(scenario)


@pytest.mark.phone
def test_a_shared_phone_keeps_each_accounts_reports_to_that_account(
    phone, live_server, live_user, live_db, live_photos, demo_areas
):
    """Worker A's report waits on the phone; worker B signs in on it: B neither sees A's
    report (its text, petitioner, photos) nor sends or removes it; A's next sign-in sends it."""

    def scenario(page):
        grid = demo_areas["grid_worker"]
        first, second = live_user("grid_worker"), live_user("grid_worker")
        at_phone_position(page, live_db, grid, live_server)
        sign_in_page(page, first)
        page.goto("/field/report")
        page.wait_for_selector("#place strong")
        wait_service_worker(page)

        page.context.set_offline(True)
        page.fill("input[name=petitioner_name]", "欧阳娜娜")
        page.fill("input[name=petitioner_phone]", "13812345678")
        fill_report(page, "甲的上报：两户因宅基地边界争执")
        page.wait_for_selector("#queue li[data-state=waiting]")
        page.context.clear_cookies()  # A leaves the phone; B signs in
        page.context.set_offline(False)
        sign_in_page(page, second)
        page.goto("/field/report")
        page.wait_for_selector("#queue li")
        page.wait_for_timeout(1500)  # B's outbox has been flushed meanwhile
        queue = page.locator("#queue").inner_text()
        assert "甲的上报" not in queue and page.locator("#queue li[data-state]").count() == 0
        assert "本机另有 1 条其他账号的上报" in queue
        page.click("#clear-sent")
        assert cases_by(live_db, first.id) == [] and cases_by(live_db, second.id) == []

        page.context.clear_cookies()
        sign_in_page(page, first)
        page.goto("/field/report")
        page.wait_for_selector("#queue li[data-state=sent]", timeout=30_000)
        assert [c.description for c in cases_by(live_db, first.id)] == [
            "甲的上报：两户因宅基地边界争执"
        ]
        assert page.locator("#queue .field-others").count() == 0
        assert page.blocked == []

    phone(scenario)


def test_the_same_report_from_five_threads_at_once_is_one_case(
    live_server, live_user, live_db, demo_areas
):
    from tests.browser import signed_in_http

    http = signed_in_http(live_server, live_user("grid_worker"))
    token = http.get(f"{live_server}/api/v1/field/session").json()["csrf_token"]
    lon, lat = grid_point(live_db, demo_areas["grid_worker"])
    body = {
        "client_id": str(uuid.uuid4()),
        "category_id": category_id(live_db),
        "description": "同一上报，五个线程同时发送",
        "people_count": 1,
        "lon": lon,
        "lat": lat,
    }
    cookies = http.cookies.get_dict()
    barrier = threading.Barrier(5)
    answers: list = [None] * 5

    def send(i):
        s = requests.Session()
        s.cookies.update(cookies)
        barrier.wait()
        answers[i] = s.post(
            f"{live_server}/api/v1/field/reports",
            json=body,
            headers={"X-CSRF-Token": token},
            timeout=30,
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["report"]["number"] for a in answers}) == 1
    live_db.rollback()
    n = live_db.execute(
        text("SELECT count(*) FROM cases WHERE client_id = :c"), {"c": body["client_id"]}
    ).scalar_one()
    events = live_db.execute(
        text(
            "SELECT count(*) FROM case_events e JOIN cases c ON c.id = e.case_id "
            "WHERE c.client_id = :c"
        ),
        {"c": body["client_id"]},
    ).scalar_one()
    assert (n, events) == (1, 1)
    # and five more, one after another, change nothing
    for _ in range(5):
        r = http.post(
            f"{live_server}/api/v1/field/reports", json=body, headers={"X-CSRF-Token": token}
        )
        assert (
            r.status_code == 200
            and r.json()["report"]["number"] == answers[0].json()["report"]["number"]
        )
    live_db.rollback()
    assert (
        live_db.execute(
            text("SELECT count(*) FROM cases WHERE client_id = :c"), {"c": body["client_id"]}
        ).scalar_one()
        == 1
    )


@pytest.mark.phone
def test_a_grid_worker_files_the_sweep_and_the_township_sees_coverage(
    phone, live_server, live_user, live_db, demo_areas, artifacts
):
    def scenario(page):
        grid = demo_areas["grid_worker"]
        worker = live_user("grid_worker")
        sign_in_page(page, worker)
        page.goto("/field/sweeps")
        assert "本期尚未报送" in page.locator("#sweep-state").inner_text()
        page.check("input[name=zero_report]")
        page.fill("textarea[name=note]", "<b>全网格入户走访</b>，未发现矛盾纠纷")
        page.click("#sweep-form button[type=submit]")
        page.wait_for_selector(".flash-success")
        assert "零报告" in page.locator("#sweep-state").inner_text()
        assert (
            page.locator("textarea[name=note]").input_value()
            == "<b>全网格入户走访</b>，未发现矛盾纠纷"
        )
        page.screenshot(path=str(artifacts / "field-sweep.png"), full_page=True)
        assert page.blocked == [] and page.console_errors == []

        leader = live_user("township_leader", area=grid[:9])
        page.context.clear_cookies()
        sign_in_page(page, leader)
        page.goto("/field/coverage")
        assert (
            page.locator(f'#coverage-grids tr[data-grid="{grid}"]').get_attribute("data-reported")
            == "yes"
        )
        assert page.locator(f'#missing-grids li[data-grid="{grid}"]').count() == 0
        assert page.locator("#missing-grids li").count() > 0
        page.screenshot(path=str(artifacts / "field-coverage.png"), full_page=True)
        assert page.blocked == [] and page.console_errors == []

    phone(scenario)
