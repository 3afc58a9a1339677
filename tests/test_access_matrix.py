"""Roles × areas × endpoints: who gets in, who gets 403, who gets 404 — for every endpoint.

``MATRIX`` declares, for every endpoint and method in the app's url_map, the expected
answer of each role for a target inside its area and one just outside it (see
tests/security_fixtures.py). ``test_every_endpoint_is_in_the_matrix`` fails as soon as
an endpoint is added without a line here, so no page, API, export, photo or map layer
can escape the matrix.

Answers: ``A`` the role is let through (2xx/3xx, or a 4xx about the empty input it sent:
400/409/415/422, never 401/403/404), ``F`` 403, ``N`` 404 (exactly like a missing
thing), ``K`` 401 (the endpoint takes an API key, never the session). Every answer a
role gets, whatever its status, must not contain the text of the case outside its area.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.conftest import CSRF_HEADERS
from tests.security_fixtures import *  # noqa: F403
from tests.security_fixtures import ROLES, Targets, form

GW, VI, TL, CS, LC, PL, AD = ROLES
ALL = frozenset(ROLES)
COUNTY = frozenset({CS, AD})
EXCHANGE = frozenset({CS, PL, AD})
STATS = frozenset({TL, CS, LC, PL, AD})
FIELD = frozenset({GW, VI, TL, CS})  # may report from the field
SWEEPERS = frozenset({GW, VI})  # file sweeps of their grids
COVERAGE = frozenset({VI, TL, CS, PL, AD})
API_WRITERS = FIELD | COUNTY
REVEAL = frozenset({TL, CS, LC, AD})  # may reveal the petitioner of a case in scope
OPEN311_WRITERS = FIELD | COUNTY
MAPS = frozenset({TL, CS, LC, PL, AD})
PLANNERS = frozenset({TL, CS, PL, AD})


def scoped(allowed: frozenset = ALL, out: str = "N") -> dict[str, tuple[str, str]]:
    """Roles in ``allowed`` get in inside their area and ``out`` outside it; others 403."""
    return {r: ("A", out) if r in allowed else ("F", "F") for r in ROLES}


def flat(allowed: frozenset = ALL) -> dict[str, tuple[str, str]]:
    """Not tied to an area: the same answer for the inside and outside target."""
    return {r: ("A", "A") if r in allowed else ("F", "F") for r in ROLES}


def public() -> dict[str, tuple[str, str]]:
    return {r: ("A", "A") for r in ROLES}


@dataclass(frozen=True)
class Probe:
    """How to call one endpoint for a target inside (``True``) or outside the role's area."""

    url: Callable[[Targets, bool], str]
    expect: dict[str, tuple[str, str]]
    data: Callable[[Targets, bool], dict] | None = None
    json: bool = False  # send ``data`` as a JSON body
    token: bool = False  # authenticate by the role's API key (Open311), not the session
    anonymous: str = "login"  # answer without signing in: login (302/401), public, or a status


def case(t: Targets, inside: bool):
    return t.case_in if inside else t.case_out


def _grid_of(t: Targets, inside: bool) -> str:
    """The grid of the case inside or outside the role's area (a sweep is filed per grid)."""
    return case(t, inside).grid_code


def const(url: str) -> Callable[[Targets, bool], str]:
    return lambda t, inside: url


def plan_url(suffix: str) -> Callable[[Targets, bool], str]:
    """The URL of a visit plan (in the user's area, or the one outside) with ``suffix``."""
    return lambda t, i: f"/visits/plans/{t.plan_in if i else t.plan_out}{suffix}"


def stop_url(suffix: str) -> Callable[[Targets, bool], str]:
    """The URL of a plan's stop (in the user's area, or the one outside) with ``suffix``."""
    return lambda t, i: (
        f"/visits/plans/{t.plan_in if i else t.plan_out}/stops/{t.stop_in if i else t.stop_out}"
        f"{suffix}"
    )


MATRIX: dict[tuple[str, str], Probe] = {
    # -- pages ----------------------------------------------------------------------
    ("grid.index", "GET"): Probe(const("/"), flat()),
    ("grid.area", "GET"): Probe(lambda t, i: f"/areas/{t.area_in if i else t.area_out}", scoped()),
    ("cases.index", "GET"): Probe(const("/cases/?q=%E6%A1%88"), flat()),
    ("cases.due", "GET"): Probe(const("/cases/due"), flat()),
    ("cases.detail", "GET"): Probe(lambda t, i: f"/cases/{case(t, i).id}", scoped()),
    ("cases.register", "GET"): Probe(const("/cases/new"), flat(COUNTY)),
    ("cases.register", "POST"): Probe(const("/cases/new"), flat(COUNTY), data=lambda t, i: form()),
    ("cases.repeat_candidates", "GET"): Probe(
        const("/cases/repeat-candidates?phone=13812345678"), flat(COUNTY)
    ),
    ("cases.act", "POST"): Probe(
        lambda t, i: f"/cases/{case(t, i).id}/actions/accept",
        # The case is looked up in scope first: outside it, 404 for everyone.
        scoped(COUNTY) | {r: ("F", "N") for r in ALL - COUNTY},
        data=lambda t, i: form(version=str(case(t, i).version)),
    ),
    ("cases.reveal", "POST"): Probe(
        lambda t, i: f"/cases/{case(t, i).id}/reveal",
        scoped(REVEAL) | {r: ("F", "N") for r in ALL - REVEAL},
        data=lambda t, i: form(),
    ),
    ("cases.link_repeat", "POST"): Probe(
        lambda t, i: f"/cases/{case(t, i).id}/repeat",
        scoped(COUNTY),
        data=lambda t, i: form(other_id=str(t.case_in.id), version=str(case(t, i).version)),
    ),
    ("cases.dismiss_repeat", "POST"): Probe(
        lambda t, i: f"/cases/{case(t, i).id}/repeat/{t.case_in.id}/dismiss",
        scoped(COUNTY),
        data=lambda t, i: form(),
    ),
    ("field.report", "GET"): Probe(const("/field/report"), flat(FIELD)),
    ("field.service_worker", "GET"): Probe(const("/field/sw.js"), public(), anonymous="public"),
    ("field.sweeps", "GET"): Probe(
        lambda t, i: (
            f"/field/sweeps?grid_code={t.area_in if i else t.area_out}"
            if t.role == GW
            else "/field/sweeps"
        ),
        # A grid worker asking for another grid: 404; roles reading coverage are sent there.
        {**flat(SWEEPERS | COVERAGE), GW: ("A", "N")},
    ),
    ("field.sweeps", "POST"): Probe(
        lambda t, i: "/field/sweeps",
        {**flat(SWEEPERS | COVERAGE), GW: ("A", "N"), VI: ("A", "N")},
        data=lambda t, i: form(grid_code=_grid_of(t, i), zero_report="1"),
    ),
    ("field.coverage", "GET"): Probe(
        lambda t, i: f"/field/coverage?area={t.area_in if i else t.area_out}", scoped(COVERAGE)
    ),
    ("field.photo", "GET"): Probe(
        lambda t, i: f"/field/photos/{t.photo_in if i else t.photo_out}", scoped()
    ),
    ("field.photo_thumb", "GET"): Probe(
        lambda t, i: f"/field/photos/{t.photo_in if i else t.photo_out}/thumb", scoped()
    ),
    ("stats.index", "GET"): Probe(
        lambda t, i: f"/stats?area={t.area_in if i else t.area_out}", scoped(STATS)
    ),
    ("stats.glossary", "GET"): Probe(const("/stats/glossary"), flat(STATS)),
    ("stats.warning_panel", "GET"): Probe(
        lambda t, i: f"/stats/warning?area={t.area_in if i else t.area_out}", scoped(STATS)
    ),
    ("stats.ranking_csv", "GET"): Probe(
        lambda t, i: f"/stats/ranking.csv?area={t.area_in if i else t.area_out}", scoped(STATS)
    ),
    ("stats.monthly_report", "GET"): Probe(
        lambda t, i: f"/stats/monthly.xlsx?area={t.area_in if i else t.area_out}", scoped(STATS)
    ),
    ("exchange.index", "GET"): Probe(const("/exchange/"), flat(EXCHANGE)),
    **{
        ("exchange.export_cases", "GET"): Probe(
            lambda t, i: f"/exchange/export/cases.csv?area={t.area_in if i else t.area_out}",
            flat(EXCHANGE),
        ),
        ("exchange.export_areas", "GET"): Probe(
            const("/exchange/export/areas.geojson?level=township"), flat(EXCHANGE)
        ),
    },
    ("exchange.upload", "POST"): Probe(
        const("/exchange/imports"), flat(COUNTY), data=lambda t, i: form()
    ),
    ("exchange.show_import", "GET"): Probe(
        lambda t, i: f"/exchange/imports/{t.import_id}", flat(COUNTY)
    ),
    ("exchange.import_progress", "GET"): Probe(
        lambda t, i: f"/exchange/imports/{t.import_id}/progress", flat(COUNTY)
    ),
    ("exchange.import_report", "GET"): Probe(
        lambda t, i: f"/exchange/imports/{t.import_id}/report.csv", flat(COUNTY)
    ),
    ("exchange.run_import", "POST"): Probe(
        # Another state than "checked": refused as not ready (409) to those let through.
        lambda t, i: f"/exchange/imports/{t.import_id + 1000000}/run",
        {r: ("N", "N") if r in COUNTY else ("F", "F") for r in ROLES},
        data=lambda t, i: form(),
    ),
    ("auth.login", "GET"): Probe(const("/login"), public(), anonymous="public"),
    # Wrong credentials: 401 with the sign-in page again.
    ("auth.login", "POST"): Probe(
        const("/login"),
        {r: ("K", "K") for r in ROLES},
        data=lambda t, i: form(username="x", password="y"),
        anonymous="public",
    ),
    ("auth.logout", "POST"): Probe(const("/logout"), public(), data=lambda t, i: form()),
    ("health.healthz", "GET"): Probe(const("/healthz"), public(), anonymous="public"),
    ("vendor.asset", "GET"): Probe(
        const("/vendor/leaflet/dist/leaflet.js"), public(), anonymous="public"
    ),
    ("vendor.favicon", "GET"): Probe(const("/favicon.ico"), public(), anonymous="public"),
    ("static", "GET"): Probe(const("/static/css/app.css"), public(), anonymous="public"),
    # -- maps -------------------------------------------------------------------------
    ("maps.index", "GET"): Probe(
        lambda t, i: f"/maps/?area={t.area_in if i else t.area_out}", scoped(MAPS)
    ),
    ("maps.frame", "GET"): Probe(
        lambda t, i: f"/maps/frame?map=choropleth&area={t.area_in if i else t.area_out}",
        scoped(MAPS),
    ),
    # -- visits: plans are the planners' (404 to anyone else), stops the assignee's ------
    ("visits.index", "GET"): Probe(const("/visits/"), flat()),
    ("visits.today", "GET"): Probe(const("/visits/today"), flat()),
    ("visits.new", "GET"): Probe(
        lambda t, i: f"/visits/new?area={t.area_in if i else t.area_out}", scoped(PLANNERS)
    ),
    ("visits.create", "POST"): Probe(
        const("/visits/new"),
        scoped(PLANNERS),
        data=lambda t, i: form(area=t.area_in if i else t.area_out),
    ),
    ("visits.area_outline", "GET"): Probe(
        lambda t, i: f"/visits/areas/{t.area_in if i else t.area_out}.geojson", scoped(PLANNERS)
    ),
    **{
        ("visits." + name, method): Probe(
            plan_url(suffix),
            scoped(PLANNERS) | {r: ("N", "N") for r in ALL - PLANNERS},
            data=(lambda t, i: form(version="1", number=case(t, i).number))
            if method == "POST"
            else None,
        )
        for name, method, suffix in [
            ("plan", "GET", ""),
            ("sheet", "GET", "/sheet"),
            ("regenerate", "POST", "/regenerate"),
            ("publish", "POST", "/publish"),
            ("delete", "POST", "/delete"),
            ("optimise", "POST", "/optimise"),
            ("add", "POST", "/add"),
        ]
    },
    ("visits.plan_map_page", "GET"): Probe(
        lambda t, i: f"/visits/plans/{t.plan_in if i else t.plan_out}/map",
        scoped(PLANNERS) | {r: ("N", "N") for r in ALL - PLANNERS},
    ),
    ("visits.stop", "GET"): Probe(
        stop_url(""),
        scoped(PLANNERS) | {r: ("N", "N") for r in ALL - PLANNERS},
    ),
    **{
        ("visits." + name, "POST"): Probe(
            stop_url("/" + name),
            scoped(PLANNERS) | {r: ("N", "N") for r in ALL - PLANNERS},
            data=lambda t, i: form(version="1", direction="up"),
        )
        for name in ("drop", "move")
    },
    # A stop is its assignee's: anyone else's stop is 404, whatever the role.
    ("visits.outcome", "POST"): Probe(
        lambda t, i: f"/visits/stops/{t.stop_in if i else t.stop_out}/outcome",
        scoped(),
        data=lambda t, i: form(client_id=str(uuid.uuid4()), outcome="nobody_home"),
    ),
    ("visits_api.record", "POST"): Probe(
        lambda t, i: f"/api/v1/visits/stops/{t.stop_in if i else t.stop_out}/outcomes",
        scoped(),
        data=lambda t, i: {"client_id": str(uuid.uuid4()), "outcome": "nobody_home"},
        json=True,
    ),
    ("visits_api.today", "GET"): Probe(const("/api/v1/visits/today"), flat()),
    ("visits_api.progress", "GET"): Probe(
        lambda t, i: f"/api/v1/visits/plans/{t.plan_in if i else t.plan_out}/progress",
        scoped(PLANNERS) | {r: ("N", "N") for r in ALL - PLANNERS},
    ),
    # -- JSON API ---------------------------------------------------------------------
    ("api.openapi", "GET"): Probe(const("/api/v1/openapi.json"), public(), anonymous="public"),
    ("api.categories", "GET"): Probe(const("/api/v1/categories"), flat()),
    ("api.areas", "GET"): Probe(
        lambda t, i: f"/api/v1/areas?parent={t.area_in if i else t.area_out}&geometry=false",
        scoped(),
    ),
    ("api.area", "GET"): Probe(
        lambda t, i: f"/api/v1/areas/{t.area_in if i else t.area_out}", scoped()
    ),
    ("api.cases", "GET"): Probe(
        lambda t, i: f"/api/v1/cases?area={t.area_in if i else t.area_out}", flat()
    ),
    ("api.case", "GET"): Probe(lambda t, i: f"/api/v1/cases/{case(t, i).id}", scoped()),
    ("api.create_case", "POST"): Probe(
        const("/api/v1/cases"), flat(API_WRITERS), data=lambda t, i: {}, json=True
    ),
    ("grid_api.locate", "GET"): Probe(const("/api/v1/locate?lon=114.2&lat=35.25"), flat()),
    ("stats_api.stats", "GET"): Probe(
        lambda t, i: f"/api/v1/stats?area={t.area_in if i else t.area_out}", scoped(STATS)
    ),
    ("field_api.session_info", "GET"): Probe(const("/api/v1/field/session"), flat()),
    ("field_api.grids", "GET"): Probe(const("/api/v1/field/grids"), flat(FIELD)),
    ("field_api.create_report", "POST"): Probe(
        const("/api/v1/field/reports"), flat(FIELD), data=lambda t, i: {}, json=True
    ),
    ("field_api.upload_photo", "POST"): Probe(
        lambda t, i: f"/api/v1/field/cases/{case(t, i).id}/photos",
        scoped(FIELD),
        data=lambda t, i: form(client_photo_id=str(uuid.uuid4())),
    ),
    ("field_api.list_photos", "GET"): Probe(
        lambda t, i: f"/api/v1/field/cases/{case(t, i).id}/photos", scoped()
    ),
    ("field_api.file_sweep", "POST"): Probe(
        const("/api/v1/field/sweeps"),
        {**flat(SWEEPERS), GW: ("A", "N"), VI: ("A", "N")},
        data=lambda t, i: {"grid_code": _grid_of(t, i), "zero_report": True},
        json=True,
    ),
    # -- Open311: by API key, never the session ----------------------------------------
    ("open311.discovery", "GET"): Probe(
        const("/open311/v2/discovery.json"), public(), anonymous="public"
    ),
    ("open311.services", "GET"): Probe(
        const("/open311/v2/services.json"), public(), anonymous="public"
    ),
    ("open311.service_definition", "GET"): Probe(
        const("/open311/v2/services/neighbour_family.json"), public(), anonymous="public"
    ),
    ("open311.list_requests", "GET"): Probe(
        lambda t, i: f"/open311/v2/requests.json?api_key={t.token}",
        flat(),
        token=True,
        anonymous="K",
    ),
    # Without a key: the public view of requests filed through Open311 (tests/test_open311.py).
    ("open311.get_request", "GET"): Probe(
        lambda t, i: f"/open311/v2/requests/{case(t, i).number}.json?api_key={t.token}",
        scoped(),
        token=True,
        anonymous="public",
    ),
    ("open311.request_from_token", "GET"): Probe(
        lambda t, i: f"/open311/v2/tokens/{case(t, i).client_id}.json?api_key={t.token}",
        scoped(),
        token=True,
        anonymous="public",
    ),
    ("open311.create_request", "POST"): Probe(
        const("/open311/v2/requests.json"),
        flat(OPEN311_WRITERS),
        data=lambda t, i: {"api_key": t.token},
        token=True,
        anonymous="K",
    ),
}


def _endpoints(app) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_every_endpoint_is_in_the_matrix(app):
    missing = sorted(_endpoints(app) - set(MATRIX))
    assert not missing, f"endpoints without an access declaration in {__name__}.MATRIX: {missing}"
    stale = sorted(set(MATRIX) - _endpoints(app))
    assert not stale, f"declared endpoints that no longer exist: {stale}"


def classify(status: int, body: dict | None) -> str:
    if status == 401:
        return "K"
    if status == 403:
        return "F"
    if status == 404:
        return "N"
    if status < 400 or status in (400, 409, 413, 415, 422):
        code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
        return "csrf" if code == "csrf_failed" else "A"
    return f"?{status}"


def call(client, probe: Probe, t: Targets, inside: bool):
    url = probe.url(t, inside)
    method = "POST" if probe.data is not None else "GET"
    kwargs: dict = {
        "headers": {**CSRF_HEADERS, "Accept": "application/json"} if not probe.token else {}
    }
    if probe.data is not None:
        kwargs["json" if probe.json else "data"] = probe.data(t, inside)
    return client.open(url, method=method, **kwargs), method, url


@pytest.mark.parametrize("role", ROLES)
def test_roles_by_area_by_endpoint(client, targets, role):
    t = targets(role)
    wrong = []
    for (endpoint, method), probe in sorted(MATRIX.items(), key=_destructive_last):
        for inside in (True, False):
            expected = probe.expect[role][0 if inside else 1]
            response, _, url = call(client, probe, t, inside)
            raw = response.get_data()
            response.close()
            body = response.get_json(silent=True)
            got = classify(response.status_code, body)
            if got != expected:
                wrong.append(
                    f"{endpoint} {method} {url} ({'in' if inside else 'out'}): expected {expected}, "
                    f"got {got} {response.status_code} {raw[:160].decode('utf-8', 'replace')!r}"
                )
            if t.marker_out.encode() in raw:
                wrong.append(f"{endpoint} {url}: shows the case outside the area to {role}")
            if endpoint == "auth.logout":
                t = _resign(client, t)
    assert not wrong, f"{len(wrong)} answers differ for {role}:\n" + "\n".join(wrong)


# Probes that, let through, remove their target: after every other probe, stops before plans.
DESTRUCTIVE = ["visits.drop", "visits.delete"]


def _destructive_last(item):
    (endpoint, method), _ = item
    return (DESTRUCTIVE.index(endpoint) + 1 if endpoint in DESTRUCTIVE else 0, endpoint, method)


def _resign(client, t: Targets) -> Targets:
    import time

    from tests.conftest import CSRF

    now = int(time.time())
    with client.session_transaction() as s:
        s.clear()
        s.update(uid=t.user.id, sv=t.user.session_version, at=now, seen=now, csrf=CSRF)
    return t


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda k: f"{k[0]}-{k[1]}")
def test_without_signing_in(client, app, key):
    """Default deny: pages send to the sign-in page, JSON answers 401; only public ones open."""
    probe = MATRIX[key]
    endpoint, method = key
    view = app.view_functions[endpoint]
    fake = Targets("anon", None, "gc_none", _Fake(), _Fake(), "410726", "410726", 1, 1, "x", 1)
    url = probe.url(fake, True).replace("api_key=gc_none", "api_key=")
    body = probe.data(fake, True) if probe.data is not None else None
    if isinstance(body, dict):
        body.pop("api_key", None)
    kwargs = {"json" if probe.json else "data": body} if body is not None else {}
    response = client.open(url, method=method, **kwargs)
    response.close()
    if probe.anonymous == "public":
        assert getattr(view, "public", False) or endpoint == "static", (
            f"{endpoint} answers strangers"
        )
        assert response.status_code < 500
    elif probe.anonymous == "K":
        assert response.status_code == 401
    else:
        assert not getattr(view, "public", False), f"{endpoint} is public but declared private"
        if url.startswith(("/api/", "/open311/")):
            assert response.status_code in (400, 401), response.status_code  # 400: CSRF first
        elif method == "POST":
            assert response.status_code == 400  # no session, no CSRF token: refused first
        else:
            assert response.status_code == 302 and "/login" in response.headers["Location"]


class _Fake:
    id = 1
    client_id = uuid.UUID(int=1)
    grid_code = "410726100001001"
    number = "X1"
    version = 1


SESSION_WRITES = sorted(
    key
    for key, probe in MATRIX.items()
    if key[1] in ("POST", "PUT", "PATCH", "DELETE") and not probe.token
)


def test_every_state_changing_endpoint_is_probed_for_csrf(app):
    """Each POST of the url_map is either checked below or authenticates by API key only."""
    exempt = {
        key
        for key in _endpoints(app)
        if key[1] != "GET" and getattr(app.view_functions[key[0]], "csrf_exempt", False)
    }
    assert all(MATRIX[key].token for key in exempt), "a CSRF-exempt view must not use the session"
    assert set(SESSION_WRITES) | exempt == {k for k in _endpoints(app) if k[1] != "GET"}


@pytest.mark.parametrize("key", SESSION_WRITES, ids=lambda k: k[0])
def test_csrf_is_refused_on_every_session_write(client, targets, session, key):
    """Signed in with a role that may use it, but without the token: 400, and nothing runs."""
    from sqlalchemy import text

    probe = MATRIX[key]
    role = next((r for r in ROLES if probe.expect[r][0] == "A"), ROLES[3])
    t = targets(role)
    before = session.execute(
        text("SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM cases)")
    ).one()
    url = probe.url(t, True)
    body = probe.data(t, True) if probe.data is not None else {}
    if not probe.json:
        body.pop("csrf_token", None)
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        kwargs = {"json" if probe.json else "data": body}
        response = client.post(url, headers={"Accept": "application/json", **headers}, **kwargs)
        assert response.status_code == 400, (key, response.status_code)
        assert response.get_json()["error"]["code"] == "csrf_failed"
        assert "页面已过期" in response.get_json()["error"]["message"]
    after = session.execute(
        text("SELECT (SELECT count(*) FROM audit_log), (SELECT count(*) FROM cases)")
    ).one()
    assert after == before
