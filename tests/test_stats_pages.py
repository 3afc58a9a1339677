"""Statistics pages: dashboard, glossary, early warning panel; scope and roles."""

from __future__ import annotations

import re

import pytest

from tests.stats_fixtures import (
    A1,
    COUNTY,
    G1,
    TOWN_A,
    TOWN_B,
    stats_county,  # noqa: F401  (a fixture)
)
from webapp.stats import figures as F

PERIOD = {"from": "2025-01-01", "to": "2025-12-31", "as_of": "2025-12-31"}


@pytest.mark.usefixtures("stats_county")
def test_dashboard_of_the_hand_made_county(client, login):
    login("county_staff", area=COUNTY)
    r = client.get("/stats", query_string={"area": COUNTY, **PERIOD})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "统计测试县 信访统计" in html
    # The ranking lists both townships with drill-down and map links, and the county's totals.
    assert html.count('class="drill"') == 2
    assert f'href="/maps?area={TOWN_A}"' in html and f'href="/maps?area={TOWN_B}"' in html
    assert re.search(r"/stats\?area=990300001&amp;from=2025-01-01&amp;to=2025-12-31", html)
    assert "合计（统计测试县）" in html
    # Headline: 9 cases, resolution rate 3/9.
    assert re.search(r'data-figure="cases">.*?<div class="card-value">9', html, re.S)
    assert re.search(r'data-figure="resolution_rate">.*?<div class="card-value">33.3%', html, re.S)
    # No inline script: the chart data is a JSON block, the code is a static file.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attrs, body in scripts:
        assert 'type="application/json"' in attrs or (body.strip() == "" and "src=" in attrs)
    assert "/vendor/echarts/dist/echarts.min.js" in html and "cdn" not in html.lower()
    assert 'href="/stats/glossary"' in html


@pytest.mark.usefixtures("stats_county")
def test_drilling_down_to_villages_and_grids(client, login):
    login("county_staff", area=COUNTY)
    html = client.get("/stats", query_string={"area": TOWN_A, **PERIOD}).get_data(as_text=True)
    assert "甲一村" in html and "甲二村" in html and "乙一村" not in html
    html = client.get("/stats", query_string={"area": A1, **PERIOD}).get_data(as_text=True)
    assert "甲一村第一网格" in html and "甲一村第二网格" in html
    # A grid's dashboard has headline figures and charts but no ranking below it.
    r = client.get("/stats", query_string={"area": G1, **PERIOD})
    assert r.status_code == 200 and 'id="ranking"' not in r.get_data(as_text=True)
    # Villages ranked across the county show their township.
    html = client.get(
        "/stats", query_string={"area": COUNTY, "level": "village", **PERIOD}
    ).get_data(as_text=True)
    assert html.count('class="drill"') == 3 and '<td data-value="甲镇">甲镇</td>' in html


def test_the_glossary_has_every_figure(client, login):
    login("planner")
    html = client.get("/stats/glossary").get_data(as_text=True)
    for f in F.FIGURES:
        assert f'id="{f.key}"' in html and f.name in html
    assert "泊松" in html and "Mann-Kendall" in html


@pytest.mark.usefixtures("stats_county")
def test_scope_on_pages(client, login):
    login("township_leader", area=TOWN_B)
    r = client.get("/stats")
    assert r.status_code == 200 and "乙乡 信访统计" in r.get_data(as_text=True)
    for page in ("/stats", "/stats/warning", "/stats/ranking.csv", "/stats/monthly.xlsx"):
        for other in (COUNTY, TOWN_A, G1):
            r = client.get(page, query_string={"area": other})
            assert r.status_code == 404, (page, other)
            assert "不存在或您无权查看" in r.get_data(as_text=True)
    assert client.get("/stats/warning").status_code == 200


@pytest.mark.parametrize("role", ["grid_worker", "village_informant"])
def test_roles_without_statistics(client, login, role):
    login(role)
    r = client.get("/stats")
    assert r.status_code == 403 and "无权" in r.get_data(as_text=True)


def test_bad_parameters_on_a_page_answer_in_chinese(client, login):
    login("county_staff")
    r = client.get("/stats", query_string={"from": "2025-02-30"})
    assert r.status_code == 400 and "YYYY-MM-DD" in r.get_data(as_text=True)


def test_demo_dashboard_and_warning_panel(client, login):
    login("county_staff")
    r = client.get("/stats")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert html.count('class="drill"') == 12 and "延津县" in html
    r = client.get("/stats/warning")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "异常增多" in html and "热点演变" in html and "共检验" in html
    assert client.get("/stats/warning", query_string={"window": "fortnight"}).status_code == 400
