"""The navigation and the home page's shortcuts follow auth.permissions, role by role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webapp.auth import permissions
from webapp.auth.roles import Role
from webapp.templating import NAV, SHORTCUTS

ROOT = Path(__file__).resolve().parent.parent
NAV_LINK = re.compile(r'<nav class="mainnav">(.*?)</nav>', re.S)


def nav_of(html: str) -> list[tuple[str, bool]]:
    block = NAV_LINK.search(html).group(1)
    return [
        (label, bool(active))
        for active, label in re.findall(r'<a href="[^"]+"( class="active")?>([^<]+)</a>', block)
    ]


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_sees_the_entries_it_may_use_and_they_open(client, login, role):
    user = login(role)
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    labels = [label for label, _ in nav_of(html)]
    assert labels == [label for label, _, may in NAV if may(user)]
    for label, _endpoint, may in NAV:
        if may(user):
            url = re.search(rf'<a href="([^"]+)"[^>]*>{label}</a>', html).group(1)
            assert client.get(url, follow_redirects=True).status_code == 200, (role, label)
    shortcuts = re.findall(r'<a href="([^"]+)"><strong>([^<]+)</strong>', html)
    assert [label for _, label in shortcuts] == [s[0] for s in SHORTCUTS if s[3](user)]


def test_planners_reach_sweep_coverage_from_the_navigation(client, login):
    """Regression: coverage was for planners, but the 排查 entry was not shown to them."""
    login("planner")
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "排查" in [label for label, _ in nav_of(html)]
    page = client.get("/field/sweeps", follow_redirects=True)
    assert page.status_code == 200 and "排查覆盖" in page.get_data(as_text=True)
    login("leader_in_charge")
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "排查" not in [label for label, _ in nav_of(html)]


@pytest.mark.parametrize(
    "url, active",
    [
        ("/cases/new", "登记"),
        ("/cases/", "案件"),
        ("/cases/due", "案件"),
        ("/field/coverage", "排查"),
    ],
)
def test_one_entry_is_marked_for_the_page_shown(client, login, url, active):
    """Regression: a page of a feature with two entries (案件/登记, 上报/排查) marked both."""
    login("county_staff")
    marked = [
        label for label, is_active in nav_of(client.get(url).get_data(as_text=True)) if is_active
    ]
    assert marked == [active]


def test_role_lists_live_in_auth_permissions():
    """The features use the one definition of who may use what (no copies of their own)."""
    from webapp.exchange import views as exchange_views
    from webapp.field import views as field_views
    from webapp.maps import views as maps_views

    assert maps_views.MAP_ROLES is permissions.MAP_ROLES == permissions.STATS_ROLES
    assert field_views.COVERAGE_ROLES is permissions.COVERAGE_ROLES
    assert exchange_views.EXCHANGE_ROLES is permissions.EXCHANGE_ROLES
    for module in (
        "field.queries",
        "visits.planning",
        "visits.queries",
        "visits.views",
        "stats.params",
    ):
        source = (ROOT / "webapp" / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8")
        assert not re.search(
            r"^[A-Z_]*ROLES\s*=|^SWEEP_FILERS\s*=|^def may_plan\(", source, re.M
        ), module
