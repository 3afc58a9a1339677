"""A real browser opens the statistics dashboard, sorts the ranking and drills down one level."""

from __future__ import annotations

import pytest

from tests.browser import sign_in_page

pytestmark = pytest.mark.browser


def _column(page, index: int) -> list[float]:
    return page.eval_on_selector_all(
        "#ranking tbody tr",
        f"rows => rows.map(r => parseFloat(r.cells[{index}].getAttribute('data-value')))",
    )


def test_dashboard_sort_and_drill_down(page, live_user, artifacts):
    user = live_user("county_staff")
    sign_in_page(page, user)
    page.goto("/stats?from=2024-01-01&to=2026-12-31")
    assert page.locator("h1").first.inner_text().startswith("延津县")
    assert page.locator("#ranking tbody tr").count() == 12
    # The charts drew (ECharts from /vendor, no other origin).
    page.wait_for_selector("#trend-chart canvas")
    page.wait_for_selector("#category-chart canvas")

    # Sort by the number of cases: first click descending, second ascending.
    header = page.locator("#ranking thead th", has_text="信访事项").first
    index = header.evaluate("th => Array.prototype.indexOf.call(th.parentNode.children, th)")
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    values = _column(page, index)
    assert values == sorted(values, reverse=True) and values[0] > values[-1]
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _column(page, index) == sorted(values)
    page.screenshot(path=str(artifacts / "stats-county.png"), full_page=True)

    # Drill down into the township now at the top of the table.
    first = page.locator("#ranking tbody tr").first
    code = first.get_attribute("data-code")
    name = first.locator("a.drill").inner_text()
    first.locator("a.drill").click()
    page.wait_for_load_state("networkidle")
    assert f"area={code}" in page.url and "from=2024-01-01" in page.url
    assert page.locator("h1").first.inner_text().startswith(name)
    rows = page.locator("#ranking tbody tr")
    assert rows.count() > 5
    assert all(c.startswith(code) for c in rows.evaluate_all("rs => rs.map(r => r.dataset.code)"))
    assert page.locator("#ranking thead th").first.inner_text().startswith("村")
    assert (
        page.locator("#ranking tbody tr a", has_text="地图").first.get_attribute("href")
        == f"/maps?area={rows.first.get_attribute('data-code')}"
    )
    page.screenshot(path=str(artifacts / "stats-township.png"), full_page=True)

    page.click("#glossary-link")
    page.wait_for_load_state("networkidle")
    assert page.locator("#resolution_rate").count() == 1
    assert page.blocked == [] and page.failed == [] and page.console_errors == []


def test_warning_panel_in_a_browser(page, live_user, artifacts):
    user = live_user("township_leader")
    sign_in_page(page, user)
    page.goto("/stats/warning?window=month")
    assert page.locator("h1").first.inner_text().startswith("信访要情")
    assert page.locator("#emerging-title").count() == 1
    page.screenshot(path=str(artifacts / "stats-warning.png"), full_page=True)
    assert page.blocked == [] and page.failed == [] and page.console_errors == []
