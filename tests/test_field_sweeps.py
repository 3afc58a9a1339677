"""Sweep reports (排查): one per grid and period, zero reports, coverage of an area."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from tests.conftest import CSRF, CSRF_HEADERS
from tests.field_fixtures import other_grid, report_payload
from webapp.field.models import SweepPeriod
from webapp.field.periods import Period, period_of, recent_periods, sweep_period_kind

# -- periods (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "kind", "start"),
    [
        pytest.param(
            datetime(2026, 3, 31, 15, 59, tzinfo=UTC),
            "monthly",
            date(2026, 3, 1),
            id="month-last-minute",
        ),
        pytest.param(
            datetime(2026, 3, 31, 16, 0, tzinfo=UTC),
            "monthly",
            date(2026, 4, 1),
            id="month-rolls-at-local-midnight",
        ),
        pytest.param(
            datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "monthly", date(2027, 1, 1), id="new-year"
        ),
        pytest.param(
            datetime(2026, 5, 1, 15, 59, tzinfo=UTC),
            "daily",
            date(2026, 5, 1),
            id="day-last-minute",
        ),
        pytest.param(
            datetime(2026, 5, 1, 16, 0, tzinfo=UTC), "daily", date(2026, 5, 2), id="day-rolls"
        ),
        pytest.param(datetime(2026, 5, 1, 10, 0), "daily", date(2026, 5, 1), id="naive-is-utc"),
    ],
)
def test_period_of(moment, kind, start):
    assert period_of(kind, moment) == Period(SweepPeriod(kind), start)


def test_period_arithmetic():
    jan = Period(SweepPeriod.MONTHLY, date(2026, 1, 1))
    assert jan.end == date(2026, 2, 1) and jan.previous() == Period(
        SweepPeriod.MONTHLY, date(2025, 12, 1)
    )
    assert [p.start for p in recent_periods(jan, 3)] == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
    ]
    day = Period(SweepPeriod.DAILY, date(2026, 3, 1))
    assert day.previous().start == date(2026, 2, 28) and day.end == date(2026, 3, 2)
    assert jan.label == "2026年1月" and day.label == "2026年3月1日"
    start, end = jan.bounds()
    assert (
        start.isoformat() == "2026-01-01T00:00:00+08:00"
        and end.isoformat() == "2026-02-01T00:00:00+08:00"
    )


def test_period_kind_is_set_per_county():
    cfg = {"SWEEP_PERIOD": "monthly", "SWEEP_PERIODS": {"410726": "daily"}}
    assert sweep_period_kind(cfg, "410726") is SweepPeriod.DAILY
    assert sweep_period_kind(cfg, "430121") is SweepPeriod.MONTHLY


# -- filing ---------------------------------------------------------------------------


def file_form(client, case_ids=(), zero=False, note="", grid_code=None):
    data = {"csrf_token": CSRF, "case_id": [str(i) for i in case_ids], "note": note}
    if zero:
        data["zero_report"] = "1"
    if grid_code:
        data["grid_code"] = grid_code
    return client.post("/field/sweeps", data=data)


def sweeps_of(session, grid_code):
    return session.execute(
        text(
            "SELECT id, zero_report, revision, note, period_kind, period_start "
            "FROM sweeps WHERE grid_code = :g"
        ),
        {"g": grid_code},
    ).all()


def report_case(client, session, grid_code, **over) -> dict:
    r = client.post(
        "/api/v1/field/reports",
        json=report_payload(session, grid_code, **over),
        headers=CSRF_HEADERS,
    )
    assert r.status_code == 201, r.get_json()
    return r.get_json()["report"]


def test_a_zero_report_is_filed_once_per_period(client, login, session, demo_areas):
    login("grid_worker")
    grid = demo_areas["grid_worker"]
    page = client.get("/field/sweeps").get_data(as_text=True)
    assert "本期尚未报送" in page
    r = file_form(client, zero=True, note="全网格走访，未发现矛盾纠纷")
    assert r.status_code == 302
    rows = sweeps_of(session, grid)
    assert len(rows) == 1 and rows[0].zero_report and rows[0].revision == 1
    # sending the same again is the same sweep, unchanged
    assert file_form(client, zero=True, note="全网格走访，未发现矛盾纠纷").status_code == 302
    rows = sweeps_of(session, grid)
    assert len(rows) == 1 and rows[0].revision == 1
    page = client.get("/field/sweeps").get_data(as_text=True)
    assert "本期已报送（零报告）" in page and "排查已报送过，内容未变" in page


def test_a_sweep_lists_the_cases_found_and_can_be_amended(client, login, session, demo_areas):
    login("grid_worker")
    grid = demo_areas["grid_worker"]
    first = report_case(client, session, grid)
    second = report_case(
        client, session, grid, description="工地拖欠农民工工资，约二十人聚集。", people_count=20
    )
    page = client.get("/field/sweeps").get_data(as_text=True)
    assert first["number"] in page and second["number"] in page
    # the worker's own reports of the period are offered, already ticked
    assert re.search(rf'value="{first["case_id"]}" checked', page)
    assert file_form(client, case_ids=[first["case_id"]]).status_code == 302
    sweep = sweeps_of(session, grid)[0]
    listed = (
        session.execute(
            text("SELECT case_id FROM sweep_cases WHERE sweep_id = :s"), {"s": sweep.id}
        )
        .scalars()
        .all()
    )
    assert listed == [first["case_id"]] and not sweep.zero_report
    assert file_form(client, case_ids=[first["case_id"], second["case_id"]]).status_code == 302
    rows = sweeps_of(session, grid)
    assert len(rows) == 1 and rows[0].revision == 2
    listed = (
        session.execute(
            text("SELECT case_id FROM sweep_cases WHERE sweep_id = :s ORDER BY case_id"),
            {"s": sweep.id},
        )
        .scalars()
        .all()
    )
    assert listed == sorted([first["case_id"], second["case_id"]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({}, "请选择本期排查发现的案件", id="neither-cases-nor-zero"),
        pytest.param(
            {"zero": True, "case_ids": ["CASE"]}, "零报告不能同时列出案件", id="zero-with-cases"
        ),
        pytest.param({"note": "x" * 2001}, "备注过长", id="note-too-long"),
    ],
)
def test_an_inconsistent_sweep_is_refused_and_nothing_stored(
    client, login, session, demo_areas, kwargs, message
):
    login("grid_worker")
    if kwargs.get("case_ids") == ["CASE"]:
        kwargs["case_ids"] = [report_case(client, session, demo_areas["grid_worker"])["case_id"]]
    if "note" in kwargs:
        kwargs["zero"] = True
    r = file_form(client, **kwargs)
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert sweeps_of(session, demo_areas["grid_worker"]) == []


def test_a_sweep_cannot_list_cases_it_did_not_find(client, login, session, demo_areas):
    login("grid_worker")
    grid = demo_areas["grid_worker"]
    # a case of another township, not reported by this worker, and not a field report
    other = session.execute(
        text("SELECT id FROM cases WHERE township_code <> :t LIMIT 1"), {"t": grid[:9]}
    ).scalar_one()
    r = file_form(client, case_ids=[other])
    assert r.status_code == 400 and "不在本期本网格的可选范围内" in r.get_data(as_text=True)
    r = client.post("/api/v1/field/sweeps", json={"case_ids": [other]}, headers=CSRF_HEADERS)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "sweep_case_not_allowed"
    assert sweeps_of(session, grid) == []


def test_the_json_api_files_sweeps_idempotently(client, login, session, demo_areas):
    login("grid_worker")
    answers = [
        client.post("/api/v1/field/sweeps", json={"zero_report": True}, headers=CSRF_HEADERS)
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 200, 200]
    assert len({a.get_json()["sweep"]["id"] for a in answers}) == 1
    assert answers[0].get_json()["sweep"]["period"]["kind"] == "monthly"
    r = client.post("/api/v1/field/sweeps", json={"zero_report": "yes"}, headers=CSRF_HEADERS)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_type"


def test_a_daily_county_files_daily(app, client, login, session, demo_areas, monkeypatch):
    monkeypatch.setitem(app.config, "SWEEP_PERIODS", {"410726": "daily"})
    login("grid_worker")
    r = client.post("/api/v1/field/sweeps", json={"zero_report": True}, headers=CSRF_HEADERS)
    assert r.get_json()["sweep"]["period"]["kind"] == "daily"
    today = period_of("daily", datetime.now(UTC)).start
    assert r.get_json()["sweep"]["period"]["start"] == today.isoformat()


def test_a_village_informant_files_for_each_grid_of_the_village(client, login, session, demo_areas):
    login("village_informant")
    grids = (
        session.execute(
            text("SELECT code FROM areas WHERE level = 'grid' AND village_code = :v ORDER BY code"),
            {"v": demo_areas["village_informant"]},
        )
        .scalars()
        .all()
    )
    assert len(grids) >= 2
    assert file_form(client, zero=True, grid_code=grids[1]).status_code == 302
    assert len(sweeps_of(session, grids[1])) == 1 and sweeps_of(session, grids[0]) == []
    assert file_form(client, zero=True, grid_code=other_grid(session, grids[0])).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [("township_leader", 302), ("county_staff", 302), ("leader_in_charge", 403)]
)
def test_others_are_sent_to_coverage(client, login, role, status):
    login(role)
    r = client.get("/field/sweeps")
    assert r.status_code == status
    if status == 302:
        assert r.headers["Location"] == "/field/coverage"


# -- coverage -------------------------------------------------------------------------


def test_coverage_lists_the_grids_that_did_not_report(client, login, session, demo_areas):
    grid = demo_areas["grid_worker"]
    village = session.execute(
        text(
            "SELECT code FROM areas WHERE level = 'grid' AND village_code = :v AND code <> :g "
            "ORDER BY code LIMIT 1"
        ),
        {"v": grid[:12], "g": grid},
    ).scalar_one()
    login("grid_worker")
    assert file_form(client, zero=True).status_code == 302  # a zero report counts as reported
    login("grid_worker", area=village)
    case = report_case(client, session, village)
    assert file_form(client, case_ids=[case["case_id"]]).status_code == 302
    login("township_leader")
    r = client.get("/field/coverage")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    total = session.execute(
        text("SELECT count(*) FROM areas WHERE level = 'grid' AND township_code = :t"),
        {"t": grid[:9]},
    ).scalar_one()
    assert (
        f'共 {total} 个网格，已报送 <strong class="field-ok">2</strong> 个（其中零报告 1 个）'
        in html
    )
    assert f'未报送 <strong class="field-missing">{total - 2}</strong> 个' in html
    missing = set(re.findall(r'<li data-grid="(\d+)">', html))
    assert grid not in missing and village not in missing and len(missing) == total - 2
    rows = dict(re.findall(r'<tr data-grid="(\d+)" data-reported="(yes|no)">', html))
    assert rows[grid] == "yes" and rows[village] == "yes" and list(rows.values()).count("yes") == 2
    assert "零报告" in html


def test_coverage_history_counts_each_period(client, login, session, demo_areas, make_user):
    grid = demo_areas["grid_worker"]
    worker = make_user("grid_worker")
    gid = session.execute(text("SELECT id FROM areas WHERE code = :c"), {"c": grid}).scalar_one()
    current = period_of("monthly", datetime.now(UTC))
    previous = current.previous()
    session.execute(
        text(
            "INSERT INTO sweeps (grid_id, grid_code, village_code, township_code, county_code, "
            "period_kind, period_start, zero_report, reporter_id) "
            "VALUES (:g, :c, :v, :t, '410726', 'monthly', :p, true, :u)"
        ),
        {"g": gid, "c": grid, "v": grid[:12], "t": grid[:9], "p": previous.start, "u": worker.id},
    )
    login("county_staff")
    html = client.get("/field/coverage").get_data(as_text=True)
    table = html[html.index('id="coverage-history"') :]
    row = re.search(rf"area={grid[:9]}[^>]*>[^<]+</a></td>(.*?)</tr>", table, re.S).group(1)
    cells = re.findall(r">(\d+)/(\d+)<", row)
    assert len(cells) == 6
    assert int(cells[-2][0]) == 1 and int(cells[-1][0]) == 0  # last period: 1 grid; this one: none
    # the previous period can be opened, and shows that grid as reported
    html = client.get(
        f"/field/coverage?area={grid[:9]}&period={previous.start.isoformat()}"
    ).get_data(as_text=True)
    assert re.search(rf'<tr data-grid="{grid}" data-reported="yes">', html)
    assert client.get("/field/coverage?period=2999-01-01").status_code == 400
    assert client.get("/field/coverage?period=garbage").status_code == 400


@pytest.mark.parametrize(
    ("role", "area", "status"),
    [
        ("township_leader", "own", 200),
        ("township_leader", "county", 404),
        ("township_leader", "other-township", 404),
        ("county_staff", "other-township", 200),
        ("village_informant", "own", 200),
        ("grid_worker", "own", 403),
        ("leader_in_charge", "own", 403),
    ],
)
def test_coverage_is_scoped_to_the_area(client, login, session, demo_areas, role, area, status):
    login(role)
    code = {
        "own": demo_areas[role],
        "county": "410726",
        "other-township": other_grid(session, demo_areas["grid_worker"])[:9],
    }[area]
    assert client.get(f"/field/coverage?area={code}").status_code == status


# -- user text on these pages is shown escaped ----------------------------------------

PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_payloads_in_text_fields_are_escaped_on_the_sweep_page(client, login, session, demo_areas):
    login("grid_worker")
    grid = demo_areas["grid_worker"]
    report_case(client, session, grid, title=PAYLOAD, description=PAYLOAD)
    r = file_form(client, zero=True, note=PAYLOAD)
    assert r.status_code == 302
    html = client.get("/field/sweeps").get_data(as_text=True)
    assert PAYLOAD not in html and "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # the same payload as a grid's name, on the coverage page
    session.execute(text("UPDATE areas SET name = :n WHERE code = :c"), {"n": PAYLOAD, "c": grid})
    login("township_leader")
    html = client.get("/field/coverage").get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
