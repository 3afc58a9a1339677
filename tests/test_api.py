"""Contract tests of /api/v1: every endpoint, every role's scope, masking, idempotent creation."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from tests.exchange_fixtures import *  # noqa: F403
from tests.exchange_fixtures import auth

ROLES = [
    "grid_worker",
    "village_informant",
    "township_leader",
    "county_staff",
    "leader_in_charge",
    "planner",
    "admin",
]


def _new_case(point, **kw):
    return {
        "title": "村道破损",
        "category": "traffic_parking",
        "lon": point[0],
        "lat": point[1],
        **kw,
    }


def _post(client, token, body, key=None, **headers):
    return client.post(
        "/api/v1/cases",
        json=body,
        headers=auth(token, **{"Idempotency-Key": key or uuid.uuid4().hex}, **headers),
    )


def test_openapi_document_is_public_and_describes_every_endpoint(app, client):
    import re

    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    served = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len("/api/v1") :]), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == served
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_every_endpoint_needs_a_token(client):
    for url in [
        "/api/v1/areas",
        "/api/v1/cases",
        "/api/v1/cases/1",
        "/api/v1/categories",
        "/api/v1/areas/410726",
    ]:
        r = client.get(url)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "login_required"
    r = client.get("/api/v1/cases", headers=auth("gc_not-a-token"))
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "invalid_token"


def test_areas(client, token_for, session, demo_areas):
    _, token = token_for("township_leader")
    r = client.get("/api/v1/areas?level=village", headers=auth(token))
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    fc = r.get_json()
    expected = session.execute(
        text("SELECT count(*) FROM areas WHERE level = 'village' AND township_code = :t"),
        {"t": demo_areas["township_leader"]},
    ).scalar_one()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == expected
    assert all(
        f["properties"]["parent_code"] == demo_areas["township_leader"] for f in fc["features"]
    )
    exact = client.get(
        f"/api/v1/areas/{demo_areas['township_leader']}", headers=auth(token)
    ).get_json()
    simple = client.get(
        f"/api/v1/areas/{demo_areas['township_leader']}?tolerance=200", headers=auth(token)
    ).get_json()
    count = lambda g: sum(len(ring) for poly in g["coordinates"] for ring in poly)  # noqa: E731
    assert exact["geometry"]["type"] == "MultiPolygon" and count(simple["geometry"]) < count(
        exact["geometry"]
    )
    bare = client.get(
        f"/api/v1/areas?parent={demo_areas['township_leader']}&geometry=false", headers=auth(token)
    ).get_json()
    assert len(bare["features"]) == expected and all(
        f["geometry"] is None for f in bare["features"]
    )
    # The county above them and a neighbouring township are out of scope.
    assert client.get("/api/v1/areas/410726", headers=auth(token)).status_code == 404
    assert client.get("/api/v1/areas?parent=410726", headers=auth(token)).status_code == 404
    other = session.execute(
        text("SELECT code FROM areas WHERE level = 'township' AND code <> :t LIMIT 1"),
        {"t": demo_areas["township_leader"]},
    ).scalar_one()
    assert client.get(f"/api/v1/areas/{other}", headers=auth(token)).status_code == 404


def test_case_pages_are_stable_and_complete(client, token_for, session, demo_areas):
    _, token = token_for("county_staff")
    seen, cursor = [], None
    for _ in range(100):
        url = f"/api/v1/cases?area={demo_areas['township_leader']}&limit=37" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = client.get(url, headers=auth(token)).get_json()
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = (
        session.execute(
            text(
                "SELECT id FROM cases WHERE township_code = :t ORDER BY reported_at DESC, id DESC"
            ),
            {"t": demo_areas["township_leader"]},
        )
        .scalars()
        .all()
    )
    assert seen == expected


def test_case_filters(client, token_for, session):
    _, token = token_for("county_staff")
    r = client.get(
        "/api/v1/cases?category=migrant_wages,labour_dispute&status=resolved,closed&channel=visit&from=2025-01-01&to=2025-12-31&limit=500",
        headers=auth(token),
    )
    items = r.get_json()["items"]
    expected = session.execute(
        text(
            """SELECT count(*) FROM cases c JOIN categories k ON k.id = c.category_id
           WHERE k.code IN ('migrant_wages','labour_dispute') AND c.status IN ('resolved','closed')
             AND c.channel = 'visit'
             AND c.reported_at >= '2025-01-01T00:00:00+08:00' AND c.reported_at < '2026-01-01T00:00:00+08:00'"""
        )
    ).scalar_one()
    assert len(items) == expected > 0
    assert all(
        i["category_code"] in ("migrant_wages", "labour_dispute") and i["channel"] == "visit"
        for i in items
    )
    box = "114.15,35.20,114.25,35.30"
    fc = client.get(
        f"/api/v1/cases?bbox={box}&format=geojson&limit=500", headers=auth(token)
    ).get_json()
    assert fc["type"] == "FeatureCollection" and fc["features"]
    assert all(
        114.15 <= f["geometry"]["coordinates"][0] <= 114.25
        and 35.2 <= f["geometry"]["coordinates"][1] <= 35.3
        for f in fc["features"]
    )


@pytest.mark.parametrize(
    "query",
    [
        "bbox=1,2,3",
        "bbox=nan,1,2,3",
        "bbox=3,1,2,4",
        "area=41%27%20OR%201=1",
        "from=2026-02-30",
        "from=2026-03-01&to=2026-01-01",
        "status=open",
        "channel=x;DROP%20TABLE%20cases",
        "limit=0",
        "limit=501",
        "limit=99999999999999999999",
        "limit=1e3",
        "cursor=abc",
        "cursor=WzEsMl0",
        "format=xml",
        "category=",
        "unknown=1",
        "tolerance=1",
    ],
)
def test_bad_list_parameters_are_400_not_500(client, token_for, query):
    _, token = token_for("county_staff")
    r = client.get(f"/api/v1/cases?{query}", headers=auth(token))
    assert r.status_code == 400, (query, r.get_data(as_text=True)[:200])
    err = r.get_json()["error"]
    assert (
        err["code"] in ("invalid_parameter", "unknown_parameter")
        and err["message"]
        and err["message_en"]
    )


def test_one_case_with_events_and_masking(client, token_for, session, demo_areas):
    case_id, number = session.execute(
        text(
            "SELECT id, number FROM cases WHERE grid_code = :g AND petitioner_name IS NOT NULL ORDER BY id LIMIT 1"
        ),
        {"g": demo_areas["grid_worker"]},
    ).one()
    session.execute(
        text("UPDATE cases SET leader_id = NULL, reporter_id = NULL WHERE id = :i"), {"i": case_id}
    )
    raw = session.execute(
        text("SELECT petitioner_name FROM cases WHERE id = :i"), {"i": case_id}
    ).scalar_one()
    events = session.execute(
        text("SELECT count(*) FROM case_events WHERE case_id = :i"), {"i": case_id}
    ).scalar_one()
    _, staff = token_for("county_staff")
    body = client.get(f"/api/v1/cases/{case_id}", headers=auth(staff)).get_json()
    assert (
        body["petitioner_name"] == raw
        and body["personal_masked"] is False
        and len(body["events"]) == events
    )
    assert client.get(f"/api/v1/cases/{number}", headers=auth(staff)).get_json()["id"] == case_id
    _, planner = token_for("planner")
    masked = client.get(f"/api/v1/cases/{case_id}", headers=auth(planner)).get_json()
    assert (
        masked["personal_masked"] is True
        and masked["petitioner_name"] != raw
        and masked["petitioner_name"][0] == raw[0]
    )
    for ref in ["999999999999", "99999999999999999999999", "410726-1999-0000000"]:
        assert client.get(f"/api/v1/cases/{ref}", headers=auth(staff)).status_code == 404


@pytest.mark.parametrize("role", ROLES)
def test_scope_of_every_role(client, token_for, session, demo_areas, role):
    """Each role lists exactly the cases case_scope admits, and gets 404 for one outside it."""
    user, token = token_for(role)
    if role == "leader_in_charge":
        session.execute(
            text(
                "UPDATE cases SET leader_id = :u WHERE id IN (SELECT id FROM cases ORDER BY id LIMIT 5)"
            ),
            {"u": user.id},
        )
    from webapp.auth.permissions import case_scope_sql

    cond, params = case_scope_sql(user)
    expected = (
        session.execute(
            text(
                f"SELECT id FROM cases c WHERE {cond} ORDER BY reported_at DESC, id DESC LIMIT 500"
            ),
            params,
        )
        .scalars()
        .all()
    )
    got = [
        c["id"]
        for c in client.get("/api/v1/cases?limit=500", headers=auth(token)).get_json()["items"]
    ]
    assert got == expected and got
    outside = session.execute(
        text(f"SELECT id FROM cases c WHERE NOT ({cond}) ORDER BY id LIMIT 1"), params
    ).scalar_one_or_none()
    if outside is not None:
        r = client.get(f"/api/v1/cases/{outside}", headers=auth(token))
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    inside = expected[0]
    assert client.get(f"/api/v1/cases/{inside}", headers=auth(token)).status_code == 200


def test_create_case_and_idempotency(client, token_for, session, demo_point):
    _, token = token_for("county_staff")
    body = _new_case(
        demo_point,
        petitioner_name="张三",
        petitioner_phone="13800138000",
        people_count=6,
        channel="hotline",
    )
    first = _post(client, token, body, key="key-1")
    assert first.status_code == 201, first.get_json()
    created = first.get_json()
    assert created["status"] == "registered" and created["events"][0]["action"] == "register"
    assert first.headers["Location"].endswith(f"/api/v1/cases/{created['id']}")
    again = _post(client, token, body, key="key-1")
    assert (
        again.status_code == 201
        and again.get_json() == created
        and again.headers["Idempotent-Replayed"] == "true"
    )
    # Key order and spacing do not make a different request.
    same = client.post(
        "/api/v1/cases",
        data=json.dumps(dict(reversed(list(body.items())))),
        headers=auth(token, **{"Idempotency-Key": "key-1", "Content-Type": "application/json"}),
    )
    assert same.get_json() == created
    other = _post(client, token, {**body, "title": "另一件事"}, key="key-1")
    assert (
        other.status_code == 422 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    )
    assert (
        session.execute(
            text("SELECT count(*) FROM cases WHERE petitioner_phone = '13800138000'")
        ).scalar_one()
        == 1
    )
    # Another user may use the same key for their own request.
    _, token2 = token_for("county_staff")
    assert _post(client, token2, body, key="key-1").get_json()["id"] != created["id"]


def test_failed_creates_do_not_use_up_the_key(client, token_for, demo_point):
    _, token = token_for("county_staff")
    r = _post(client, token, _new_case((100.0, 30.0)), key="k")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "outside_county"
    assert _post(client, token, _new_case(demo_point), key="k").status_code == 201


def test_gcj02_coordinates_are_converted(client, token_for, demo_point):
    from webapp.geo import wgs84_to_gcj02

    _, token = token_for("county_staff")
    lon, lat = wgs84_to_gcj02(*demo_point)
    body = _post(client, token, _new_case((float(lon), float(lat)), crs="gcj02")).get_json()
    assert body["lon"] == pytest.approx(demo_point[0], abs=1e-6) and body["lat"] == pytest.approx(
        demo_point[1], abs=1e-6
    )


@pytest.mark.parametrize(
    ("payload", "content_type", "status", "code"),
    [
        ("{", "application/json", 400, "invalid_json"),
        ("[1]", "application/json", 400, "invalid_json"),
        (
            '{"title": "x", "category": "other", "lon": NaN, "lat": 35}',
            "application/json",
            400,
            "invalid_json",
        ),
        ("title=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (
            '{"title": 5, "category": "other", "lon": "114", "lat": 1e999}',
            "application/json",
            422,
            "validation_failed",
        ),
        (
            '{"title": "x", "category": "nope", "lon": 114.2, "lat": 35.2}',
            "application/json",
            422,
            "unknown_category",
        ),
        (
            '{"title": "x", "category": "other", "lon": 114.2, "lat": 35.2, "people_count": 99999999999999999999}',
            "application/json",
            422,
            "validation_failed",
        ),
        (
            '{"title": "x", "category": "other", "lon": 114.2, "lat": 35.2, "evil": "\'; DROP TABLE cases; --"}',
            "application/json",
            422,
            "validation_failed",
        ),
        (
            '{"title": "x", "category": "other", "lon": 114.2, "lat": 35.2, "reported_at": "2999-01-01T00:00:00Z"}',
            "application/json",
            422,
            "validation_failed",
        ),
        ("\xff\xfe", "application/json", 400, "invalid_json"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(
    client, token_for, payload, content_type, status, code
):
    _, token = token_for("county_staff")
    r = client.post(
        "/api/v1/cases",
        data=payload.encode("latin-1") if payload.startswith("\xff") else payload,
        headers=auth(token, **{"Idempotency-Key": "k", "Content-Type": content_type}),
    )
    assert r.status_code == status and r.get_json()["error"]["code"] == code


def test_idempotency_key_is_required(client, token_for, demo_point):
    _, token = token_for("county_staff")
    r = client.post("/api/v1/cases", json=_new_case(demo_point), headers=auth(token))
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "idempotency_key_required"


@pytest.mark.parametrize(
    ("role", "status"),
    [("planner", 403), ("leader_in_charge", 403), ("grid_worker", 201), ("admin", 201)],
)
def test_who_may_create(client, token_for, demo_point, role, status):
    _, token = token_for(role)
    r = _post(client, token, _new_case(demo_point))
    assert r.status_code == status, r.get_json()
    if role == "grid_worker":
        assert r.get_json()["channel"] == "grid_sweep"
        assert _post(client, token, _new_case(demo_point, channel="visit")).status_code == 403


@pytest.mark.parametrize("role", ["grid_worker", "village_informant", "county_staff"])
def test_nobody_files_in_another_county(client, token_for, session, tmp_path, role):
    """A grid worker sees the cases they reported wherever they are, but files in their
    own county only, through the API and Open311 as on the phone and at the desk."""
    from tests.builders import import_test_county, u
    from tests.test_open311 import _file

    import_test_county(session, tmp_path)
    _, token = token_for(role)
    before = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    r = _post(client, token, _new_case(u(3, 1.5)))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "outside_county", r.get_json()
    r = _file(client, token, u(3, 1.5))
    assert r.status_code == 422 and r.get_json()[0]["error_code"] == "outside_county"
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == before


def test_township_leader_cannot_file_outside_the_township(client, token_for, session, demo_areas):
    _, token = token_for("township_leader")
    lon, lat = session.execute(
        text(
            "SELECT ST_X(label_point), ST_Y(label_point) FROM areas "
            "WHERE level = 'grid' AND township_code <> :t LIMIT 1"
        ),
        {"t": demo_areas["township_leader"]},
    ).one()
    r = _post(client, token, _new_case((lon, lat)))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "outside_your_area"
