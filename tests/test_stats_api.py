"""``GET /api/v1/stats``: rows as JSON, stable error codes, scope."""

from __future__ import annotations

import pytest

from tests.stats_fixtures import (
    A1,
    A2,
    B1,
    COUNTY,
    G1,
    TOWN_A,
    TOWN_B,
    stats_county,  # noqa: F401  (a fixture)
)

URL = "/api/v1/stats"


def get(client, **params):
    return client.get(URL, query_string=params)


@pytest.mark.usefixtures("stats_county")
def test_townships_of_the_hand_made_county(client, login):
    login("county_staff", area=COUNTY)
    r = get(
        client,
        level="town",
        area=COUNTY,
        **{"from": "2025-01-01", "to": "2025-12-31", "as_of": "2025-12-31"},
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert [row["code"] for row in body["rows"]] == [TOWN_A, TOWN_B]
    assert [row["cases"] for row in body["rows"]] == [4, 5]
    assert body["total"]["cases"] == 9 and body["total"]["name"] == "统计测试县"
    assert body["request"]["as_of"] == "2026-01-01T00:00:00+08:00"  # the end of the as_of day
    keys = {f["key"] for f in body["figures"]}
    assert {"cases", "resolution_rate", "sanwu", "no_petition_villages"} <= keys
    assert all(f["definition"] for f in body["figures"])


@pytest.mark.usefixtures("stats_county")
def test_levels_categories_and_channels(client, login):
    login("county_staff", area=COUNTY)
    period = {"from": "2025-01-01", "to": "2025-12-31", "as_of": "2025-12-31"}
    r = get(client, level="village", area=COUNTY, **period)
    assert [row["code"] for row in r.get_json()["rows"]] == [A1, A2, B1]
    r = get(client, level="grid", area=TOWN_A, **period)
    assert [row["code"] for row in r.get_json()["rows"]][0] == G1
    r = get(client, level="town", area=COUNTY, category="land_acquisition", **period)
    assert r.get_json()["total"]["cases"] == 3
    r = get(client, level="town", area=COUNTY, channel="visit,sms", **period)
    assert r.get_json()["total"]["cases"] == 6
    r = get(client, area=COUNTY, by="category", **period)
    rows = {row["code"]: row for row in r.get_json()["rows"]}
    assert rows["neighbour_family"]["cases"] == 6 and rows["neighbour_family"]["yoy_change"] == 2.0
    r = get(client, area=COUNTY, by="month", **period)
    assert len(r.get_json()["rows"]) == 12


@pytest.mark.parametrize(
    "params, status, code",
    [
        ({"level": "province"}, 400, "invalid_level"),
        ({"level": "town", "area": TOWN_A}, 200, None),
        ({"level": "county", "area": TOWN_A}, 400, "level_above_area"),
        ({"from": "2025-13-01"}, 400, "invalid_date"),
        ({"to": "yesterday"}, 400, "invalid_date"),
        ({"from": "2025-06-01", "to": "2025-05-01"}, 400, "invalid_period"),
        ({"from": "2000-01-01", "to": "2025-05-01"}, 400, "period_too_long"),
        ({"category": "no_such_category"}, 400, "unknown_category"),
        ({"channel": "pigeon"}, 400, "unknown_channel"),
        ({"by": "weather"}, 400, "invalid_grouping"),
        ({"backlog_years": "0"}, 400, "invalid_backlog_years"),
        ({"backlog_years": "abc"}, 400, "invalid_backlog_years"),
        ({"levle": "town"}, 400, "unknown_parameter"),
        ({"area": "990399"}, 404, "not_found"),
        ({"area": "x'; drop table cases"}, 404, "not_found"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={v[k]}" for k in v),
)
@pytest.mark.usefixtures("stats_county")
def test_bad_parameters_have_stable_codes(client, login, params, status, code):
    login("county_staff", area=COUNTY)
    r = get(client, **{"area": COUNTY, **params})
    assert r.status_code == status, r.get_json()
    if code:
        err = r.get_json()["error"]
        assert err["code"] == code and err["message"] and err["message_en"]


@pytest.mark.usefixtures("stats_county")
def test_scope(client, login):
    login("township_leader", area=TOWN_B)
    r = get(client)  # defaults: own township, its villages, this year
    assert r.status_code == 200 and r.get_json()["area"]["code"] == TOWN_B
    assert [row["code"] for row in r.get_json()["rows"]] == [B1]
    for other in (COUNTY, TOWN_A, A1, G1):
        r = get(client, area=other)
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert get(client, area=B1, level="grid").status_code == 200


@pytest.mark.usefixtures("stats_county")
def test_roles_and_sign_in(client, login):
    assert get(client).status_code == 401
    login("grid_worker")
    r = get(client)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden_role"


@pytest.mark.usefixtures("stats_county")
def test_bearer_token(client, make_user, session):
    from webapp.auth.accounts import issue_token

    user = make_user("planner", area=COUNTY)
    token = issue_token(session, user, "报表")
    r = client.get(
        URL,
        query_string={"level": "village", "area": COUNTY},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200 and len(r.get_json()["rows"]) == 3
