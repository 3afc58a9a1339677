"""Injection: script in every text field, SQL metacharacters in every filter, formulas in exports.

Pages escape what people typed (tests/test_case_handling.py checks every field of the
case file; tests/test_injection_browser.py runs every page and map in a browser). Here:
the exports carry the text inert (CSV and XLSX cells never start a formula, GeoJSON
and GeoPackage keep the exact text as data, never served as HTML), and every filter of
every list, map, figure and export takes SQL metacharacters as plain values (a clear
400/404 or an empty answer, never a 500, never more rows).
"""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from tests.conftest import CSRF_HEADERS
from tests.exchange_fixtures import *  # noqa: F403
from tests.security_fixtures import *  # noqa: F403
from tests.test_access_matrix import MATRIX

SCRIPT = '"><img src=x onerror=__pwned=1><script>__pwned=2</script>`${__pwned=3}`'
FORMULAS = ['=HYPERLINK("http://x.cn")', "+cmd|' /C calc'!A0", "-2+3*cmd", "@SUM(A1:A9)", "\t=1+1"]
SQL = [
    "' OR '1'='1",
    "1; DROP TABLE cases; --",
    "%_\\",
    "410726%",
    "') UNION SELECT petitioner_id_number FROM cases--",
]


@pytest.fixture
def payload_case(session, make_case, demo_areas):
    """A case whose every text field holds a formula followed by a script payload."""
    case = make_case(
        demo_areas["grid_worker"],
        title=FORMULAS[0] + SCRIPT,
        description=FORMULAS[1] + SCRIPT,
        petitioner_name=FORMULAS[3] + "张",
        petitioner_phone="13812345678",
        accused_unit=FORMULAS[2] + SCRIPT,
    )
    return case


def _formula_like(cell: str) -> bool:
    if not cell or cell[0] not in "=+-@\t\r":
        return False
    try:
        float(cell)
        return False  # a negative number is a number
    except ValueError:
        return True


@pytest.mark.parametrize("role", ["county_staff", "planner"])
def test_case_exports_carry_the_text_inert(client, login, payload_case, role, demo_areas):
    login(role)
    area = demo_areas["grid_worker"]
    r = client.get(f"/exchange/export/cases.csv?area={area}")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert all(not _formula_like(cell) for row in rows for cell in row), (
        "a CSV cell starts a formula"
    )
    mine = [row for row in rows if payload_case.number in row]
    assert mine and any(cell == "'" + FORMULAS[0] + SCRIPT for cell in mine[0])

    r = client.get(f"/exchange/export/cases.geojson?area={area}")
    assert (
        r.mimetype in ("application/geo+json", "application/json")
        and r.headers["X-Content-Type-Options"] == "nosniff"
    )
    assert "attachment" in r.headers["Content-Disposition"]
    feature = next(
        f
        for f in json.loads(r.get_data())["features"]
        if f["properties"].get("number") == payload_case.number
    )
    assert FORMULAS[0] + SCRIPT in feature["properties"].values()  # the exact text, as data

    r = client.get(f"/exchange/export/cases.gpkg?area={area}")
    import tempfile
    from pathlib import Path

    import pyogrio

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cases.gpkg"
        path.write_bytes(r.get_data())
        _, _, _, columns = pyogrio.raw.read(path)
    values = {str(v) for col in columns for v in col}
    assert any(FORMULAS[0] + SCRIPT in v for v in values), "the GeoPackage keeps the exact text"


def test_statistics_exports_carry_area_names_inert(client, login, session, demo_areas):
    """Area names come from boundary files: in the ranking CSV and the monthly workbook they stay text."""
    township = demo_areas["township_leader"]
    session.execute(
        text("UPDATE areas SET name = :n WHERE code = :c"),
        {"n": FORMULAS[0] + SCRIPT, "c": township},
    )
    login("county_staff")
    r = client.get("/stats/ranking.csv")
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert all(not _formula_like(cell) for row in rows for cell in row)
    assert any("'" + FORMULAS[0] + SCRIPT in row for row in rows)
    r = client.get("/stats/monthly.xlsx")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.get_data()))
    found = False
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (
                    f"{ws.title}!{cell.coordinate} is a formula: {cell.value!r}"
                )
                if isinstance(cell.value, str) and SCRIPT in cell.value:
                    found = True
                    assert not _formula_like(cell.value)
    assert found, "the area's name is in the workbook"


# Every filter of every list, map, figure and export, by endpoint.
FILTERS = {
    "/cases/": ["q", "area", "category", "status", "channel", "since", "until", "due", "page"],
    "/cases/due": ["area"],
    "/cases/repeat-candidates": ["phone", "id_number", "category_id", "lon", "lat", "village_code"],
    "/api/v1/cases": [
        "area",
        "bbox",
        "from",
        "to",
        "category",
        "status",
        "channel",
        "cursor",
        "limit",
        "format",
    ],
    "/api/v1/areas": ["parent", "level", "tolerance", "geometry"],
    "/api/v1/stats": [
        "area",
        "level",
        "by",
        "from",
        "to",
        "as_of",
        "category",
        "channel",
        "backlog_years",
    ],
    "/stats": [
        "area",
        "level",
        "by",
        "from",
        "to",
        "as_of",
        "category",
        "channel",
        "backlog_years",
    ],
    "/stats/ranking.csv": ["area", "level", "from", "to", "category", "channel"],
    "/stats/warning": ["area"],
    "/maps/": [
        "map",
        "area",
        "from",
        "to",
        "category",
        "channel",
        "status",
        "band",
        "weight",
        "figure",
        "level",
    ],
    "/maps/frame": [
        "map",
        "area",
        "from",
        "to",
        "category",
        "channel",
        "status",
        "band",
        "hs_level",
        "nb",
        "rate",
    ],
    "/field/coverage": ["area", "period"],
    "/field/sweeps": ["grid_code"],
    "/exchange/export/cases.csv": ["area", "bbox", "from", "to", "category", "status", "channel"],
    "/exchange/export/areas.csv": ["level"],
    "/visits/new": ["area"],
    "/visits/today": ["day"],
    "/api/v1/visits/today": ["day"],
    "/api/v1/locate": ["lon", "lat"],
}


@pytest.mark.parametrize("path", sorted(FILTERS))
def test_sql_metacharacters_in_every_filter(client, login, session, path):
    login("county_staff")
    count = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    for name in FILTERS[path]:
        for value in SQL:
            r = client.get(path, query_string={name: value}, headers={"Accept": "application/json"})
            body = r.get_data(as_text=True)
            r.close()
            assert r.status_code < 500, f"{path}?{name}={value!r}: {r.status_code} {body[:200]}"
            assert "syntax error" not in body and "psycopg2" not in body
            # A filter value never widens the answer to what a bare filter does not show.
            assert "4107261990010112" not in body  # the demo petitioners' ID numbers never leak
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == count


def test_open311_filters_take_sql_as_values(client, token_for):
    _, token = token_for("county_staff")
    for name in (
        "service_request_id",
        "service_code",
        "start_date",
        "end_date",
        "status",
        "page",
        "page_size",
    ):
        for value in SQL:
            r = client.get(
                "/open311/v2/requests.json", query_string={"api_key": token, name: value}
            )
            assert r.status_code < 500, (name, value, r.get_data(as_text=True)[:200])


# Markup and template code as people might type it: it must reach every page as text.
MARKUP = '"><img src=x onerror=__pwned=1></script><script>__pwned=2</script>`${__pwned=3}`'
TEMPLATE = '{{ "SS" ~ "TI" }}{% if 1 %}IF{{ "RAN" }}{% endif %}'
SHORT_MARKUP = "<svg onload=__pwned=4>"  # fits the 60- and 100-character fields
RAW_MARKUP = (b"<img src=x", b"<script>__pwned", b"<svg onload")
# The same inside a map's script data (JSON with ``<`` escaped), where Leaflet and the
# maps' own code put it into HTML as it is: there it must arrive as entities.
SCRIPT_MARKUP = (b"\\u003cimg src=x", b"\\u003cscript\\u003e__pwned", b"\\u003csvg onload")


@pytest.mark.parametrize("role", ["county_staff", "township_leader", "grid_worker", "planner"])
def test_no_typed_text_reaches_a_page_as_markup(client, session, targets, role):
    """Every text people type, in every page of the url_map and every map a role opens.

    The browser test (tests/test_injection_browser.py) runs the pages with some of these
    texts; here, without a browser, more of them (a sweep's note, a visit's note, the
    unit a case is assigned to, a category, a plan's start point and unassigned reason)
    for four roles: no page carries them as markup, no map's JavaScript as code, and no
    template (branca renders folium's output twice) evaluates them.
    """
    t = targets(role)
    case = t.case_in
    long, short = "T" + MARKUP + TEMPLATE, "S" + SHORT_MARKUP + TEMPLATE[:20]
    session.execute(
        text(
            "UPDATE cases SET title = :l, description = :l, petitioner_name = :s, "
            "accused_unit = :s, assigned_unit = :s WHERE id = :i"
        ),
        {"l": long, "s": short, "i": case.id},
    )
    from webapp.cases.models import Case
    from webapp.cases.queries import add_event

    stored = session.get(Case, case.id)
    session.refresh(stored)
    add_event(session, stored, "supervise", t.user, "registered", "registered", long)
    session.execute(
        text("UPDATE areas SET name = :s WHERE code IN (:a, :g, :v)"),
        {"s": short, "a": t.area_in, "g": case.grid_code, "v": case.grid_code[:12]},
    )
    session.execute(
        text("UPDATE users SET display_name = :s WHERE id = :i"), {"s": short, "i": t.user.id}
    )
    session.execute(
        text("UPDATE categories SET name = :s, description = :s WHERE id = :c"),
        {"s": "C" + SHORT_MARKUP, "c": stored.category_id},
    )
    session.execute(
        text("UPDATE visit_plans SET title = :s WHERE id = :p"), {"s": short, "p": t.plan_in}
    )
    session.execute(
        text("UPDATE visit_plan_people SET start_label = :s WHERE plan_id = :p"),
        {"s": short, "p": t.plan_in},
    )
    session.execute(
        text("UPDATE visit_stops SET unassigned_reason = :s WHERE plan_id = :p"),
        {"s": short, "p": t.plan_out},
    )
    session.execute(
        text("UPDATE ledger_imports SET filename = :s, error = :l WHERE id = :i"),
        {"s": short, "l": long, "i": t.import_id},
    )
    session.execute(
        text(
            "INSERT INTO sweeps (grid_id, grid_code, village_code, township_code, county_code, "
            "period_kind, period_start, zero_report, note, reporter_id) "
            "SELECT id, code, left(code, 12), left(code, 9), left(code, 6), 'monthly', "
            "date_trunc('month', now())::date, true, :l, :u FROM areas WHERE code = :g"
        ),
        {"l": long, "u": t.user.id, "g": case.grid_code},
    )
    r = client.post(
        f"/api/v1/visits/stops/{t.stop_in}/outcomes",
        json={"client_id": str(uuid.uuid4()), "outcome": "done", "note": long},
        headers=CSRF_HEADERS,
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    urls = {probe.url(t, True) for (_, method), probe in MATRIX.items() if method == "GET"}
    for kind in ("heat", "choropleth", "hotspots", "cases"):
        for area in (t.area_in, case.grid_code[:12], case.grid_code[:9]):
            urls.add(f"/maps/frame?map={kind}&area={area}")
    grid, village = case.grid_code, case.grid_code[:12]
    urls |= {
        f"/visits/plans/{t.plan_in}/map",
        f"/visits/plans/{t.plan_out}",
        f"/cases/?q={stored.number}",
        f"/field/sweeps?grid_code={grid}",
        f"/field/coverage?area={village}",
        f"/areas/{grid}",
        f"/areas/{village}",
    }
    wrong = []
    for url in sorted(urls):
        r = client.get(url, headers={"Accept": "text/html"})
        body = r.get_data()
        r.close()
        assert r.status_code < 500, (url, r.status_code)
        if b"SSTI" in body or b"IFRAN" in body:
            wrong.append(f"{url}: a template ran the text")
        if not r.mimetype.startswith("text/html"):
            continue
        frame = url.startswith(("/maps/frame", f"/visits/plans/{t.plan_in}/map"))
        for raw in RAW_MARKUP + (SCRIPT_MARKUP if frame else ()):
            at = body.find(raw)
            if at >= 0:
                wrong.append(f"{url}: {body[max(0, at - 120) : at + 40]!r}")
        if (
            url.startswith(("/maps/frame", f"/visits/plans/{t.plan_in}/map"))
            and b"${__pwned" in body
        ):
            wrong.append(f"{url}: the text reaches a JavaScript template literal as code")
    assert not wrong, "\n".join(wrong)
