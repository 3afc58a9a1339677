"""Open311 GeoReport v2: contract tests, and an independent client (civicbot's) against the running app."""

from __future__ import annotations

import threading
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import text

from tests.exchange_fixtures import *  # noqa: F403
from webapp.auth.accounts import issue_token
from webapp.db import database

BASE = "/open311/v2"


def test_discovery_and_services_are_public_in_json_and_xml(client, session):
    d = client.get(f"{BASE}/discovery.json").get_json()
    assert d["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    services = client.get(f"{BASE}/services.json").get_json()
    names = dict(session.execute(text("SELECT code, name FROM categories WHERE active")).all())
    assert {s["service_code"]: s["service_name"] for s in services} == names
    root = ET.fromstring(client.get(f"{BASE}/services.xml").get_data())
    assert root.tag == "services" and len(root.findall("service")) == len(names)
    definition = ET.fromstring(client.get(f"{BASE}/services/migrant_wages.xml").get_data())
    assert definition.findtext("service_code") == "migrant_wages"
    codes = [a.findtext("code") for a in definition.find("attributes").findall("attribute")]
    assert "channel" in codes and definition.find("attributes/attribute/values") is not None
    missing = client.get(f"{BASE}/services/nope.json")
    assert missing.status_code == 404 and missing.get_json()[0]["code"] == 404
    assert client.get(f"{BASE}/services.json?jurisdiction_id=999999").status_code == 404


def _file(client, token, point, fmt="json", **form):
    data = {
        "api_key": token,
        "service_code": "water_supply",
        "lat": point[1],
        "long": point[0],
        "description": "自来水水压不足",
        "first_name": "五",
        "last_name": "王",
        "phone": "13900001111",
        **form,
    }
    return client.post(f"{BASE}/requests.{fmt}", data=data)


def test_file_and_follow_a_request(client, token_for, demo_point, session):
    _, token = token_for("county_staff")
    r = _file(
        client,
        token,
        demo_point,
        **{"attribute[channel]": "online", "attribute[people_count]": "7"},
    )
    assert r.status_code == 201
    answer = r.get_json()[0]
    number, tok = answer["service_request_id"], answer["token"]
    row = session.execute(
        text("SELECT channel, people_count, petitioner_name, status FROM cases WHERE number = :n"),
        {"n": number},
    ).one()
    assert tuple(row) == ("online", 7, "王五", "registered")
    one = client.get(f"{BASE}/requests/{number}.json?api_key={token}").get_json()[0]
    assert (
        one["status"] == "open"
        and "已登记" in one["status_notes"]
        and one["service_code"] == "water_supply"
    )
    assert "王" not in str(one) and "13900001111" not in str(one)  # personal data is never answered
    assert client.get(f"{BASE}/tokens/{tok}.json?api_key={token}").get_json() == [
        {"service_request_id": number, "token": tok}
    ]
    xml = ET.fromstring(client.get(f"{BASE}/requests/{number}.xml?api_key={token}").get_data())
    assert xml.tag == "service_requests" and xml.findtext("request/service_request_id") == number
    listed = client.get(
        f"{BASE}/requests.json?api_key={token}&service_code=water_supply&status=open"
    ).get_json()
    assert number in [x["service_request_id"] for x in listed]
    # Closed and open map from the detailed statuses.
    session.execute(text("UPDATE cases SET status = 'resolved' WHERE number = :n"), {"n": number})
    assert (
        client.get(f"{BASE}/requests/{number}.json?api_key={token}").get_json()[0]["status"]
        == "closed"
    )
    closed = client.get(f"{BASE}/requests.json?api_key={token}&status=closed").get_json()
    assert number in [x["service_request_id"] for x in closed] and all(
        x["status"] == "closed" for x in closed
    )


PUBLIC_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
}


def test_a_keyless_client_follows_the_requests_filed_through_open311(
    client, token_for, demo_point, session
):
    """GeoReport v2 asks for a key only to post: without one, a request's status is there, nothing more."""
    _, token = token_for("county_staff")
    filed = _file(
        client, token, demo_point, description="村口自来水管破裂，水流到路上", id_number=""
    )
    number, tok = filed.get_json()[0]["service_request_id"], filed.get_json()[0]["token"]
    session.execute(
        text(
            "UPDATE cases SET status = 'concluded', opinion = 'support', satisfaction = 'satisfied' "
            "WHERE number = :n"
        ),
        {"n": number},
    )

    one = client.get(f"{BASE}/requests/{number}.json")
    assert one.status_code == 200
    public = one.get_json()[0]
    assert set(public) == PUBLIC_FIELDS
    assert public["service_request_id"] == number and public["status"] == "open"
    assert public["service_code"] == "water_supply" and public["requested_datetime"]
    assert "（concluded）" in public["status_notes"] and "处理意见" in public["status_notes"]
    body = one.get_data(as_text=True)
    for secret in ("自来水管破裂", "王", "五", "13900001111", "满意", f"{demo_point[1]:.4f}"[:6]):
        assert secret not in body, secret
    xml = ET.fromstring(client.get(f"{BASE}/requests/{number}.xml").get_data())
    assert xml.findtext("request/service_request_id") == number
    assert {c.tag for c in xml.find("request")} == PUBLIC_FIELDS
    assert client.get(f"{BASE}/tokens/{tok}.json").get_json() == [
        {"service_request_id": number, "token": tok}
    ]
    assert (
        ET.fromstring(client.get(f"{BASE}/tokens/{tok}.xml").get_data()).findtext(
            "request/service_request_id"
        )
        == number
    )

    # With its key, the same client gets every field (and lists); without, it lists nothing.
    full = client.get(f"{BASE}/requests/{number}.json?api_key={token}").get_json()[0]
    assert full["description"] == "村口自来水管破裂，水流到路上" and full["lat"] == pytest.approx(
        demo_point[1], abs=1e-6
    )
    assert "回访满意度" in full["status_notes"]
    assert client.get(f"{BASE}/requests.json").status_code == 401
    assert client.get(f"{BASE}/requests.json?service_request_id={number}").status_code == 401
    assert client.get(f"{BASE}/requests/{number}.json?api_key=gc_wrong").status_code == 403


def test_keyless_reads_see_only_requests_filed_through_open311(client, session, token_for):
    """A case from the desk, the phone or a ledger answers only to a key: 404 like a missing one."""
    token = uuid.uuid4()
    number = session.execute(
        text(
            "UPDATE cases SET client_id = :t WHERE id = (SELECT min(id) FROM cases) RETURNING number"
        ),
        {"t": token},
    ).scalar_one()
    missing = client.get(f"{BASE}/requests/410726-0000-9999999.json")
    other = client.get(f"{BASE}/requests/{number}.json")
    assert other.status_code == missing.status_code == 404
    assert other.get_json()[0]["error_code"] == missing.get_json()[0]["error_code"] == "not_found"
    assert client.get(f"{BASE}/tokens/{token}.json").status_code == 404
    assert client.get(f"{BASE}/tokens/not-a-token.json").status_code == 404
    # The same case answers to a key that may see it.
    _, key = token_for("county_staff")
    assert client.get(f"{BASE}/requests/{number}.json?api_key={key}").status_code == 200
    assert (
        client.get(f"{BASE}/tokens/{token}.json?api_key={key}").get_json()[0]["service_request_id"]
        == number
    )


def test_request_list_filters_follow_the_spec(client, token_for, session):
    _, token = token_for("county_staff")
    now = datetime.now(UTC)
    default = client.get(f"{BASE}/requests.json?api_key={token}").get_json()
    recent = session.execute(
        text("SELECT count(*) FROM cases WHERE reported_at >= :s AND reported_at < :e"),
        {"s": now - timedelta(days=90), "e": now},
    ).scalar_one()
    assert len(default) == min(recent, 1000)
    assert all(
        datetime.fromisoformat(x["requested_datetime"]) >= now - timedelta(days=91) for x in default
    )
    numbers = session.execute(text("SELECT number FROM cases ORDER BY id LIMIT 3")).scalars().all()
    by_id = client.get(
        f"{BASE}/requests.json?api_key={token}&service_request_id={','.join(numbers)}&start_date=2000-01-01T00:00:00Z"
    ).get_json()
    assert sorted(x["service_request_id"] for x in by_id) == sorted(
        numbers
    )  # ids override the other filters
    window = client.get(
        f"{BASE}/requests.json?api_key={token}&start_date=2025-01-01T00:00:00Z&end_date=2025-03-01T00:00:00Z"
    ).get_json()
    assert window and all("2025-01" <= x["requested_datetime"][:7] <= "2025-03" for x in window)
    too_long = client.get(
        f"{BASE}/requests.json?api_key={token}&start_date=2025-01-01T00:00:00Z&end_date=2025-06-01T00:00:00Z"
    )
    assert (
        too_long.status_code == 400
        and too_long.get_json()[0]["error_code"] == "date_range_too_long"
    )
    for bad in [
        "status=pending",
        "start_date=yesterday",
        "page_size=0",
        "service_code=%27%20OR%201=1",
    ]:
        r = client.get(f"{BASE}/requests.xml?api_key={token}&{bad}")
        assert r.status_code == 400 and ET.fromstring(r.get_data()).tag == "errors", bad


def test_keys_and_scope(client, token_for, session, demo_areas, demo_point):
    assert client.get(f"{BASE}/requests.json").status_code == 401
    assert client.get(f"{BASE}/requests.json?api_key=gc_wrong").status_code == 403
    _, planner = token_for("planner")
    assert _file(client, planner, demo_point).status_code == 403
    _, worker = token_for("grid_worker")
    outside = session.execute(
        text("SELECT number FROM cases WHERE grid_code <> :g ORDER BY id LIMIT 1"),
        {"g": demo_areas["grid_worker"]},
    ).scalar_one()
    assert client.get(f"{BASE}/requests/{outside}.json?api_key={worker}").status_code == 404
    listed = client.get(f"{BASE}/requests.json?api_key={worker}").get_json()
    grids = set(
        session.execute(
            text("SELECT grid_code FROM cases WHERE number = ANY(:n)"),
            {"n": [x["service_request_id"] for x in listed]},
        ).scalars()
    )
    assert grids <= {demo_areas["grid_worker"]}
    mine = _file(client, worker, demo_point)
    assert mine.status_code == 201
    assert _file(client, worker, demo_point, **{"attribute[channel]": "visit"}).status_code == 403


def test_bad_posts(client, token_for, demo_point):
    _, token = token_for("county_staff")
    assert _file(client, token, demo_point, service_code="nope").status_code == 400
    assert _file(client, token, (200, 95)).status_code == 400
    assert _file(client, token, (float("nan"), 35)).status_code == 400
    r = client.post(
        f"{BASE}/requests.json",
        data={"api_key": token, "service_code": "other", "description": "x"},
    )
    assert r.status_code == 400 and r.get_json()[0]["error_code"] == "location_required"
    r = _file(client, token, (100.0, 30.0))
    assert r.status_code == 422 and r.get_json()[0]["error_code"] == "outside_county"


def test_address_id_places_the_request_at_the_village(client, token_for, session, demo_areas):
    _, token = token_for("county_staff")
    r = client.post(
        f"{BASE}/requests.json",
        data={
            "api_key": token,
            "service_code": "other",
            "description": "村里路灯不亮",
            "address_id": demo_areas["village_informant"],
        },
    )
    assert r.status_code == 201
    row = session.execute(
        text("SELECT village_code, location_approx FROM cases WHERE number = :n"),
        {"n": r.get_json()[0]["service_request_id"]},
    ).one()
    assert tuple(row) == (demo_areas["village_informant"], True)


# -- an independent client against the running app ----------------------------------------------


@pytest.fixture
def live_token(live_app, demo_areas):
    from webapp.auth.accounts import create_user

    with live_app.app_context():
        s = database(live_app).sessions()
        user = create_user(
            s, f"o311_{uuid.uuid4().hex[:6]}", "county_staff", "410726", "test-password-123"
        )
        token = issue_token(s, user, "open311 test")
        point = s.execute(
            text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"),
            {"c": demo_areas["grid_worker"]},
        ).one()
        s.commit()
        s.close()
    return token, tuple(point)


def test_civicbot_client_lists_files_and_reads_back(live_server, live_token):
    from civicbot.http import HttpError, HttpTransport, RateLimiter
    from civicbot.open311 import CONFIRM_TOKEN, Open311Client
    from civicbot.registry import Endpoint

    token, (lon, lat) = live_token

    class KeyedTransport(HttpTransport):
        """Listing requests here needs the api_key (petition data is not public)."""

        def get_json(self, url, params=None, headers=None):
            return super().get_json(url, {**(params or {}), "api_key": token}, headers)

    endpoint = Endpoint(id="gridcase", name="GridCase", base_url=f"{live_server}{BASE}", write=True)
    # A standard client: no key but for posting, as the specification has it.
    client = Open311Client(
        endpoint, HttpTransport(rate_limiter=RateLimiter(min_interval=0)), jurisdiction_id="410726"
    )
    keyed = Open311Client(
        endpoint, KeyedTransport(rate_limiter=RateLimiter(min_interval=0)), jurisdiction_id="410726"
    )
    services = client.list_services()
    assert "neighbour_family" in {s["service_code"] for s in services}
    definition = client.get_service_definition("neighbour_family")
    assert {a["code"] for a in definition["attributes"]} >= {"channel", "people_count"}
    sent = client.create_request(
        "neighbour_family",
        dry_run=False,
        confirm=CONFIRM_TOKEN,
        api_key=token,
        validate_remote=True,
        lat=lat,
        lng=lon,
        description="两户因排水沟问题发生争执",
        first_name="四",
        last_name="李",
        attributes={"channel": "hotline", "people_count": 2},
    )
    filed = sent.response[0]
    # Following it without a key: where it stands, not what it says nor where it is.
    got = client.get_request(filed["service_request_id"])
    assert got["service_request_id"] == filed["service_request_id"] and got["status"] == "open"
    assert got["service_code"] == "neighbour_family" and "已登记" in got["status_notes"]
    assert not {"description", "lat", "long", "address", "media_url"} & set(got)
    assert client.get_token(filed["token"])[0]["service_request_id"] == filed["service_request_id"]
    # With the key: every field, and the list.
    full = keyed.get_request(filed["service_request_id"])
    assert (
        full["lat"] == pytest.approx(lat, abs=1e-6)
        and full["description"] == "两户因排水沟问题发生争执"
    )
    listed = keyed.list_requests(service_code="neighbour_family", status="open")
    assert filed["service_request_id"] in [r["service_request_id"] for r in listed]
    with pytest.raises(HttpError) as refused:
        client.list_requests(service_code="neighbour_family")
    assert refused.value.status == 401


def test_concurrent_creates_with_one_key_make_one_case(live_server, live_token, live_app):
    token, (lon, lat) = live_token
    body = {
        "title": "并发提交",
        "category": "other",
        "lon": lon,
        "lat": lat,
        "petitioner_phone": uuid.uuid4().hex[:11],
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    results, barrier = [], threading.Barrier(6)

    def send():
        barrier.wait()
        results.append(
            requests.post(f"{live_server}/api/v1/cases", json=body, headers=headers, timeout=30)
        )

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201] * 6
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in results) == 5
    with live_app.app_context():
        s = database(live_app).sessions()
        n = s.execute(
            text("SELECT count(*) FROM cases WHERE petitioner_phone = :p"),
            {"p": body["petitioner_phone"]},
        ).scalar_one()
        s.close()
    assert n == 1


def test_a_resend_with_an_idempotency_key_is_the_first_request(
    client, token_for, demo_point, session
):
    """GeoReport v2 has no resend key; an Idempotency-Key header (an extension) makes a
    resend answer the first request again instead of filing a second case."""
    _, token = token_for("county_staff")
    phone = "139" + uuid.uuid4().hex[:8]
    key = {"Idempotency-Key": uuid.uuid4().hex}

    def send(fmt="json", headers=key, **form):
        return client.post(
            f"{BASE}/requests.{fmt}",
            data={
                "api_key": token,
                "service_code": "water_supply",
                "lat": demo_point[1],
                "long": demo_point[0],
                "description": "重发的同一件事",
                "phone": phone,
                **form,
            },
            headers=headers,
        )

    def filed() -> int:
        return session.execute(
            text("SELECT count(*) FROM cases WHERE petitioner_phone = :p"), {"p": phone}
        ).scalar_one()

    first, again = send(), send()
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert (
        again.headers["Idempotent-Replayed"] == "true"
        and "Idempotent-Replayed" not in first.headers
    )
    assert filed() == 1
    other = send(description="另一件事")
    assert (
        other.status_code == 422 and other.get_json()[0]["error_code"] == "idempotency_key_reused"
    )
    bad = send(headers={"Idempotency-Key": "带中文"})
    assert bad.status_code == 400 and bad.get_json()[0]["error_code"] == "invalid_idempotency_key"
    without = send(headers={})  # no key: as the specification has it, a new request
    assert without.status_code == 201 and filed() == 2
