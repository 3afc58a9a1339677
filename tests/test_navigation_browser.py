"""Every role finds its pages: each nav link and home shortcut opens cleanly, in a real browser.

Signs in as each of the seven roles through the form, then follows every link of the
navigation and every shortcut of the home page: no error page, no request to another
origin, no failed request, no console error.
"""

from __future__ import annotations

import pytest

from tests.browser import sign_in_page
from webapp.auth.roles import Role

ROLES = [r.value for r in Role]
# What the home page must lead to first, per role.
HOME_LEADS_TO = {
    "grid_worker": ["现场上报", "本期排查", "今日走访"],
    "village_informant": ["现场上报", "本期排查", "今日走访", "排查覆盖"],
    "township_leader": ["走访计划", "统计", "地图", "排查覆盖"],
    "county_staff": ["登记来访来信", "临期和超期案件", "统计", "地图", "数据交换"],
    "leader_in_charge": ["今日走访", "统计", "地图"],
    "planner": ["走访计划", "统计", "地图", "信访要情", "排查覆盖"],
    "admin": ["登记来访来信", "统计", "地图", "数据交换"],
}
LINKS = "els => els.map(e => [e.textContent.trim(), e.getAttribute('href')])"


def _links(page, selector: str) -> list[tuple[str, str]]:
    return [tuple(x) for x in page.eval_on_selector_all(selector, LINKS)]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_every_nav_link_and_home_shortcut_opens_cleanly(page, live_user, role, artifacts):
    sign_in_page(page, live_user(role))
    page.goto("/")
    page.wait_for_load_state("networkidle")
    home_title = page.locator("main h1").first.inner_text()
    shortcuts = _links(page, "nav.shortcuts a")
    labels = [label.split("\n")[0] for label, _ in shortcuts]
    for wanted in HOME_LEADS_TO[role]:
        assert any(label.startswith(wanted) for label in labels), (role, wanted, labels)
    nav = _links(page, "nav.mainnav a")
    assert nav and nav[0][0] == "首页"
    page.screenshot(path=str(artifacts / f"home-{role}.png"), full_page=True)

    visited = {}
    for label, href in nav + shortcuts:
        if href in visited:
            continue
        response = page.goto(href)
        page.wait_for_load_state("networkidle")
        visited[href] = label
        assert response is not None and response.ok, (
            role,
            label,
            href,
            response and response.status,
        )
        assert page.locator("section.error").count() == 0, (role, label, href)
        # The page shown is marked in the navigation (one entry at most).
        assert page.locator("nav.mainnav a.active").count() <= 1, (role, href)
        if role == "township_leader" and label.startswith(("统计", "地图")):
            # Their township's own dashboard and map, not the county's.
            assert home_title.split()[0] in page.content(), (label, home_title)
    assert len(visited) >= len(HOME_LEADS_TO[role])
    assert page.blocked == [], page.blocked
    assert page.failed == [], page.failed
    assert page.console_errors == [], page.console_errors
