"""Ledger (台账) import: every kind of bad row is named in the dry run; the real run is repeatable."""

from __future__ import annotations

import csv
import gc
import re
import sys
import unicodedata
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from webapp.exchange.importer import check_ledger, import_ledger
from webapp.exchange.ledger import (
    LedgerUnreadable,
    Place,
    Reference,
    normalise,
    parse_date,
    read_ledger,
    row_status,
)
from webapp.geo import wgs84_to_gcj02

TZ = ZoneInfo("Asia/Shanghai")
HEADER = [
    "序号",
    "登记日期",
    "信访人",
    "联系电话",
    "身份证号",
    "问题类别",
    "来源",
    "人数",
    "乡镇",
    "村(社区)",
    "经度",
    "纬度",
    "坐标系",
    "事由",
    "主要诉求",
    "办理状态",
    "办结日期",
    "村代码",
]


def _row(
    n,
    date="2026-03-05",
    name="赵六",
    category="征地拆迁",
    channel="来访",
    town="",
    village="",
    lon="",
    lat="",
    crs="",
    title="反映征地补偿",
    demand="要求补足补偿款",
    status="办理中",
    done="",
    code="",
):
    return [
        n,
        date,
        name,
        "13800001111",
        "",
        category,
        channel,
        "1",
        town,
        village,
        lon,
        lat,
        crs,
        title,
        demand,
        status,
        done,
        code,
    ]


@pytest.fixture
def places(session):
    """A grid label point, a village (with its township) and a stored case with a petitioner."""
    grid = session.execute(
        text(
            "SELECT code, ST_X(label_point) AS lon, ST_Y(label_point) AS lat FROM areas "
            "WHERE level = 'grid' ORDER BY code LIMIT 1"
        )
    ).one()
    village = session.execute(
        text(
            """SELECT v.code, v.name, t.name AS township FROM areas v JOIN areas t ON t.code = v.township_code
               WHERE v.level = 'village'
                 AND (SELECT count(*) FROM areas o WHERE o.level = 'village' AND o.name = v.name) = 1
               ORDER BY v.code LIMIT 1"""
        )
    ).one()
    case = session.execute(
        text(
            """SELECT c.number, c.petitioner_name, k.name AS category, c.reported_at FROM cases c
               JOIN categories k ON k.id = c.category_id WHERE c.petitioner_name IS NOT NULL ORDER BY c.id LIMIT 1"""
        )
    ).one()
    return {"grid": grid, "village": village, "case": case}


def write_ledger(path: Path, rows: list[list], title_row: bool = True) -> Path:
    all_rows = ([["延津县信访事项登记台账（2026年）"]] if title_row else []) + [HEADER] + rows
    if path.suffix == ".xlsx":
        wb = Workbook()
        ws = wb.active
        for r in all_rows:
            ws.append(r)
        wb.save(path)
    else:
        with path.open("w", newline="", encoding="utf-8-sig") as fh:
            csv.writer(fh).writerows(all_rows)
    return path


def every_kind(places) -> list[list]:
    g, v, c = places["grid"], places["village"], places["case"]
    glon, glat = wgs84_to_gcj02(g.lon, g.lat)
    day = c.reported_at.astimezone(TZ).date().isoformat()
    return [
        _row(1, lon=g.lon, lat=g.lat, crs="WGS84"),  # row 3: ok, coordinates
        _row(
            2, name="钱七", town=v.township, village=v.name, lon="", lat=""
        ),  # row 4: ok, village name
        _row(3, name="孙八", lon=float(glon), lat=float(glat), crs="GCJ-02"),  # row 5: ok, GCJ-02
        _row(4, name="李九", date="2026-02-30", lon=g.lon, lat=g.lat),  # row 6: bad date
        _row(
            5, name="周十", category="拆迁补偿款", lon=g.lon, lat=g.lat
        ),  # row 7: unknown category
        _row(6, name="吴一", village="不存在村"),  # row 8: unknown village
        _row(7, name="郑二", lon=100.0, lat=30.0),  # row 9: outside the county
        _row(8, lon=g.lon, lat=g.lat, crs="WGS84"),  # row 10: same as row 3
        _row(
            9, name=c.petitioner_name, category=c.category, date=day, lon=g.lon, lat=g.lat
        ),  # row 11: as a stored case
        _row(
            10,
            name="王五",
            title='=HYPERLINK("http://x")',
            lon=g.lon,
            lat=g.lat,
            status="已办结",
            done="2026-03-20",
        ),  # row 12: ok
        _row(11, name="冯三", lon=g.lon, lat=g.lat, crs="CGCS2000"),  # row 13: ok, CGCS2000
        _row(12, name="陈四", code=v.code),  # row 14: ok, village code only
        _row(13, name="褚五", code=g.code),  # row 15: ok, grid code only
        _row(14, name="卫六", code="410726999999"),  # row 16: unknown village code
    ]


EXPECTED = {
    3: "ok",
    4: "ok",
    5: "ok",
    6: "bad_date",
    7: "unknown_category",
    8: "unknown_village",
    9: "outside_county",
    10: "duplicate",
    11: "duplicate",
    12: "ok",
    13: "ok",
    14: "ok",
    15: "ok",
    16: "unknown_village",
}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_dry_run_names_every_kind_of_bad_row(session, tmp_path, places, suffix):
    path = write_ledger(tmp_path / f"台账{suffix}", every_kind(places))
    before = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    report = check_ledger(session, path)
    assert {r.row: r.status_code for r in report.rows} == EXPECTED
    by_row = {r.row: r for r in report.rows}
    assert by_row[7].problems[0].suggestions and "征地拆迁" in by_row[7].problems[0].suggestions
    assert by_row[10].problems[0].code == "duplicate_row" and by_row[10].duplicate_of == "第 3 行"
    assert (
        by_row[11].problems[0].code == "duplicate_case"
        and by_row[11].duplicate_of == places["case"].number
    )
    assert by_row[4].approx and not by_row[3].approx
    # GCJ-02 was converted back to the WGS84 point it came from.
    assert by_row[5].lon == pytest.approx(places["grid"].lon, abs=1e-7)
    assert by_row[5].lat == pytest.approx(places["grid"].lat, abs=1e-7)
    # CGCS2000 (EPSG:4490) degrees are WGS84 to within centimetres: the same point.
    assert by_row[13].crs == "EPSG:4490" and not by_row[13].approx
    assert (by_row[13].lon, by_row[13].lat) == (
        pytest.approx(places["grid"].lon, abs=1e-7),
        pytest.approx(places["grid"].lat, abs=1e-7),
    )
    # A village or grid code alone places the row at that area's label point, marked approximate.
    village = session.execute(
        text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"),
        {"c": places["village"].code},
    ).one()
    assert by_row[14].approx and (by_row[14].lon, by_row[14].lat) == tuple(village)
    assert by_row[15].approx and (by_row[15].lon, by_row[15].lat) == (
        places["grid"].lon,
        places["grid"].lat,
    )
    assert (
        by_row[16].problems[0].code == "unknown_village"
        and "410726999999" in by_row[16].problems[0].message
    )
    assert report.summary()["counts"] == {
        "ok": 7,
        "bad_date": 1,
        "unknown_category": 1,
        "unknown_village": 2,
        "outside_county": 1,
        "duplicate": 2,
        "invalid": 0,
    }
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == before
    body = report.csv_bytes().decode("utf-8-sig")
    assert body.count("\n") == len(EXPECTED) + 1


def test_real_run_imports_the_good_rows_once(session, tmp_path, places):
    path = write_ledger(tmp_path / "台账.csv", every_kind(places))
    before = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    report = import_ledger(session, path, import_id=99)
    assert report.imported == 7
    rows = session.execute(
        text(
            """SELECT c.title, c.location_approx, c.status, c.concluded_at, c.grid_code, c.village_code,
                      e.note, e.data->>'row' AS row
               FROM cases c JOIN case_events e ON e.case_id = c.id AND e.data->>'source' = 'ledger_import'
               ORDER BY (e.data->>'row')::int"""
        )
    ).all()
    good = [3, 4, 5, 12, 13, 14, 15]
    assert [int(r.row) for r in rows] == good
    assert [r.location_approx for r in rows] == [False, True, False, False, False, True, True]
    assert (
        rows[3].status == "concluded"
        and rows[3].concluded_at.astimezone(TZ).date().isoformat() == "2026-03-20"
    )
    assert rows[3].title.startswith("=HYPERLINK")  # stored as typed; neutralised only in exports
    by_row = {int(r.row): r for r in rows}
    assert by_row[13].grid_code == places["grid"].code  # the CGCS2000 point, in the grid it names
    assert by_row[14].village_code == places["village"].code  # placed by the village code
    assert by_row[15].grid_code == places["grid"].code  # placed by the grid code
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == before + 7
    stage = text("SELECT to_regclass('pg_temp.ledger_stage')")
    assert session.execute(stage).scalar() is None  # the check's stage, used for the events, gone
    again = import_ledger(session, path)
    assert again.imported == 0
    assert session.execute(stage).scalar() is None  # also when nothing was new
    assert {r.row: r.problems[0].code for r in again.rows if r.problems and r.row in good} == {
        n: "already_imported" for n in good
    }
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == before + 7


def test_headers_are_found_by_their_words(session, tmp_path, places):
    g = places["grid"]
    path = tmp_path / "variants.csv"
    with path.open("w", newline="", encoding="gb18030") as fh:  # Excel in China saves CSV as GBK
        w = csv.writer(fh)
        w.writerow(
            ["受理日期", "姓名", "问题类型", "信访方式", " 经 度 ", "纬度", "反映问题", "其他备注"]
        )
        w.writerow(["2026年3月5日", "冯三", "劳资纠纷", "12345热线", g.lon, g.lat, "拖欠工资", "x"])
    report = check_ledger(session, path)
    assert report.ledger.header_row == 1 and report.ledger.unmapped == ["其他备注"]
    r = report.rows[0]
    assert r.status_code == "ok", r.problems
    assert r.channel.value == "hotline" and r.title == "拖欠工资"
    assert r.reported_at == datetime(2026, 3, 5, tzinfo=TZ)


def test_a_file_without_a_ledger_header_is_refused(session, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(LedgerUnreadable, match="表头"):
        check_ledger(session, path)
    with pytest.raises(LedgerUnreadable, match=".xlsx"):
        check_ledger(session, tmp_path / "old.xls")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-05", datetime(2026, 3, 5, tzinfo=TZ)),
        ("2026/3/5", datetime(2026, 3, 5, tzinfo=TZ)),
        ("2026.03.05 14:30", datetime(2026, 3, 5, 14, 30, tzinfo=TZ)),
        ("2026年3月5日", datetime(2026, 3, 5, tzinfo=TZ)),
        ("20260305", datetime(2026, 3, 5, tzinfo=TZ)),
        (46086, datetime(2026, 3, 5, tzinfo=TZ)),  # an Excel serial date
        ("2026-02-30", None),
        ("2099-01-01", None),
        ("1980-01-01", None),
        ("昨天", None),
    ],
)
def test_dates(value, expected):
    now = datetime(2026, 11, 1, tzinfo=TZ)
    if expected is None:
        with pytest.raises(ValueError):
            parse_date(value, now)
    else:
        assert parse_date(value, now) == expected


def test_a_village_name_in_two_townships_needs_the_township():
    a = Place("410726100001", "新庄村", "410726100", "甲镇", 114.0, 35.0)
    b = Place("410726101001", "新庄村", "410726101", "乙镇", 114.1, 35.1)
    ref = Reference({}, [], {normalise("新庄村"): [a, b]}, {})
    assert ref.village("新庄", "")[0] is None and len(ref.village("新庄", "")[1]) == 2
    assert ref.village("新庄村", "乙镇")[0] == b
    assert ref.village("新庄村委会", "甲镇")[0] == a


def _reference(category_id: int = 1, villages: tuple[Place, ...] = ()) -> Reference:
    by_name: dict[str, list[Place]] = {}
    for p in villages:
        by_name.setdefault(normalise(p.name), []).append(p)
    return Reference(
        {normalise("征地拆迁"): category_id, normalise("拆迁安置"): category_id + 1},
        ["征地拆迁", "拆迁安置"],
        by_name,
        {p.code: p for p in villages},
    )


def test_what_a_text_meant_in_one_file_is_not_carried_to_the_next(tmp_path):
    """Each read looks its values up afresh: another reference or clock, another answer."""
    a = Place("410726100001", "新庄村", "410726100", "甲镇", 114.0, 35.0)
    path = write_ledger(
        tmp_path / "台账.csv",
        [_row(1, name="甲", village="新庄村"), _row(2, name="乙", village="新庄村")],
    )
    now = datetime(2026, 11, 1, tzinfo=TZ)
    first = read_ledger(path, _reference(1, (a,)), now=now).rows
    assert [(r.category_id, r.lon, r.problems) for r in first] == [(1, 114.0, [])] * 2
    second = read_ledger(path, _reference(5), now=now).rows
    assert [r.category_id for r in second] == [5, 5]
    assert [[p.code for p in r.problems] for r in second] == [["unknown_village"]] * 2
    # 2026-03-05 lies in the future of a read on 2026-01-01.
    earlier = read_ledger(path, _reference(1, (a,)), now=datetime(2026, 1, 1, tzinfo=TZ)).rows
    assert [[p.code for p in r.problems] for r in earlier] == [["bad_date"]] * 2


def test_rows_with_the_same_bad_values_get_problems_of_their_own(tmp_path):
    a = Place("410726100001", "新庄村", "410726100", "甲镇", 114.0, 35.0)
    b = Place("410726101001", "新庄村", "410726101", "乙镇", 114.1, 35.1)
    same = {"date": "2026-02-30", "category": "拆迁补偿", "village": "新庄"}
    path = write_ledger(tmp_path / "台账.csv", [_row(1, **same), _row(2, **same)])
    rows = read_ledger(path, _reference(1, (a, b)), now=datetime(2026, 11, 1, tzinfo=TZ)).rows
    assert [p.code for p in rows[0].problems] == [
        "bad_date",
        "unknown_category",
        "ambiguous_village",
    ]
    assert [p.to_dict() for p in rows[0].problems] == [p.to_dict() for p in rows[1].problems]
    assert rows[0].problems[1].suggestions == ["拆迁安置", "征地拆迁"]
    assert rows[0].problems[2].suggestions == [a.code, b.code]
    for p, q in zip(rows[0].problems, rows[1].problems, strict=True):
        assert p is not q and p.suggestions is not q.suggestions
    rows[0].problems[1].suggestions.append("别的")
    assert rows[1].problems[1].suggestions == ["拆迁安置", "征地拆迁"]


def test_a_full_memo_checks_every_row_all_the_same(tmp_path, monkeypatch):
    """Past its limit a memo keeps nothing new: the rows come out the same."""
    from webapp.exchange import ledger

    rows = [
        _row(
            i,
            name=f"人{i}",
            date=f"2026-03-{1 + i % 4:02d}",
            category=["征地拆迁", "拆迁补偿", "拆迁安置"][i % 3],
            channel=["来访", "飞鸽", "12345"][i % 3],
            status=["办理中", "已办结", "不知道", ""][i % 4],
            village=["新庄村", "旧庄村"][i % 2],
            done="2026-03-20" if i % 4 == 1 else "",
        )
        for i in range(1, 25)
    ]
    a = Place("410726100001", "新庄村", "410726100", "甲镇", 114.0, 35.0)
    path = write_ledger(tmp_path / "台账.csv", rows)
    now = datetime(2026, 11, 1, tzinfo=TZ)
    remembered = read_ledger(path, _reference(1, (a,)), now=now).rows
    monkeypatch.setattr(ledger._Memo, "LIMIT", 1)
    assert read_ledger(path, _reference(1, (a,)), now=now).rows == remembered
    assert {r.status_code for r in remembered} == {
        "ok",
        "unknown_category",
        "unknown_village",
        "invalid",
    }


def test_normalise_drops_every_space_the_regex_did():
    """``normalise`` removes exactly what ``re.sub(r"\\s+", "", ...)`` removed, in any script."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    assert [c for c in chars if c.isspace()] == [c for c in chars if re.fullmatch(r"\s", c)]
    text = "Ａ b\u3000c\u00a0d\u2028e\tF\u200bＧ"
    old = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text).lower())
    assert normalise(text) == old == "abcdef\u200bg"


def test_reading_leaves_the_garbage_collector_as_it_was(tmp_path):
    path = write_ledger(tmp_path / "台账.csv", [_row(1, village="新庄村")])
    assert gc.isenabled()
    read_ledger(path, _reference())
    assert gc.isenabled()
    with pytest.raises(LedgerUnreadable):
        read_ledger(tmp_path / "台账.xls", _reference())
    assert gc.isenabled()
    gc.disable()
    try:
        read_ledger(path, _reference())
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_cli_dry_run_then_import_then_nothing_new(app, connection, tmp_path, places, suffix):
    """``flask cases import FILE --dry-run``, then the real run, then the same again: nothing new."""
    from webapp.exchange.ledger import ROW_STATUSES

    path = write_ledger(tmp_path / f"台账{suffix}", every_kind(places))
    runner = app.test_cli_runner()
    good = sum(status == "ok" for status in EXPECTED.values())

    def count() -> int:
        return connection.execute(text("SELECT count(*) FROM cases")).scalar_one()

    before = count()
    rows_csv = tmp_path / "dry-run.csv"
    dry = runner.invoke(args=["cases", "import", str(path), "--dry-run", "--report", str(rows_csv)])
    assert dry.exit_code == 0, dry.output
    for row, status in EXPECTED.items():
        line = f"第 {row} 行：{ROW_STATUSES[status]}"
        assert (line in dry.output) == (status != "ok"), (row, dry.output)  # problem rows only
    assert f"{ROW_STATUSES['ok']} {good}，" in dry.output and "试运行，未写入" in dry.output
    assert rows_csv.read_bytes().decode("utf-8-sig").count("\n") == len(EXPECTED) + 1
    assert count() == before

    real = runner.invoke(args=["cases", "import", str(path)])
    assert real.exit_code == 0, real.output
    assert f"已导入 {good} 个案件" in real.output
    assert count() == before + good

    again = runner.invoke(args=["cases", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert "已导入 0 个案件" in again.output
    for row, status in EXPECTED.items():
        if status == "ok":
            assert f"第 {row} 行：{ROW_STATUSES['duplicate']}" in again.output, (row, again.output)
    assert count() == before + good


def test_the_stage_holds_each_row_as_it_was_checked(session):
    """The binary COPY of the stage: numbers, ids, names (or NULL) and local days exact."""
    import uuid

    from webapp.exchange.importer import _stage
    from webapp.exchange.ledger import LedgerRow

    rows = [
        LedgerRow(
            row=3,
            fingerprint=uuid.UUID("12345678-1234-5678-9abc-def012345678"),
            lon=114.123456789,
            lat=35.1,
            category_id=7,
            petitioner_name='赵"六,七',
            reported_at=datetime(2026, 3, 5, 0, 30, tzinfo=TZ),  # 2026-03-04 in UTC
        ),
        LedgerRow(
            row=1_000_000,
            fingerprint=uuid.UUID(int=0),
            lon=-0.5,
            lat=1e-9,
            category_id=1,
            petitioner_name=None,
            reported_at=datetime(1990, 1, 1, 23, 59, tzinfo=ZoneInfo("UTC")),  # 01-02 locally
        ),
    ]
    _stage(session, rows)
    stored = session.execute(
        text(
            "SELECT row_no, client_id, lon, lat, category_id, petitioner_name, day, "
            "ST_AsText(geom) FROM ledger_stage ORDER BY row_no"
        )
    ).all()
    assert [tuple(r) for r in stored] == [
        (
            3,
            rows[0].fingerprint,
            114.123456789,
            35.1,
            7,
            '赵"六,七',
            date(2026, 3, 5),
            "POINT(114.123456789 35.1)",
        ),
        (
            1_000_000,
            rows[1].fingerprint,
            -0.5,
            1e-9,
            1,
            None,
            date(1990, 1, 2),
            "POINT(-0.5 1e-9)",
        ),
    ]
    session.execute(text("DROP TABLE ledger_stage"))


def test_every_column_lands_in_its_own_field(tmp_path):
    """One row with every column the headers name, each cell telling apart: each in its place."""
    from webapp.exchange.ledger import FIELDS, HEADERS

    assert sorted(FIELDS) == sorted(HEADERS)
    header = ["事项性质", "办结日期", "受理日期", "身份证号", "联系电话", "信访人", "人数", "来源"]
    header += ["问题类别", "事由", "主要诉求", "办理状态", "坐标系", "纬度", "经度", "村代码"]
    header += ["村(社区)", "乡镇", "登记日期"]
    cells = ["检举", "2026-03-20", "2026-03-06", "41072 619800101001x", "139-0000 1111", "赵六"]
    cells += ["3", "来信", "拆迁安置", "补偿", "要求补偿", "已化解", "GCJ-02", "35.1", "114.2"]
    cells += ["", "新庄村", "甲镇", "2026-03-05"]
    path = tmp_path / "台账.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, cells])
    ledger = read_ledger(path, _reference(), now=datetime(2026, 11, 1, tzinfo=TZ))
    assert sorted(ledger.columns) == sorted(FIELDS) and ledger.unmapped == []
    r = ledger.rows[0]
    assert r.problems == []
    assert (r.reported_at, r.accepted_at, r.concluded_at) == (
        datetime(2026, 3, 5, tzinfo=TZ),
        datetime(2026, 3, 6, tzinfo=TZ),
        datetime(2026, 3, 20, tzinfo=TZ),
    )
    assert (r.petitioner_name, r.petitioner_phone, r.petitioner_id_number) == (
        "赵六",
        "13900001111",
        "41072619800101001X",
    )
    assert (r.category_id, r.category_text, r.channel.value, r.people_count) == (
        2,
        "拆迁安置",
        "letter",
        3,
    )
    assert (r.title, r.description, r.status.value, r.case_class.value) == (
        "补偿",
        "要求补偿",
        "resolved",
        "accusation",
    )
    assert r.crs == "gcj02" and not r.approx and r.place_text == "114.2,35.1"
    assert r.lon != 114.2 and abs(r.lon - 114.2) < 0.01 and abs(r.lat - 35.1) < 0.01


def test_a_row_with_a_control_character_is_refused_and_the_others_import(session, tmp_path, places):
    """PostgreSQL cannot store NUL: such a row gets a problem naming its column, not a crash."""
    code = places["grid"].code
    rows = [
        _row(1, name="张\x00三", code=code),
        _row(2, title="反映\x07补偿", code=code),
        _row(3, code=code),
    ]
    path = write_ledger(tmp_path / "台账.csv", rows)
    report = import_ledger(session, path, import_id=97)
    assert report.imported == 1
    problems = {r.row: [(p.code, p.message) for p in r.problems] for r in report.rows}
    assert problems[3] == [
        ("control_characters", "“信访人”一栏含有不可见的控制字符，请删除后再导入")
    ]
    assert problems[4] == [("control_characters", "“事由”一栏含有不可见的控制字符，请删除后再导入")]
    assert problems[5] == []
    assert [row_status(r.problems) for r in report.rows] == ["invalid", "invalid", "ok"]


def test_a_ledger_is_checked_against_the_importers_county_only(
    session, tmp_path, places, make_user
):
    """One database may hold several counties: an account's ledger is placed in its own
    county's grids and villages, and compared with its own county's cases only (another
    county's case numbers and petitioners are not the importer's to learn)."""
    from tests.builders import import_test_county, u
    from tests.cases_fixtures import PERSON
    from webapp.cases.models import Case
    from webapp.cases.queries import NewCase, insert_case
    from webapp.cases.vocab import Channel

    import_test_county(session, tmp_path)
    lon, lat = u(3, 1.5)
    stored = insert_case(
        session,
        NewCase(title="外县案件", category_id=1, channel=Channel.VISIT, lon=lon, lat=lat, **PERSON),
    )
    other = session.get(Case, stored.id)
    category = session.execute(text("SELECT name FROM categories WHERE id = 1")).scalar_one()
    day = other.reported_at.astimezone(TZ).date().isoformat()
    g = places["grid"]
    rows = [
        _row(1, lon=lon, lat=lat, crs="WGS84"),  # row 3: in the other county
        _row(  # row 4: here, the same petitioner, day and category as the other county's case
            2, name=PERSON["petitioner_name"], category=category, date=day, lon=g.lon, lat=g.lat
        ),
        _row(3, name="钱七", town="测试镇", village="测试村"),  # row 5: the other county's village
        _row(4, name="孙八", code=f"{other.village_code}"),  # row 6: its village code
    ]
    path = write_ledger(tmp_path / "台账.csv", rows)
    everywhere = {r.row: r.status_code for r in check_ledger(session, path).rows}
    assert everywhere == {3: "ok", 4: "duplicate", 5: "ok", 6: "ok"}  # the whole database's
    staff = make_user("county_staff")
    report = check_ledger(session, path, county=staff.county_code)
    by_row = {r.row: r for r in report.rows}
    assert {n: r.status_code for n, r in by_row.items()} == {
        3: "outside_county",
        4: "ok",
        5: "unknown_village",
        6: "unknown_village",
    }
    assert other.number not in report.csv_bytes().decode("utf-8-sig")
    before = session.execute(
        text("SELECT count(*) FROM cases WHERE county_code = :c"), {"c": other.county_code}
    ).scalar_one()
    imported = import_ledger(session, path, staff)
    assert imported.imported == 1  # row 4, in the importer's county
    after = session.execute(
        text("SELECT count(*) FROM cases WHERE county_code = :c"), {"c": other.county_code}
    ).scalar_one()
    assert after == before
