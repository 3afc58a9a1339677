"""Every page and map in a real browser, with script payloads in every text people type.

The payloads sit in a case (title, description, petitioner, accused unit, a note on its
timeline), in the name of its grid, in a visit plan's title, a ledger file's name and
the display name of the account that signs in. Every HTML page of the app's url_map
(the access matrix's list, so a new page is visited too) is opened as county staff and
the phone pages as a grid worker: no payload may run (no dialog, ``window.__pwned``
stays undefined), and no page may log a Content-Security-Policy violation.
"""

from __future__ import annotations

import types
import uuid

import pytest
from sqlalchemy import text

from tests.browser import sign_in_page
from tests.test_access_matrix import MATRIX
from webapp.db import database

pytestmark = pytest.mark.browser

PAYLOAD = '"><img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2</script>`${window.__pwned=3}`'
SHORT = "<svg onload=alert(1)>"  # fits the 100-character fields

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
    window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile + ":" + e.lineNumber);
});
"""

# Endpoints that answer data, files or redirects, not pages (their answers are checked elsewhere).
NOT_PAGES = (
    "api.",
    "open311.",
    "field_api.",
    "visits_api.",
    "grid_api.",
    "stats_api.",
    "health.",
    "vendor.",
)
NOT_PAGES_ALSO = {
    "static",
    "auth.login",
    "field.service_worker",
    "field.photo",
    "field.photo_thumb",
    "exchange.export_cases",
    "exchange.export_areas",
    "exchange.import_progress",
    "exchange.import_report",
    "stats.ranking_csv",
    "stats.monthly_report",
    "cases.repeat_candidates",
    "visits.area_outline",
}
FIELD_PAGES = {"field.report", "field.sweeps", "visits.today"}


@pytest.fixture
def hostile(live_app, live_user, demo_areas):
    """Commit the payloads into the live database; put the grid's name back afterwards."""
    grid = demo_areas["grid_worker"]
    planner = live_user("planner")
    with live_app.app_context():
        s = database(live_app).sessions()
        old_name = s.execute(
            text("SELECT name FROM areas WHERE code = :c"), {"c": grid}
        ).scalar_one()
        lon, lat = s.execute(
            text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"),
            {"c": grid},
        ).one()
        from webapp.cases.queries import NewCase, add_event, insert_case
        from webapp.cases.vocab import Channel

        stored = insert_case(
            s,
            NewCase(
                title="T" + PAYLOAD,
                description="D" + PAYLOAD,
                category_id=1,
                channel=Channel.VISIT,
                lon=lon,
                lat=lat,
                petitioner_name="N" + SHORT,
                petitioner_phone="13812345678",
            ),
        )
        s.execute(
            text("UPDATE cases SET accused_unit = :u WHERE id = :i"),
            {"u": "A" + SHORT, "i": stored.id},
        )
        from webapp.cases.models import Case

        case = s.get(Case, stored.id)
        add_event(s, case, "supervise", None, "registered", "registered", "备注" + PAYLOAD)
        s.execute(text("UPDATE areas SET name = :n WHERE code = :c"), {"n": "G" + SHORT, "c": grid})
        plan_id = s.execute(
            text(
                "INSERT INTO visit_plans (title, area_code, date_from, date_to, weights, created_by) "
                "VALUES (:t, :a, current_date, current_date + 3, '{}'::jsonb, :u) RETURNING id"
            ),
            {"t": "P" + SHORT, "a": grid[:9], "u": planner.id},
        ).scalar_one()
        import_id = s.execute(
            text(
                "INSERT INTO ledger_imports (user_id, filename, sha256, state, error) "
                "VALUES (:u, :f, :h, 'failed', :e) RETURNING id"
            ),
            # Uploaded by an account of the county: only its county's desk sees an import.
            {"u": planner.id, "f": "L" + PAYLOAD[:200] + ".csv", "h": "0" * 64, "e": "E" + PAYLOAD},
        ).scalar_one()
        s.commit()
        number = case.number
        s.close()
    yield types.SimpleNamespace(
        case_in=types.SimpleNamespace(
            id=stored.id, number=number, version=1, client_id=uuid.uuid4(), grid_code=grid
        ),
        case_out=types.SimpleNamespace(
            id=stored.id, number=number, version=1, client_id=uuid.uuid4(), grid_code=grid
        ),
        area_in=grid[:9],
        area_out=grid[:9],
        plan_in=plan_id,
        plan_out=plan_id,
        stop_in=0,
        stop_out=0,
        photo_in=0,
        photo_out=0,
        import_id=import_id,
        token="",
        role="county_staff",
        marker_out="",
    )
    with live_app.app_context():
        s = database(live_app).sessions()
        s.execute(text("UPDATE areas SET name = :n WHERE code = :c"), {"n": old_name, "c": grid})
        s.commit()
        s.close()


def _pages(role: str) -> list[str]:
    keys = sorted(
        endpoint
        for (endpoint, method), _ in MATRIX.items()
        if method == "GET" and not endpoint.startswith(NOT_PAGES) and endpoint not in NOT_PAGES_ALSO
    )
    return [k for k in keys if (k in FIELD_PAGES) == (role == "grid_worker")]


def _visit(page, url: str, problems: list, dialogs: list) -> None:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    status = response.status if response else 0
    if status >= 500:
        problems.append(f"{url}: {status}")
    frames = [page.main_frame, *page.main_frame.child_frames]
    for frame in frames:
        try:
            csp = frame.evaluate("() => window.__csp || []")
            pwned = frame.evaluate("() => window.__pwned")
        except Exception as exc:  # noqa: BLE001 - a frame that went away
            problems.append(f"{url}: frame not readable: {exc}")
            continue
        if csp:
            problems.append(f"{url} ({frame.url}): CSP violations {csp}")
        if pwned is not None:
            problems.append(f"{url} ({frame.url}): a payload ran (window.__pwned = {pwned})")
    if dialogs:
        problems.append(f"{url}: dialogs {dialogs}")
        dialogs.clear()


@pytest.mark.parametrize("role", ["county_staff", "grid_worker"])
def test_no_payload_runs_and_no_page_breaks_its_csp(page, live_user, hostile, role, artifacts):
    user = live_user(role, display_name="U" + SHORT)
    page.context.add_init_script(WATCH)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in_page(page, user)
    problems: list[str] = []
    visited = []
    for endpoint in _pages(role):
        url = MATRIX[(endpoint, "GET")].url(hostile, True)
        _visit(page, url, problems, dialogs)
        visited.append(url)
    if role == "county_staff":
        # The maps of every kind, and the case list filtered to the hostile case.
        for kind in ("heat", "choropleth", "hotspots", "cases"):
            _visit(page, f"/maps/?map={kind}&area={hostile.area_in}", problems, dialogs)
        _visit(page, f"/cases/?q={hostile.case_in.number}", problems, dialogs)
        page.goto(f"/cases/{hostile.case_in.id}")
        assert "T" + PAYLOAD in page.locator("h1").inner_text()  # shown as the text it is
        page.screenshot(path=str(artifacts / "injection-case-file.png"), full_page=True)
    assert len(visited) >= (15 if role == "county_staff" else 3)
    csp_console = [m for m in page.console_errors if "Content Security Policy" in m]
    assert not problems and not csp_console, "\n".join(problems + csp_console)
    assert page.blocked == []
