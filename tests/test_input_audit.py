"""Hostile values in every parameter of every route that takes input: never a 500.

tests/test_bad_input.py holds one row per bad input a person is likely to send, with
its exact answer; tests/test_api_fuzz.py lets Schemathesis loose on /api/v1 from its
OpenAPI document. This module covers what both leave out: the HTML pages' query
strings and forms, Open311, and values no schema or person would pick but a broken
client or a hostile one will (Unicode digits such as "²" that ``str.isdigit`` accepts
and ``int`` refuses, numbers of 5,000 digits, integers beyond PostgreSQL's ``integer``,
the years 1 and 9999, lone surrogates escaped in JSON, a NUL in an upload's name).

``REGRESSIONS`` lists each input that answered 500 before it was fixed, with the
answer it gets now. The sweeps send ``HOSTILE`` values to each parameter of each
route, signed in as a role allowed to use it, and check every answer: below 500, a
Chinese message when refused, a stable code where a machine reads it (/api, /open311),
and nothing written when refused (the tables that hold what people send are counted
after every request).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from sqlalchemy import text

from tests.conftest import CSRF, CSRF_HEADERS
from tests.field_fixtures import category_id, grid_point, image_bytes
from tests.security_fixtures import *  # noqa: F403

CJK = re.compile(r"[\u4e00-\u9fff]")
JSON = {**CSRF_HEADERS, "Content-Type": "application/json", "Accept": "application/json"}
ACCEPT_JSON = {"Accept": "application/json"}
STORED = [
    "cases",
    "case_events",
    "case_photos",
    "sweeps",
    "ledger_imports",
    "api_idempotency_keys",
    "audit_log",
    "visit_plans",
    "visit_stops",
    "visit_records",
]
# Already percent-encoded where the raw character cannot travel in a URL.
HOSTILE = [
    "",
    "x" * 10_000,
    "%00",
    "%ED%A0%80",  # a UTF-16 surrogate, as UTF-8 bytes: not UTF-8
    "²",
    "9" * 5000,
    "2147483648",
    "NaN",
    "1e309",
    "0001-01-01",
    "9999-12-31",
    "2026-01-01T00:00:00+99:00",
]
# The same as form or JSON values (a NUL travels as it is there).
FORM_HOSTILE = [v.replace("%00", "\x00") for v in HOSTILE if v != "%ED%A0%80"]
JSON_HOSTILE = [*FORM_HOSTILE, "\ud800", None, True, [], {}, 10**30, -0.0, 1e308, [1, "a"]]


def query(value: str) -> str:
    return value if value.startswith("%") else quote(value)


def answer(response) -> tuple[int, str, str]:
    """(status, code, message) of any answer: our JSON errors, Open311's list, or a page."""
    data = response.get_data()
    response.close()
    body = response.get_json(silent=True) if response.is_json else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return response.status_code, body["error"].get("code", ""), body["error"]["message"]
    if isinstance(body, list) and body and isinstance(body[0], dict) and "error_code" in body[0]:
        return response.status_code, body[0]["error_code"], body[0]["description"]
    return response.status_code, "", data.decode("utf-8", "replace")


def stored(session) -> dict:
    return dict(
        session.execute(
            text(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in STORED))
        ).all()
    )


class Audit:
    """Sends requests and collects every answer that breaks the rules."""

    def __init__(self, client, session):
        self.client, self.session = client, session
        self.problems: list[str] = []
        self.before = stored(session)

    def send(self, label: str, method: str, url: str, **kw) -> int:
        response = self.client.open(url, method=method, **kw)
        status, code, message = answer(response)
        machine = url.startswith(("/api/", "/open311/"))
        if status >= 500:
            self.problems.append(f"{status} {label}")
        elif status >= 400 and not CJK.search(message):
            self.problems.append(f"{status} without a Chinese message: {label}")
        elif status >= 400 and machine and not code:
            self.problems.append(f"{status} without an error code: {label}")
        if method != "GET":
            after = stored(self.session)
            if status >= 400 and after != self.before:
                changed = {t for t in after if after[t] != self.before[t]}
                self.problems.append(f"{status} but {sorted(changed)} changed: {label}")
            self.before = after
        return status

    def rebase(self) -> None:
        """Count again after the test itself stored something (not an answer's doing)."""
        self.before = stored(self.session)

    def check(self) -> None:
        assert not self.problems, f"{len(self.problems)} broken answers:\n" + "\n".join(
            p[:300] for p in self.problems[:40]
        )


@dataclass(frozen=True)
class Regression:
    what: str
    role: str
    status: int
    code: str
    request: object  # (Targets, lonlat, category id) -> kwargs of client.open

    @property
    def id(self) -> str:
        return self.what


def _get(url: str, **headers):
    return lambda t, p, c: {"path": url.format(t=t), "headers": {**ACCEPT_JSON, **headers}}


def _api_post(path: str, body):
    def make(t, p, c):
        return {
            "path": path.format(t=t),
            "method": "POST",
            "data": json.dumps(body(t, p, c)),
            "headers": {
                **JSON,
                "Authorization": f"Bearer {t.token}",
                "Idempotency-Key": uuid.uuid4().hex,
            },
        }

    return make


def _report(**fields):
    return lambda t, p, c: {
        "client_id": str(uuid.uuid4()),
        "category_id": c,
        "description": "两户因排水沟发生争执",
        "lon": p[0],
        "lat": p[1],
        **fields,
    }


def _form(path: str, data):
    return lambda t, p, c: {
        "path": path.format(t=t),
        "method": "POST",
        "data": {"csrf_token": CSRF, **data},
        "headers": ACCEPT_JSON,
    }


REGRESSIONS = [
    Regression(
        "stats: a Unicode digit as backlog_years",
        "county_staff",
        400,
        "invalid_backlog_years",
        _get("/api/v1/stats?backlog_years=%C2%B2"),
    ),
    Regression(
        "stats: 5,000 digits as backlog_years",
        "county_staff",
        400,
        "invalid_backlog_years",
        _get("/stats?backlog_years=" + "9" * 5000),
    ),
    Regression(
        "early warning: a Unicode digit as months",
        "county_staff",
        400,
        "invalid_months",
        _get("/stats/warning?months=%C2%B2"),
    ),
    Regression(
        "stats: the year 9999 as the end",
        "county_staff",
        400,
        "invalid_date",
        _get("/api/v1/stats?to=9999-12-31"),
    ),
    Regression(
        "stats: the year 9999 as the as-of day",
        "county_staff",
        400,
        "invalid_date",
        _get("/stats?as_of=9999-12-31"),
    ),
    Regression(
        "monthly report: the year 9999 as the as-of day",
        "county_staff",
        400,
        "invalid_date",
        _get("/stats/monthly.xlsx?as_of=9999-12-31"),
    ),
    Regression(
        "early warning: the year 1 as the as-of day",
        "county_staff",
        400,
        "invalid_date",
        _get("/stats/warning?as_of=0001-01-01"),
    ),
    Regression(
        "ranking: the year 1 as the end",
        "county_staff",
        400,
        "invalid_date",
        _get("/stats/ranking.csv?to=0001-01-01"),
    ),
    Regression(
        "map: the year 1 as the start",
        "county_staff",
        400,
        "bad_map_parameter",
        _get("/maps/frame?from=0001-01-01"),
    ),
    Regression(
        "map: the year 9999 as the end",
        "county_staff",
        400,
        "bad_map_parameter",
        _get("/maps/frame?to=9999-12-31"),
    ),
    Regression(
        "sweep coverage: the year 1 as the period",
        "county_staff",
        400,
        "invalid_period",
        _get("/field/coverage?period=0001-01-01"),
    ),
    Regression(
        "case list: the year 9999 as 'until' (ignored, as every malformed filter there)",
        "county_staff",
        200,
        "",
        _get("/cases/?until=9999-12-31"),
    ),
    Regression(
        "visit plan map: an account id beyond PostgreSQL's integer",
        "planner",
        400,
        "invalid_parameter",
        _get("/visits/plans/{t.plan_in}/map?user=2147483648"),
    ),
    Regression(
        "REST API: a Unicode digit as the case id",
        "county_staff",
        404,
        "not_found",
        _get("/api/v1/cases/%C2%B2", Authorization=""),
    ),
    Regression(
        "REST API: a NUL in the case number of the path",
        "county_staff",
        400,
        "control_characters",
        _get("/api/v1/cases/410726-2026-%00", Authorization=""),
    ),
    Regression(
        "REST API: a lone surrogate escaped in the JSON body",
        "county_staff",
        400,
        "invalid_encoding",
        _api_post(
            "/api/v1/cases",
            lambda t, p, c: {"title": "\ud800", "category": "other", "lon": p[0], "lat": p[1]},
        ),
    ),
    Regression(
        "field report: a lone surrogate in the description",
        "grid_worker",
        400,
        "invalid_encoding",
        _api_post("/api/v1/field/reports", _report(description="排水沟\ud800")),
    ),
    Regression(
        "field report: a Unicode digit as the category id",
        "grid_worker",
        400,
        "unknown_category",
        _api_post("/api/v1/field/reports", _report(category_id="²")),
    ),
    Regression(
        "sweep (phone): a lone surrogate in the note",
        "grid_worker",
        400,
        "invalid_encoding",
        _api_post("/api/v1/field/sweeps", lambda t, p, c: {"zero_report": True, "note": "\udfff"}),
    ),
    Regression(
        "sweep (phone): a Unicode digit as a case id",
        "grid_worker",
        400,
        "invalid_type",
        _api_post("/api/v1/field/sweeps", lambda t, p, c: {"case_ids": ["²"]}),
    ),
    Regression(
        "sweep (page): a Unicode digit as a case id",
        "grid_worker",
        400,
        "",
        _form("/field/sweeps", {"case_id": "²"}),
    ),
    Regression(
        "sweep (page): 5,000 digits as a case id",
        "grid_worker",
        400,
        "",
        _form("/field/sweeps", {"case_id": "9" * 5000}),
    ),
    Regression(
        "CSRF: a forged form token with a non-ASCII character",
        "county_staff",
        400,
        "csrf_failed",
        lambda t, p, c: {
            "path": "/cases/new",
            "method": "POST",
            "data": {"csrf_token": "令牌", "title": "x"},
            "headers": ACCEPT_JSON,
        },
    ),
    Regression(
        "CSRF: a forged header token with a non-ASCII character",
        "grid_worker",
        400,
        "csrf_failed",
        lambda t, p, c: {
            "path": "/api/v1/field/reports",
            "method": "POST",
            "data": b"{}",
            "headers": {**JSON, "X-CSRF-Token": "\xff\xfe"},
        },
    ),
    Regression(
        "ledger upload: a NUL in the file's name",
        "county_staff",
        400,
        "control_characters",
        lambda t, p, c: {
            "path": "/exchange/imports",
            "method": "POST",
            "data": {"csrf_token": CSRF, "file": (io.BytesIO(b"a,b\n"), "台账\x00.csv")},
            "headers": ACCEPT_JSON,
        },
    ),
]


@pytest.fixture
def setting(session, targets, demo_areas):
    """(build(role) -> Targets, a point in the demo grid, an active category id)."""
    return targets, grid_point(session, demo_areas["grid_worker"]), category_id(session)


@pytest.mark.parametrize("case", REGRESSIONS, ids=[r.id for r in REGRESSIONS])
def test_each_former_server_error_is_answered_clearly(client, session, login, setting, case):
    from types import SimpleNamespace

    from webapp.auth.accounts import issue_token

    targets, point, category = setting
    if case.role == "planner":  # a visit plan of the planner's
        t = targets(case.role)
    else:  # an account and its API key are all the others need (faster)
        user = login(case.role)
        t = SimpleNamespace(user=user, token=issue_token(session, user, "audit"))
    request = case.request(t, point, category)
    if request["headers"].get("Authorization") == "":
        request["headers"]["Authorization"] = f"Bearer {t.token}"
    before = stored(session)
    status, code, message = answer(client.open(**request))
    assert (status, code) == (case.status, case.code), message[:300]
    if status >= 400:
        assert CJK.search(message), message[:300]
        assert stored(session) == before


def test_a_ledger_csv_with_an_open_quote_is_refused_by_name(session, tmp_path):
    """An open quote makes the rest of the file one cell, longer than the csv module reads."""
    from webapp.exchange.importer import check_ledger
    from webapp.exchange.ledger import LedgerUnreadable

    path = tmp_path / "台账.csv"
    rows = '登记日期,问题类别,事由\n2024-01-01,其他,"漏水\n' + "2024-01-02,其他,噪音\n" * 8000
    path.write_text(rows, encoding="utf-8")
    with pytest.raises(LedgerUnreadable) as refused:
        check_ledger(session, path, "EPSG:4326", path.name)
    assert refused.value.code == "ledger_broken_csv"
    assert "引号" in str(refused.value)


def test_a_photo_with_corrupt_exif_is_kept_without_it(client, session, setting, photo_dir):
    """Pillow only warns about a corrupt EXIF block: the photo is stored (no metadata kept),
    whatever the process's warning filter (this suite turns warnings into errors)."""
    targets, _point, _category = setting
    t = targets("grid_worker")
    t.case_in.reporter_id = t.user.id
    session.flush()
    jpeg = image_bytes()
    broken_exif = b"\xff\xe1\x00\x10Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08"
    response = client.post(
        f"/api/v1/field/cases/{t.case_in.id}/photos",
        data={
            "client_photo_id": str(uuid.uuid4()),
            "photo": (io.BytesIO(jpeg[:2] + broken_exif + jpeg[2:]), "p.jpg"),
        },
        headers={**CSRF_HEADERS, **ACCEPT_JSON},
    )
    assert response.status_code == 201, response.get_data(as_text=True)[:300]


# -- sweeps: every parameter, every hostile value ------------------------------------------

GET_PARAMS = {
    "api": {
        "/api/v1/areas": ["level", "geometry", "parent", "tolerance", "format"],
        "/api/v1/areas/{t.area_in}": ["geometry", "tolerance"],
        "/api/v1/cases": ["area", "from", "to", "bbox", "category", "status", "limit", "cursor"],
        "/api/v1/cases/{t.case_in.id}": ["format"],
        "/api/v1/locate": ["lon", "lat"],
        "/api/v1/stats": ["area", "level", "by", "from", "to", "as_of", "backlog_years"],
    },
    "pages": {
        "/cases/": ["area", "q", "category", "status", "channel", "page", "since", "until"],
        "/cases/due": ["area", "page"],
        "/cases/repeat-candidates": ["lon", "lat", "village_code", "category_id"],
        "/exchange/export/cases.csv": ["area", "from", "to", "bbox", "category"],
        "/exchange/export/areas.csv": ["level"],
        "/login": ["next"],
    },
    "stats and maps": {
        "/stats": ["area", "level", "by", "from", "to", "as_of", "backlog_years", "category"],
        "/stats/warning": ["window", "as_of", "level", "months"],
        "/stats/monthly.xlsx": ["month", "as_of"],
        "/stats/ranking.csv": ["from", "to"],
        "/maps/": ["map", "area", "from", "to", "category", "status", "band", "level"],
        "/maps/frame": ["from", "to", "category", "band"],
        "/field/coverage": ["area", "period"],
    },
    "open311": {
        "/open311/v2/requests.json": ["start_date", "end_date", "status", "page", "page_size"],
        "/open311/v2/services.json": ["jurisdiction_id"],
    },
    "visits": {
        "/visits/new": ["area"],
        "/visits/plans/{t.plan_in}": ["user"],
        "/visits/plans/{t.plan_in}/map": ["user", "day"],
        "/visits/plans/{t.plan_in}/sheet": ["user", "day"],
        "/api/v1/visits/plans/{t.plan_in}/progress": ["day"],
    },
}


@pytest.mark.parametrize("group", list(GET_PARAMS))
def test_query_parameters(client, session, setting, group):
    targets, _point, _category = setting
    t = targets("planner" if group == "visits" else "county_staff")
    audit = Audit(client, session)
    for path, names in GET_PARAMS[group].items():
        url = path.format(t=t)
        key = f"&api_key={t.token}" if url.startswith("/open311") else ""
        headers = {"Authorization": f"Bearer {t.token}"} if url.startswith("/api") else {}
        audit.send(f"GET {url} ?{names[0]} twice", "GET", f"{url}?{names[0]}=1&{names[0]}=2")
        for name in names:
            for value in HOSTILE:
                q = f"?{name}={query(value)}{key}"
                audit.send(f"GET {url}{q[:60]}", "GET", url + q, headers=headers)
    audit.check()


def test_phone_json_bodies(client, session, setting):
    """The phone's JSON: reports, sweeps and visit outcomes, each field at a time."""
    targets, (lon, lat), category = setting
    t = targets("grid_worker")
    bodies = {
        "/api/v1/field/reports": {
            "category_id": category,
            "description": "两户争执",
            "title": "纠纷",
            "people_count": 2,
            "lon": lon,
            "lat": lat,
            "accuracy": 5,
            "reported_at": "2026-11-25T08:00:00+08:00",
            "petitioner_name": "张三",
        },
        "/api/v1/field/sweeps": {"zero_report": True, "note": "无", "grid_code": t.area_in},
        f"/api/v1/visits/stops/{t.stop_in}/outcomes": {
            "outcome": "done",
            "note": "已走访",
            "lon": lon,
            "lat": lat,
            "visited_at": "2026-11-25T08:00:00+08:00",
            "problem_title": "新问题",
            "problem_category": category,
            "problem_people": 1,
        },
    }
    audit = Audit(client, session)
    for url, base in bodies.items():
        for name in [*base, "client_id"]:
            for value in JSON_HOSTILE:
                body = {**base, "client_id": str(uuid.uuid4()), name: value}
                data = json.dumps(body, allow_nan=True)
                audit.send(f"POST {url} {name}={value!r:.40}", "POST", url, data=data, headers=JSON)
        for raw in [b'"text"', b"null", b"1e309", b'{"lon": Infinity}', b"\xef\xbb\xbf{}"]:
            audit.send(f"POST {url} {raw!r}", "POST", url, data=raw, headers=JSON)
    audit.check()


def test_rest_api_and_open311_bodies(client, session, setting):
    targets, (lon, lat), _category = setting
    t = targets("county_staff")
    base = {
        "title": "路灯损坏",
        "category": "other",
        "lon": lon,
        "lat": lat,
        "description": "村口路灯不亮",
        "channel": "online",
        "people_count": 1,
        "reported_at": "2026-11-25T08:00:00+08:00",
        "petitioner_phone": "13800138000",
    }
    audit = Audit(client, session)
    headers = {"Authorization": f"Bearer {t.token}", "Content-Type": "application/json"}
    for name in [*base, "crs"]:
        for value in JSON_HOSTILE:
            data = json.dumps({**base, name: value}, allow_nan=True)
            key = {"Idempotency-Key": uuid.uuid4().hex}
            audit.send(
                f"POST /api/v1/cases {name}={value!r:.40}",
                "POST",
                "/api/v1/cases",
                data=data,
                headers=headers | key,
            )
    form = {
        "api_key": t.token,
        "service_code": "other",
        "description": "路灯不亮",
        "lat": str(lat),
        "long": str(lon),
        "address_id": t.area_in,
        "address_string": "村口",
        "first_name": "三",
        "last_name": "张",
        "phone": "13800138000",
        "attribute[channel]": "hotline",
        "attribute[people_count]": "1",
    }
    for name in form:
        if name == "api_key":
            continue
        for value in FORM_HOSTILE:
            audit.send(
                f"POST open311 {name}={value[:30]!r}",
                "POST",
                "/open311/v2/requests.json",
                data={**form, name: value},
            )
    audit.check()


ACTIONS = [
    "accept",
    "not_accept",
    "assign",
    "transfer",
    "supervise",
    "extend",
    "mediate",
    "conclude",
    "follow_up",
    "escalate",
    "set_leader",
]
ACTION_FIELDS = [
    "note",
    "reason",
    "unit",
    "level",
    "kind",
    "days",
    "approver",
    "agreement",
    "parties",
    "opinion",
    "text",
    "satisfaction",
    "to",
    "leader_id",
]


def test_desk_forms(client, session, setting):
    """The desk: registration, every workflow step, repeat links, the ledger upload."""
    targets, (lon, lat), category = setting
    t = targets("county_staff")
    desk = {
        "csrf_token": CSRF,
        "channel": "visit",
        "case_class": "request",
        "category_id": str(category),
        "title": "停车纠纷",
        "description": "车位被占",
        "people_count": "1",
        "batch_count": "1",
        "lon": str(lon),
        "lat": str(lat),
        "petitioner_phone": "13800138000",
        "repeat_of_id": str(t.case_in.id),
    }
    audit = Audit(client, session)
    for name in [*desk, "village_code", "accused_unit"]:
        if name == "csrf_token":
            continue
        for value in FORM_HOSTILE:
            form = {**desk, name: value}
            audit.send(f"/cases/new {name}={value[:30]!r}", "POST", "/cases/new", data=form)
    for action in ACTIONS:
        for value in FORM_HOSTILE:
            form = {"csrf_token": CSRF, "version": str(t.case_in.version)}
            form |= dict.fromkeys(ACTION_FIELDS, value)
            url = f"/cases/{t.case_in.id}/actions/{action}"
            audit.send(f"{url} fields={value[:30]!r}", "POST", url, data=form)
    for name in ("other_id", "version"):
        for value in FORM_HOSTILE:
            form = {"csrf_token": CSRF, "other_id": str(t.case_out.id), name: value}
            url = f"/cases/{t.case_in.id}/repeat"
            audit.send(f"{url} {name}={value[:30]!r}", "POST", url, data=form)
    for value in FORM_HOSTILE:
        upload = {"csrf_token": CSRF, "crs": value, "file": (io.BytesIO(b"a,b\n"), "l.csv")}
        audit.send(f"upload crs={value[:30]!r}", "POST", "/exchange/imports", data=upload)
    for big in ("2147483648", "9" * 30):
        for url in (f"/cases/{big}/actions/accept", f"/cases/{big}/reveal"):
            audit.send(f"POST {url}", "POST", url, data={"csrf_token": CSRF, "version": "1"})
        for url in (f"/cases/{big}", f"/field/photos/{big}", f"/api/v1/cases/{big}"):
            audit.send(f"GET {url}", "GET", url, headers={"Authorization": f"Bearer {t.token}"})
    audit.check()


def test_visit_and_sweep_forms(client, session, setting):
    targets, (lon, lat), _category = setting
    t = targets("planner")
    plan = {
        "csrf_token": CSRF,
        "area": t.area_in,
        "title": "走访",
        "date_from": "2030-01-01",
        "date_to": "2030-01-05",
        "start_mode": "point",
        "start_lon": str(lon),
        "start_lat": str(lat),
        f"capacity_{t.user.id}": "5",
    }
    audit = Audit(client, session)
    for name in plan:
        if name == "csrf_token":
            continue
        for value in FORM_HOSTILE:
            audit.send(
                f"/visits/new {name}={value[:30]!r}",
                "POST",
                "/visits/new",
                data={**plan, name: value},
            )
    p, s = t.plan_in, t.stop_in
    steps = {
        f"/visits/plans/{p}/add": ["number", "user_day"],
        f"/visits/plans/{p}/stops/{s}/move": ["user_day", "direction"],
        f"/visits/plans/{p}/optimise": ["user_day"],
        f"/visits/plans/{p}/regenerate": ["next"],
    }
    for url, names in steps.items():
        for name in names:
            for value in [*FORM_HOSTILE, "1|9999-12-31", "2147483648|2026-01-01", "a|b"]:
                form = {"csrf_token": CSRF, name: value}
                audit.send(f"{url} {name}={value[:30]!r}", "POST", url, data=form)
    w = targets("grid_worker")
    audit.rebase()
    for name in ("outcome", "note", "lon", "lat", "visited_at", "satisfaction", "problem"):
        for value in FORM_HOSTILE:
            form = {"csrf_token": CSRF, "outcome": "done", "client_id": str(uuid.uuid4())}
            url = f"/visits/stops/{w.stop_in}/outcome"
            audit.send(f"{url} {name}={value[:30]!r}", "POST", url, data={**form, name: value})
    for name in ("grid_code", "case_id", "note"):
        for value in FORM_HOSTILE:
            form = {"csrf_token": CSRF, "zero_report": "1", name: value}
            audit.send(f"/field/sweeps {name}={value[:30]!r}", "POST", "/field/sweeps", data=form)
    audit.check()
