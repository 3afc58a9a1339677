"""Exports: the monthly report workbook and ranking CSV, opened back and checked cell by cell."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from tests.stats_fixtures import (
    B1,
    COUNTY,
    TOWN_A,
    TOWN_B,
    stats_county,  # noqa: F401  (a fixture)
)
from webapp.auth.models import AuditEntry
from webapp.stats import figures as F
from webapp.stats.presenting import column_title

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAYLOADS = ['=HYPERLINK("http://evil.example","点我")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)"]


def workbook(client, **params):
    r = client.get("/stats/monthly.xlsx", query_string=params)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert r.mimetype == XLSX and "attachment" in r.headers["Content-Disposition"]
    return load_workbook(io.BytesIO(r.data))


def table(ws):
    """(header row, {column title: column}, data rows, totals row) of a sheet's table."""
    for row in ws.iter_rows(min_row=1, max_row=10):
        if row[0].value in ("代码", "类别代码"):
            header = row[0].row
            break
    else:  # pragma: no cover
        raise AssertionError("no table")
    titles = {c.value: c.column for c in ws[header] if c.value}
    rows = []
    r = header + 1
    while ws.cell(row=r, column=2).value is not None:
        rows.append(r)
        r += 1
    return header, titles, rows[:-1], rows[-1]


def check_totals(ws) -> int:
    """Every count column adds up to the totals row; returns the number of cells checked."""
    _, titles, rows, total = table(ws)
    assert str(ws.cell(row=total, column=2).value).startswith("合计")
    checked = 0
    for f in F.ADDITIVE:
        col = titles.get(column_title(f.key))
        if col is None:
            continue
        values = [ws.cell(row=r, column=col).value for r in rows]
        expected = ws.cell(row=total, column=col).value
        if expected is None:
            assert all(v is None for v in values)
            continue
        assert sum(values) == expected, (ws.title, f.key)
        checked += 1
    return checked


@pytest.mark.usefixtures("stats_county")
def test_monthly_report_of_the_hand_made_county(client, login, session):
    user = login("county_staff", area=COUNTY)
    wb = workbook(client, area=COUNTY, month="2025-12", as_of="2025-12-31")
    assert wb.sheetnames == ["汇总", "甲镇", "乙乡", "类别同比", "超期和积案", "指标说明"]
    ws = wb["汇总"]
    assert ws["A1"].value == "统计测试县信访工作月报（2025年12月）"
    _, titles, rows, total = table(ws)
    assert [ws.cell(row=r, column=1).value for r in rows] == [TOWN_A, TOWN_B]
    cases = titles[column_title("cases")]
    # December 2025: B1-3 (20 Dec) and B1-7 (31 Dec, 23:30) in township B.
    assert [ws.cell(row=r, column=cases).value for r in rows + [total]] == [0, 2, 2]
    overdue = titles[column_title("overdue")]
    assert ws.cell(row=total, column=overdue).value == 2
    rate = ws.cell(row=total, column=titles[column_title("on_time_rate")])
    assert rate.value == 1.0 and rate.number_format == "0.0%"  # B1-3 concluded on time
    assert check_totals(ws) == len(F.ADDITIVE)
    town = wb["乙乡"]
    _, titles, rows, total = table(town)
    assert [town.cell(row=r, column=1).value for r in rows] == [B1]
    assert town.cell(row=total, column=titles[column_title("cases")]).value == 2
    assert check_totals(town) == len(F.ADDITIVE)
    # Overdue and backlog cases, masked: A1-5 (backlog and overdue) and A1-3 (overdue).
    cs = wb["超期和积案"]
    header = next(r[0].row for r in cs.iter_rows(min_row=1, max_row=10) if r[0].value == "类型")
    listed = {
        cs.cell(row=r, column=3).value: cs.cell(row=r, column=1).value
        for r in range(header + 1, header + 3)
    }
    assert listed == {"A1-5": "积案、超期", "A1-3": "超期"}
    assert cs.cell(row=header + 3, column=1).value is None
    everything = [
        c.value for sheet in wb for row in sheet.iter_rows() for c in row if c.value is not None
    ]
    assert (
        "张**" in everything and "138****5678" in everything and "4107**********1234" in everything
    )
    assert not any(
        isinstance(v, str) and ("13812345678" in v or "张三丰" in v or "199001011" in v)
        for v in everything
    )
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.user_id == user.id, AuditEntry.action == "export")
    ).one()
    assert entry.detail["kind"] == "monthly_report" and entry.detail["month"] == "2025-12"


def test_monthly_report_of_the_demo_county_adds_up(client, login):
    login("county_staff")
    wb = workbook(client, month="2026-10")
    assert len(wb.sheetnames) == 12 + 4
    checked = sum(check_totals(wb[name]) for name in wb.sheetnames[:13])
    assert checked == 13 * len(F.ADDITIVE)
    # The summary's township rows are the townships' sheets' totals rows.
    ws = wb["汇总"]
    _, titles, rows, _ = table(ws)
    col = titles[column_title("cases")]
    for r in rows:
        name = ws.cell(row=r, column=2).value
        sheet = wb[name]
        _, t2, _, total = table(sheet)
        assert (
            sheet.cell(row=total, column=t2[column_title("cases")]).value
            == ws.cell(row=r, column=col).value
        )
    # The category sheet adds up to the county too.
    cats = wb["类别同比"]
    _, titles, rows, total = table(cats)
    for key in ("cases", "cases_last_year", "resolved", "repeats", "collective"):
        c = titles[column_title(key)]
        assert (
            sum(cats.cell(row=r, column=c).value for r in rows)
            == cats.cell(row=total, column=c).value
        )


@pytest.mark.usefixtures("stats_county")
def test_township_leaders_get_their_townships_report(client, login):
    login("township_leader", area=TOWN_B)
    wb = workbook(client, month="2025-12", as_of="2025-12-31")
    assert wb.sheetnames == ["汇总", "类别同比", "超期和积案", "指标说明"]
    assert wb["汇总"]["A1"].value == "乙乡信访工作月报（2025年12月）"
    assert check_totals(wb["汇总"]) == len(F.ADDITIVE)
    assert client.get("/stats/monthly.xlsx", query_string={"area": COUNTY}).status_code == 404


@pytest.mark.parametrize(
    "params, code",
    [
        ({"month": "2025-13"}, "invalid_month"),
        ({"month": "last"}, "invalid_month"),
        ({"area": B1}, "invalid_report_area"),
        ({"format": "pdf"}, "unknown_parameter"),
    ],
)
@pytest.mark.usefixtures("stats_county")
def test_monthly_report_parameters(client, login, params, code):
    login("county_staff", area=COUNTY)
    r = client.get(
        "/stats/monthly.xlsx",
        query_string={"area": COUNTY, **params},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == code


@pytest.mark.usefixtures("stats_county")
def test_formula_payloads_are_neutralised(client, login, session):
    login("county_staff", area=COUNTY)
    session.execute(
        text("UPDATE areas SET name = :n WHERE code = :c"), {"n": PAYLOADS[0], "c": TOWN_B}
    )
    session.execute(text("UPDATE areas SET name = :n WHERE code = :c"), {"n": PAYLOADS[3], "c": B1})
    for title, payload in zip(("A1-3", "A1-5"), PAYLOADS[1:3], strict=True):
        session.execute(
            text("UPDATE cases SET title = :p WHERE title = :t AND county_code = :c"),
            {"p": payload, "t": title, "c": COUNTY},
        )
    session.flush()
    wb = workbook(client, area=COUNTY, month="2025-12", as_of="2025-12-31")
    cells = [
        c for sheet in wb for row in sheet.iter_rows() for c in row if isinstance(c.value, str)
    ]
    assert not any(c.data_type == "f" for c in cells)
    texts = [c.value for c in cells]
    for payload in PAYLOADS:
        assert "'" + payload in texts, payload
        assert payload not in texts
    assert all(not v.startswith(("=", "+", "-", "@")) for v in texts)

    r = client.get(
        "/stats/ranking.csv",
        query_string={"area": COUNTY, "level": "village", "from": "2025-01-01", "to": "2025-12-31"},
    )
    body = r.get_data(as_text=True)
    assert "'" + PAYLOADS[3] in body
    for row in csv.reader(io.StringIO(body.lstrip("\ufeff"))):
        for (
            cell
        ) in row:  # a negative number is a number; anything else must not look like a formula
            assert not cell.startswith(("=", "+", "-", "@")) or _is_number(cell), row


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.usefixtures("stats_county")
def test_ranking_csv(client, login, session):
    user = login("planner", area=COUNTY)
    r = client.get(
        "/stats/ranking.csv",
        query_string={
            "area": COUNTY,
            "level": "town",
            "from": "2025-01-01",
            "to": "2025-12-31",
            "as_of": "2025-12-31",
        },
    )
    assert r.status_code == 200 and r.mimetype == "text/csv"
    body = r.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    header, data, total = rows[0], rows[1:-1], rows[-1]
    assert header[:2] == ["代码", "乡镇"] and [d[0] for d in data] == [TOWN_A, TOWN_B]
    assert total[1] == "合计（统计测试县）"
    for f in F.ADDITIVE:
        col = header.index(column_title(f.key)) if column_title(f.key) in header else None
        if col is not None:
            assert sum(int(d[col]) for d in data) == int(total[col]), f.key
    cases = header.index(column_title("cases"))
    assert [d[cases] for d in data] == ["4", "5"] and total[cases] == "9"
    rate = header.index(column_title("resolution_rate"))
    assert [d[rate] for d in data] + [total[rate]] == ["50.0", "20.0", "33.3"]
    r = client.get("/stats/ranking.csv", query_string={"area": COUNTY, "by": "category"})
    assert r.status_code == 200 and "征地拆迁" in r.get_data(as_text=True)
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.user_id == user.id, AuditEntry.action == "export")
        )
        == 2
    )


def test_monthly_report_from_the_command_line(app, connection, tmp_path):
    out = tmp_path / "report.xlsx"
    result = app.test_cli_runner().invoke(
        args=["stats", "monthly-report", "--month", "2026-10", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)
    assert wb["汇总"]["A1"].value == "延津县信访工作月报（2026年10月）"
    assert check_totals(wb["汇总"]) == len(F.ADDITIVE)
    bad = app.test_cli_runner().invoke(
        args=["stats", "monthly-report", "--month", "10/2026", "--out", str(out)]
    )
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
