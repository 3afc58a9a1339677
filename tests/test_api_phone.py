"""The phone pages' JSON endpoints (/api/v1/field, /api/v1/visits) as machine clients see them.

They are described in /api/v1/openapi.json with two ways in: a bearer token, or the
page's session cookie with the X-CSRF-Token header on POST. Both must really work,
and the description must say what the server does.
"""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from tests.conftest import CSRF_HEADERS
from tests.exchange_fixtures import *  # noqa: F403
from tests.exchange_fixtures import auth
from tests.field_fixtures import photo_dir, report_payload  # noqa: F401
from tests.visits_fixtures import *  # noqa: F403
from tests.visits_fixtures import new_plan, stops_of
from webapp.visits import planning


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 80, 20)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def walked_plan(session, app, make_user, token_for, busy_place):
    """A published plan of the busy village with one grid worker on it, and tokens."""
    planner, planner_token = token_for("planner")
    worker, worker_token = token_for("grid_worker", busy_place.grid)
    plan = new_plan(session, app, planner, busy_place.village, [(worker.id, 20)], days=1)
    planning.publish(session, plan)
    stop = next(s for s in stops_of(session, plan.id) if s.user_id == worker.id and not s.follow_up)
    return {
        "plan": plan,
        "worker": worker,
        "worker_token": worker_token,
        "planner_token": planner_token,
        "stop": stop,
    }


def test_the_document_describes_both_ways_in(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {
        **schemes["sessionCookie"],
        "type": "apiKey",
        "in": "cookie",
        "name": "gridcase_session",
    }
    assert (
        schemes["csrfHeader"]["in"] == "header" and schemes["csrfHeader"]["name"] == "X-CSRF-Token"
    )
    phone = {
        (path, method): op
        for path, item in doc["paths"].items()
        if path.startswith(("/field/", "/visits/"))
        for method, op in item.items()
    }
    assert len(phone) == 9
    for (path, method), op in phone.items():
        session_way = (
            {"sessionCookie": []} if method == "get" else {"sessionCookie": [], "csrfHeader": []}
        )
        assert op["security"] == [{"bearerAuth": []}, session_way], path
        assert op["responses"]["401"] and op["responses"]["400"], path
    upload = doc["paths"]["/field/cases/{case_id}/photos"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    props = doc["components"]["schemas"]["NewPhoto"]["properties"]
    assert props["photo"]["format"] == "binary" and props["client_photo_id"]["format"] == "uuid"


@pytest.mark.usefixtures("photo_dir")
def test_bearer_tokens_work_on_every_phone_endpoint(client, session, walked_plan, busy_place):
    worker = auth(walked_plan["worker_token"])
    r = client.get("/api/v1/field/session", headers=worker)
    assert r.status_code == 200 and r.get_json()["user"]["role"] == "grid_worker"
    # A token client needs no CSRF token, and asking for one starts no cookie session.
    assert r.get_json()["csrf_token"] is None and "Set-Cookie" not in r.headers
    assert client.get("/api/v1/field/grids", headers=worker).get_json()["features"]

    # POSTs without any CSRF header: the token is the credential.
    body = report_payload(session, busy_place.grid)
    r = client.post("/api/v1/field/reports", json=body, headers=worker)
    assert r.status_code == 201, r.get_json()
    case_id = r.get_json()["report"]["case_id"]
    r = client.post(
        f"/api/v1/field/cases/{case_id}/photos",
        data={"client_photo_id": str(uuid.uuid4()), "photo": (io.BytesIO(_jpeg()), "a.jpg")},
        headers=worker,
    )
    assert r.status_code == 201, r.get_json()
    photos = client.get(f"/api/v1/field/cases/{case_id}/photos", headers=worker).get_json()[
        "photos"
    ]
    assert len(photos) == 1
    r = client.post("/api/v1/field/sweeps", json={"case_ids": [case_id]}, headers=worker)
    assert r.status_code == 201 and r.get_json()["sweep"]["case_ids"] == [case_id]

    stop = walked_plan["stop"]
    day = client.get("/api/v1/visits/today", headers=worker).get_json()
    assert stop.id in {s["id"] for s in day["stops"]}
    r = client.post(
        f"/api/v1/visits/stops/{stop.id}/outcomes",
        json={"client_id": str(uuid.uuid4()), "outcome": "nobody_home"},
        headers=worker,
    )
    assert r.status_code == 201 and r.get_json()["outcome"] == "nobody_home"
    progress = client.get(
        f"/api/v1/visits/plans/{walked_plan['plan'].id}/progress",
        headers=auth(walked_plan["planner_token"]),
    ).get_json()
    assert progress["totals"]["nobody_home"] == 1


def test_a_session_posts_only_with_its_csrf_token(client, login, session, busy_place):
    login("grid_worker", busy_place.grid)
    body = report_payload(session, busy_place.grid)
    r = client.post("/api/v1/field/reports", json=body)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "csrf_failed"
    assert client.post("/api/v1/field/reports", json=body, headers=CSRF_HEADERS).status_code == 201
    assert (
        client.get("/api/v1/field/session").get_json()["csrf_token"] == CSRF_HEADERS["X-CSRF-Token"]
    )


def test_an_empty_day_is_refused_not_read_as_today(client, token_for):
    """Regression (fuzzing): ``?day=`` answered today's stops; an empty filter is a mistake."""
    _, token = token_for("grid_worker")
    r = client.get("/api/v1/visits/today?day=", headers=auth(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_parameter"
    assert client.get("/api/v1/visits/today", headers=auth(token)).status_code == 200


def test_parameters_the_document_does_not_name_are_refused(client, token_for):
    _, token = token_for("grid_worker")
    for url in (
        "/api/v1/field/grids?lon=114.2&lat=35.2&radius=5",
        "/api/v1/visits/today?date=2026-01-01",
    ):
        r = client.get(url, headers=auth(token))
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "unknown_parameter", url


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"lon": True, "lat": True}, "location"),  # was read as (1, 1)
        ({"note": 123}, "note"),  # was stored as "123"
        ({"note": {"a": 1}}, "note"),  # was stored as "{'a': 1}"
        ({"satisfaction": False}, "satisfaction"),  # was read as "no satisfaction"
        ({"visited_at": 1700000000}, "visited_at"),  # was silently dropped
        ({"problem": "路灯坏了"}, "problem"),  # was silently dropped
        (
            {"problem": {"title": "路灯坏了", "category_id": True}},
            "problem_category",
        ),  # was category 1
        (
            {"problem": {"title": "路灯坏了", "category_id": 10**30}},
            "problem_category",
        ),  # was a 500
        (
            {"problem": {"title": "路灯坏了", "category_id": "1", "people_count": 0}},
            "problem_people",
        ),
        (
            {"problem": {"title": "路灯坏了", "category_id": "1", "people_count": 2.5}},
            "problem_people",
        ),
    ],
    ids=[
        "bool-coordinates",
        "number-note",
        "object-note",
        "false-satisfaction",
        "number-time",
        "text-problem",
        "bool-category",
        "huge-category",
        "zero-people",
        "fractional-people",
    ],
)
def test_outcome_values_of_the_wrong_type_are_refused_not_converted(
    client, walked_plan, extra, field
):
    """Regressions (fuzzing against the document): each of these was accepted and changed."""
    body = {"client_id": str(uuid.uuid4()), "outcome": "nobody_home", **extra}
    r = client.post(
        f"/api/v1/visits/stops/{walked_plan['stop'].id}/outcomes",
        json=body,
        headers=auth(walked_plan["worker_token"]),
    )
    assert r.status_code == 400, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "invalid_outcome" and field in error["details"]


def test_the_page_may_still_send_numbers_as_text(client, session, walked_plan, busy_place):
    from tests.field_fixtures import category_id, grid_point

    lon, lat = grid_point(session, busy_place.grid)
    body = {
        "client_id": str(uuid.uuid4()),
        "outcome": "done",
        "lon": f"{lon:.6f}",
        "lat": f"{lat:.6f}",
        "problem": {
            "title": "路灯坏了",
            "category_id": str(category_id(session)),
            "people_count": "3",
        },
    }
    r = client.post(
        f"/api/v1/visits/stops/{walked_plan['stop'].id}/outcomes",
        json=body,
        headers=auth(walked_plan["worker_token"]),
    )
    assert r.status_code == 201 and r.get_json()["new_case_number"]


def test_a_field_report_time_of_the_wrong_type_is_refused(client, session, token_for, busy_place):
    """Regression: a numeric ``reported_at`` was silently replaced by the time received."""
    _, token = token_for("grid_worker", busy_place.grid)
    body = report_payload(session, busy_place.grid, reported_at=1700000000)
    r = client.post("/api/v1/field/reports", json=body, headers=auth(token))
    assert r.status_code == 400
    assert [p["field"] for p in r.get_json()["error"]["details"]] == ["reported_at"]
