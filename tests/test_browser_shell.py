"""A real browser signs in and finds the county; the page loads nothing from outside."""

from __future__ import annotations

import pytest

from tests.browser import sign_in_page

pytestmark = pytest.mark.browser


def test_sign_in_and_see_the_townships(page, live_user, artifacts):
    user = live_user("county_staff")
    sign_in_page(page, user)
    assert page.locator("h1").first.inner_text().startswith("延津县")
    assert page.locator("#townships tbody tr").count() == 12
    assert "演示数据" in page.locator(".demo-banner").inner_text()
    page.screenshot(path=str(artifacts / "home.png"), full_page=True)
    assert page.blocked == [] and page.failed == [] and page.console_errors == []


def test_wrong_password_shows_a_chinese_error(page, live_user):
    user = live_user("county_staff")
    sign_in_page(page, user, password="not-the-password")
    assert "用户名或密码错误" in page.locator("[role=alert]").inner_text()


def test_a_fetch_the_browser_cancels_is_not_a_failure(page, live_user):
    # A look-up still in flight when the user sends the form (the page navigates) is
    # cancelled by the browser (net::ERR_ABORTED): recorded apart, not as a failure.
    sign_in_page(page, live_user("county_staff"))
    with page.expect_event("requestfailed") as cancelled:
        page.evaluate("fetch('/healthz?cancelled').catch(() => {}); window.stop()")
    assert cancelled.value.failure == "net::ERR_ABORTED"
    assert [url.rsplit("/", 1)[-1] for url, _ in page.aborted] == ["healthz?cancelled"]
    assert page.failed == [] and page.console_errors == []
