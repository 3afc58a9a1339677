"""Field reports from a phone: filing, validation, idempotent resends, the page itself."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import CSRF_HEADERS
from tests.field_fixtures import category_id, grid_point, other_grid, report_payload

URL = "/api/v1/field/reports"


def post(client, body, headers=CSRF_HEADERS):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data=data, headers=headers, content_type="application/json")


def count_cases(session, client_id=None) -> int:
    if client_id is None:
        return session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    return session.execute(
        text("SELECT count(*) FROM cases WHERE client_id = :c"), {"c": client_id}
    ).scalar_one()


def test_a_report_becomes_a_case_in_its_grid_with_a_register_event(
    client, login, session, demo_areas
):
    user = login("grid_worker")
    grid = demo_areas["grid_worker"]
    body = report_payload(
        session, grid, petitioner_name="王五", petitioner_phone="13812345678", people_count=3
    )
    r = post(client, body)
    assert r.status_code == 201, r.get_json()
    rep = r.get_json()["report"]
    assert rep["created"] is True and rep["grid"]["code"] == grid and rep["in_own_area"] is True
    assert rep["number"].startswith("410726-")
    row = session.execute(
        text(
            "SELECT channel, reporter_id, grid_code, people_count, petitioner_name, "
            "petitioner_phone, "
            "location_accuracy_m, status, title, description FROM cases WHERE client_id = :c"
        ),
        {"c": body["client_id"]},
    ).one()
    assert row.channel == "grid_sweep" and row.reporter_id == user.id and row.grid_code == grid
    assert (row.people_count, row.petitioner_name, row.petitioner_phone) == (
        3,
        "王五",
        "13812345678",
    )
    assert row.location_accuracy_m == 8.5 and row.status == "registered"
    assert (
        row.title.startswith("邻里/婚姻家庭：两户村民") and row.description == body["description"]
    )
    events = session.execute(
        text("SELECT action, actor_id, to_status, data FROM case_events WHERE case_id = :i"),
        {"i": rep["case_id"]},
    ).all()
    assert len(events) == 1
    assert (
        events[0].action == "register"
        and events[0].actor_id == user.id
        and events[0].to_status == "registered"
    )
    assert events[0].data["client_id"] == body["client_id"]


def test_a_point_in_another_grid_goes_to_that_grid(client, login, session, demo_areas):
    login("grid_worker")
    elsewhere = other_grid(session, demo_areas["grid_worker"])
    r = post(client, report_payload(session, elsewhere))
    assert r.status_code == 201
    rep = r.get_json()["report"]
    assert rep["grid"]["code"] == elsewhere and rep["in_own_area"] is False
    # and the worker still sees it: they reported it
    assert client.get(f"/api/v1/field/cases/{rep['case_id']}/photos").status_code == 200


def test_the_same_report_sent_five_times_is_one_case(client, login, session, demo_areas):
    login("grid_worker")
    body = report_payload(session, demo_areas["grid_worker"])
    answers = [post(client, body) for _ in range(5)]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200]
    numbers = {a.get_json()["report"]["number"] for a in answers}
    assert len(numbers) == 1
    assert [a.get_json()["report"]["created"] for a in answers] == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert count_cases(session, body["client_id"]) == 1
    case_id = answers[0].get_json()["report"]["case_id"]
    assert (
        session.execute(
            text("SELECT count(*) FROM case_events WHERE case_id = :i"), {"i": case_id}
        ).scalar_one()
        == 1
    )


def test_someone_elses_client_id_is_refused(client, login, session, demo_areas):
    login("grid_worker")
    body = report_payload(session, demo_areas["grid_worker"])
    assert post(client, body).status_code == 201
    login("grid_worker")  # another worker of the same grid
    r = post(client, body)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "client_id_conflict"
    assert "number" not in r.get_data(as_text=True)


def test_outside_the_county_is_refused_clearly(client, login, session, demo_areas):
    login("grid_worker")
    before = count_cases(session)
    r = post(client, report_payload(session, demo_areas["grid_worker"], lon=116.39, lat=39.91))
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "outside_county" and "不在本县" in err["message"]
    assert count_cases(session) == before


BAD = [
    pytest.param({"lon": 200.0}, "invalid_coordinates", "lon", id="lon-out-of-range"),
    pytest.param({"lat": -91}, "invalid_coordinates", "lat", id="lat-out-of-range"),
    pytest.param({"lat": "35.2"}, "invalid_coordinates", "lat", id="lat-as-text"),
    pytest.param({"lon": True}, "invalid_coordinates", "lon", id="lon-boolean"),
    pytest.param({"lon": None}, "missing_field", "lon", id="lon-missing"),
    pytest.param({"description": "   "}, "missing_field", "description", id="description-blank"),
    pytest.param({"description": None}, "missing_field", "description", id="description-missing"),
    pytest.param(
        {"description": "x" * (1024 * 1024)}, "text_too_long", "description", id="description-1MB"
    ),
    pytest.param(
        {"description": "nul\x00byte"}, "control_characters", "description", id="nul-byte"
    ),
    pytest.param(
        {"description": "bell\x07"}, "control_characters", "description", id="control-char"
    ),
    pytest.param(
        {"description": "rtl\u202eoverride"},
        "control_characters",
        "description",
        id="bidi-override",
    ),
    pytest.param({"description": 42}, "invalid_type", "description", id="description-number"),
    pytest.param(
        {"petitioner_name": "张\n三"}, "control_characters", "petitioner_name", id="name-newline"
    ),
    pytest.param(
        {"petitioner_name": "名" * 51}, "text_too_long", "petitioner_name", id="name-too-long"
    ),
    pytest.param(
        {"petitioner_phone": "call me"}, "invalid_phone", "petitioner_phone", id="phone-letters"
    ),
    pytest.param({"category_id": None}, "missing_field", "category_id", id="category-missing"),
    pytest.param({"category_id": 999999}, "unknown_category", "category_id", id="category-unknown"),
    pytest.param({"category_id": "abc"}, "unknown_category", "category_id", id="category-text"),
    pytest.param(
        {"category_id": 99999999999999999999}, "unknown_category", "category_id", id="category-huge"
    ),
    pytest.param({"people_count": 0}, "out_of_range", "people_count", id="people-zero"),
    pytest.param({"people_count": 2.5}, "invalid_number", "people_count", id="people-fraction"),
    pytest.param({"people_count": 10**9}, "out_of_range", "people_count", id="people-huge"),
    pytest.param({"accuracy_m": -3}, "out_of_range", "accuracy_m", id="accuracy-negative"),
    pytest.param({"client_id": "not-a-uuid"}, "invalid_client_id", "client_id", id="client-id-bad"),
    pytest.param({"client_id": None}, "missing_field", "client_id", id="client-id-missing"),
]


@pytest.mark.parametrize(("change", "code", "field"), BAD)
def test_each_bad_input_is_refused_clearly_and_nothing_is_stored(
    client, login, session, demo_areas, change, code, field
):
    login("grid_worker")
    body = report_payload(session, demo_areas["grid_worker"])
    body.update(change)
    before = count_cases(session)
    r = post(client, body)
    assert r.status_code == 400, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == code
    assert any(d["field"] == field and d["code"] == code for d in err["details"])
    assert err["message"] and all(ord(ch) < 128 for ch in err["code"])
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err["message"])  # a Chinese message
    assert count_cases(session) == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinite_coordinates_are_refused(client, login, session, demo_areas, literal):
    login("grid_worker")
    body = report_payload(session, demo_areas["grid_worker"])
    raw = json.dumps(body).replace(json.dumps(body["lat"]), literal)
    before = count_cases(session)
    r = post(client, raw)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_coordinates"
    assert count_cases(session) == before


def test_every_problem_is_listed_at_once(client, login):
    login("grid_worker")
    r = post(client, {"client_id": str(uuid.uuid4()), "lon": 500})
    err = r.get_json()["error"]
    fields = {d["field"] for d in err["details"]}
    assert {"category_id", "description", "lon", "lat"} <= fields
    assert "请选择类别" in err["message"] and "请填写情况描述" in err["message"]


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", "", "null"], ids=["text", "array", "empty", "null"]
)
def test_a_body_that_is_not_a_json_object_is_refused(client, login, body):
    login("grid_worker")
    r = post(client, body)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_json"


def test_an_inactive_category_is_refused(client, login, session, demo_areas):
    login("grid_worker")
    cat = category_id(session, "other")
    session.execute(text("UPDATE categories SET active = false WHERE id = :i"), {"i": cat})
    r = post(client, report_payload(session, demo_areas["grid_worker"], category_id=cat))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "unknown_category"


def test_a_plausible_phone_time_is_kept_and_a_wild_one_ignored(client, login, session, demo_areas):
    login("grid_worker")
    body = report_payload(session, demo_areas["grid_worker"], reported_at="2020-01-01T00:00:00Z")
    r = post(client, body)
    assert r.status_code == 201
    year = session.execute(
        text("SELECT extract(year FROM reported_at) FROM cases WHERE client_id = :c"),
        {"c": body["client_id"]},
    ).scalar_one()
    assert year != 2020
    now = session.execute(text("SELECT now() - interval '2 hours'")).scalar_one()
    body = report_payload(session, demo_areas["grid_worker"], reported_at=now.isoformat())
    assert post(client, body).status_code == 201
    stored = session.execute(
        text("SELECT reported_at FROM cases WHERE client_id = :c"), {"c": body["client_id"]}
    ).scalar_one()
    assert abs((stored - now).total_seconds()) < 1


def test_sign_in_csrf_and_role_are_required(client, login, session, demo_areas):
    body = report_payload(session, demo_areas["grid_worker"])
    # With no session at all the CSRF check answers first; the page asks /session, which says 401.
    assert post(client, body).get_json()["error"]["code"] == "csrf_failed"
    r = client.get("/api/v1/field/session")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "login_required"
    login("grid_worker")
    r = post(client, body, headers={})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "csrf_failed"
    login("planner")
    r = post(client, body)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden_role"
    assert count_cases(session, body["client_id"]) == 0


def test_an_expired_session_answers_session_expired(app, client, login, session, demo_areas):
    import time

    login("grid_worker")
    with client.session_transaction() as s:
        s["seen"] = int(time.time()) - app.config["SESSION_IDLE_MINUTES"] * 60 - 5
    r = post(client, report_payload(session, demo_areas["grid_worker"]))
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "session_expired"


def test_session_info_gives_a_fresh_csrf_token(client, login):
    user = login("grid_worker")
    r = client.get("/api/v1/field/session")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert (
        body["user"]["username"] == user.username
        and body["csrf_token"] == CSRF_HEADERS["X-CSRF-Token"]
    )


# -- the page, its service worker and its map data ----------------------------------


def test_the_report_page_needs_no_inline_script_and_nothing_from_outside(client, login, session):
    login("grid_worker")
    r = client.get("/field/report")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'capture="environment"' in html and 'accept="image/*"' in html and "multiple" in html
    assert "/vendor/leaflet/dist/leaflet.js" in html
    assert "http://" not in html and "https://" not in html
    import re

    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag  # no inline scripts: the CSP forbids them
    assert " on" + "click=" not in html
    names = session.execute(text("SELECT name FROM categories WHERE active")).scalars().all()
    for name in names:
        assert name in html
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("grid_worker", 200),
        ("village_informant", 200),
        ("township_leader", 200),
        ("county_staff", 200),
        ("planner", 403),
        ("leader_in_charge", 403),
    ],
)
def test_who_may_open_the_report_page(client, login, role, status):
    login(role)
    assert client.get("/field/report").status_code == status


def test_the_report_page_redirects_to_sign_in_and_back(client):
    r = client.get("/field/report")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=/field/report"


def test_the_service_worker_is_served_for_the_field_scope(client):
    r = client.get("/field/sw.js")  # public: the browser checks it for updates without a session
    assert r.status_code == 200
    assert r.mimetype == "text/javascript"
    assert r.headers["Service-Worker-Allowed"] == "/field/"
    assert "no-cache" in r.headers["Cache-Control"]
    assert "field/report" in r.get_data(as_text=True)


def test_grid_outlines_are_geojson_with_the_own_grid(client, login, session, demo_areas):
    login("grid_worker")
    grid = demo_areas["grid_worker"]
    fc = client.get("/api/v1/field/grids").get_json()
    assert fc["type"] == "FeatureCollection"
    own = [f for f in fc["features"] if f["properties"]["own"]]
    assert [f["properties"]["code"] for f in own] == [grid]
    assert len(fc["features"]) > 1  # the neighbours too
    assert own[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    # near another point: the grid there comes along
    elsewhere = other_grid(session, grid)
    lon, lat = grid_point(session, elsewhere)
    fc = client.get(f"/api/v1/field/grids?lon={lon}&lat={lat}").get_json()
    assert elsewhere in {f["properties"]["code"] for f in fc["features"]}
    assert client.get("/api/v1/field/grids?lon=abc&lat=1").status_code == 400
    assert client.get("/api/v1/field/grids?lon=nan&lat=1").status_code == 400


def test_grid_outlines_put_names_in_properties_not_markup(client, login, session, demo_areas):
    login("grid_worker")
    grid = demo_areas["grid_worker"]
    session.execute(
        text("UPDATE areas SET name = '<img src=x onerror=alert(1)>' WHERE code = :c"), {"c": grid}
    )
    fc = client.get("/api/v1/field/grids").get_json()
    own = next(f for f in fc["features"] if f["properties"]["own"])
    assert (
        own["properties"]["name"] == "<img src=x onerror=alert(1)>"
    )  # data; the page sets it as text
