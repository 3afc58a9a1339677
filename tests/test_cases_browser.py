"""A real browser at the desk: register a case by clicking on the map, then accept and
assign it from the case file; the pages load nothing from outside and print cleanly.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import sign_in_page

pytestmark = pytest.mark.browser


def _click_inside_county(page) -> None:
    """Click the pick map until the point is inside a grid (the map shows the whole county)."""
    page.locator("#pick-map").scroll_into_view_if_needed()
    box = page.locator("#pick-map").bounding_box()
    for fx, fy in [(0.5, 0.5), (0.45, 0.55), (0.55, 0.45), (0.4, 0.4), (0.6, 0.6)]:
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        expect(page.locator("#picked")).not_to_contain_text("正在查询")
        if "·" in page.locator("#picked").inner_text():
            return
    raise AssertionError("no click on the map landed inside the county")


def test_register_on_the_map_then_accept_and_assign(page, live_user, artifacts):
    user = live_user("county_staff")
    sign_in_page(page, user)
    page.click("nav.mainnav >> text=登记")
    page.wait_for_selector("#pick-map .leaflet-interactive")  # the townships are drawn
    page.select_option("#channel", "visit")
    page.select_option("#case_class", "request")
    page.select_option("#category_id", index=4)
    page.fill("#title", "浏览器测试：工地拖欠工资")
    page.fill("#description", "六名工人反映工地拖欠工资三个月（测试，虚构）")
    page.fill("#people_count", "6")
    assert "集体访" in page.locator("#collective-hint").inner_text()
    page.fill("#petitioner_name", "测试人")
    page.fill("#petitioner_phone", "13900001111")
    _click_inside_county(page)
    picked = page.locator("#picked").inner_text()
    page.screenshot(path=str(artifacts / "cases-register.png"), full_page=True)
    page.click("#submit")
    page.wait_for_url(re.compile(r"/cases/\d+$"))

    assert "浏览器测试：工地拖欠工资" in page.locator("h1").inner_text()
    assert page.locator(".badges .status").inner_text() == "已登记"
    assert "集体访" in page.locator(".badges").inner_text()
    grid_name = picked.split("·")[-1].strip()
    assert grid_name in page.locator(".case-fields").inner_text()
    assert page.locator("#case-map path.leaflet-interactive").count() >= 2  # the grid and the point

    page.click("#action-accept button[type=submit]")
    expect(page.locator(".badges .status")).to_have_text("已受理")

    # The next step of the procedure is the form already open.
    assert page.locator("#action-assign").get_attribute("open") is not None
    page.check("#action-assign input[name=mode][value=assign]")
    page.fill("#action-assign input[name=unit]", "城关镇人民政府")
    page.select_option("#action-assign select[name=level]", "township")
    page.click("#action-assign button[type=submit]")
    expect(page.locator(".badges .status")).to_have_text("已交办")
    for word in ("登记", "受理", "交办/转送", "城关镇人民政府", user.display_name):
        expect(page.locator("#timeline")).to_contain_text(word)
    assert "城关镇人民政府" in page.locator(".case-fields").inner_text()
    page.screenshot(path=str(artifacts / "cases-file.png"), full_page=True)

    page.emulate_media(media="print")
    assert not page.locator("#actions").is_visible()
    assert not page.locator("header.topbar").is_visible()
    assert page.locator("#timeline").is_visible()
    page.screenshot(path=str(artifacts / "cases-file-print.png"), full_page=True)
    page.emulate_media(media="screen")

    page.click("nav.mainnav >> text=案件")
    assert "浏览器测试：工地拖欠工资" in page.locator("#cases tbody tr").first.inner_text()
    page.goto("/cases/due")
    assert page.locator("#due-by-area").is_visible()
    assert page.blocked == [] and page.failed == [] and page.console_errors == []
