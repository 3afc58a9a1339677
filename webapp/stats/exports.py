"""The monthly report (月报) as an Excel workbook, and the choices the filter forms offer.

The workbook holds the same figures as the pages (``queries.figure_rows``):

* 汇总: the area's rows one level down (the townships of a county) and a totals row,
  which is the area's own row: its counts are the sums of the rows above it (tested),
  its rates are the area's rates, never sums of rates;
* one sheet per township (for a county's report) with its villages and a totals row;
* 类别同比: every category this month and the same month a year before;
* 超期和积案: the overdue and backlog cases, with the petitioners' data masked whoever
  asks (auth.masking), since a report is passed around;
* 指标说明: the glossary.

Every text cell goes through ``escaping.spreadsheet_text``, so a name that starts with
``=``, ``+``, ``-`` or ``@`` is shown, not run.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, timedelta

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from webapp.auth.masking import MASKS
from webapp.auth.permissions import case_scope_sql
from webapp.cases.vocab import CHANNEL_LABELS, STATUS_LABELS, Channel
from webapp.escaping import spreadsheet_text
from webapp.grid.models import AreaLevel
from webapp.grid.queries import get_area
from webapp.stats import figures as F
from webapp.stats.params import (
    bad,
    parse_backlog_years,
    parse_date,
    refuse_unknown,
    requested_area,
    today_local,
)
from webapp.stats.presenting import column_title, export_value
from webapp.stats.queries import (
    LOCAL_TZ,
    Grouping,
    Period,
    StatsQuery,
    area_total,
    figure_rows,
    local_midnight,
)

REPORT_PARAMS = frozenset({"area", "month", "as_of", "backlog_years"})
REPORT_LEVELS = (AreaLevel.COUNTY, AreaLevel.TOWNSHIP)
HEADER_FILL = PatternFill("solid", fgColor="EEF1F4")
TOTAL_FILL = PatternFill("solid", fgColor="FFF4CE")
BOLD = Font(bold=True)


@dataclass(frozen=True)
class MonthlyReport:
    query: StatsQuery
    month: date  # the first day of the month
    username: str

    @property
    def filename(self) -> str:
        return f"monthly-report-{self.query.area.code}-{self.month:%Y-%m}.xlsx"

    def echo(self) -> dict:
        return {
            "area": self.query.area.code,
            "month": f"{self.month:%Y-%m}",
            **self.query.period.to_dict(),
            "backlog_years": self.query.backlog_years,
        }


def parse_month_request(session: Session, user, args: MultiDict) -> MonthlyReport:
    """Read ``area``, ``month`` (YYYY-MM, default last month), ``as_of``, ``backlog_years``."""
    refuse_unknown(args, REPORT_PARAMS)
    area = requested_area(session, user, args)
    if AreaLevel(area.level) not in REPORT_LEVELS:
        raise bad(
            "invalid_report_area",
            "月报按县或乡镇（街道）生成",
            "a monthly report is made for a county or a township",
            parameter="area",
        )
    month_text = (args.get("month") or "").strip()
    if month_text:
        if not re.fullmatch(r"\d{4}-\d{2}", month_text):
            raise bad(
                "invalid_month",
                "参数 month 应为年月，格式 YYYY-MM（如 2026-10）",
                "month must be YYYY-MM",
                parameter="month",
            )
        try:
            first = date(int(month_text[:4]), int(month_text[5:]), 1)
        except ValueError:
            raise bad(
                "invalid_month",
                "参数 month 应为有效的年月，格式 YYYY-MM",
                "month must be a valid YYYY-MM",
                parameter="month",
            ) from None
    else:
        this_month = today_local().replace(day=1)
        first = (this_month - timedelta(days=1)).replace(day=1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    as_of = None
    if args.get("as_of"):
        as_of = local_midnight(parse_date("as_of", args["as_of"]) + timedelta(days=1))
    query = StatsQuery(
        area=area,
        period=Period(first, last, as_of),
        grouping=Grouping("area", AreaLevel(area.level).child),
        scope=case_scope_sql(user),
        backlog_years=parse_backlog_years(args),
    )
    return MonthlyReport(query, first, user.username)


# -- the workbook -------------------------------------------------------------------------


def _sheet_title(name: str, used: set[str]) -> str:
    title = re.sub(r"[\[\]:*?/\\]", "_", name).strip("'")[:31] or "Sheet"
    base, n = title, 2
    while title in used:
        suffix = f"({n})"
        title = base[: 31 - len(suffix)] + suffix
        n += 1
    used.add(title)
    return title


def _header(ws, row: int, titles: list[str]) -> None:
    for col, title in enumerate(titles, start=1):
        cell = ws.cell(row=row, column=col, value=spreadsheet_text(title))
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")


def _figure_cell(ws, row: int, col: int, key: str, value) -> None:
    cell = ws.cell(row=row, column=col, value=export_value(key, value))
    f = F.BY_KEY[key]
    if f.unit == "%":
        cell.number_format = "0.0%"
    elif f.kind == "rate":
        cell.number_format = "0.00"
    elif f.is_count:
        cell.number_format = "#,##0"


def _title_block(ws, title: str, report: MonthlyReport) -> int:
    ws.cell(row=1, column=1, value=spreadsheet_text(title)).font = Font(bold=True, size=14)
    p = report.query.period.to_dict()
    ws.cell(
        row=2,
        column=1,
        value=spreadsheet_text(
            f"统计期：{p['from']} 至 {p['to']}（按登记时间）；"
            f"办理状态截至 {p['as_of'][:16].replace('T', ' ')}；"
            f"积案年限 {report.query.backlog_years} 年；生成人：{report.username}"
        ),
    )
    ws.cell(
        row=3,
        column=1,
        value="比率列为小数（以百分比格式显示）；合计行为本级区域自身的数字，计数列等于上方各行之和。",
    )
    return 5


def _area_table(
    ws, report: MonthlyReport, start_row: int, rows: list[dict], total: dict, label: str
) -> int:
    keys = [f.key for f in F.FIGURES]
    _header(ws, start_row, ["代码", label, "户籍人口"] + [column_title(k) for k in keys])
    r = start_row + 1
    for item in rows + [total]:
        is_total = item is total
        ws.cell(row=r, column=1, value=spreadsheet_text(item["code"]))
        name = f"合计（{item['name']}）" if is_total else item["name"]
        ws.cell(row=r, column=2, value=spreadsheet_text(name))
        ws.cell(row=r, column=3, value=item["population"])
        for col, key in enumerate(keys, start=4):
            _figure_cell(ws, r, col, key, item.get(key))
        if is_total:
            for col in range(1, len(keys) + 4):
                ws.cell(row=r, column=col).font = BOLD
                ws.cell(row=r, column=col).fill = TOTAL_FILL
        r += 1
    ws.freeze_panes = ws.cell(row=start_row + 1, column=3)
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 22
    for col in range(3, len(keys) + 4):
        ws.column_dimensions[get_column_letter(col)].width = 11
    ws.row_dimensions[start_row].height = 45
    return r


def monthly_workbook(session: Session, report: MonthlyReport) -> bytes:
    """Build the monthly report of ``report`` and return the .xlsx file's bytes."""
    q = report.query
    area = q.area
    wb = Workbook()
    used: set[str] = set()
    month_label = f"{report.month.year}年{report.month.month}月"
    child = AreaLevel(area.level).child

    ws = wb.active
    ws.title = _sheet_title("汇总", used)
    rows = figure_rows(session, q)
    total = area_total(session, q, rows)
    start = _title_block(ws, f"{area.name}信访工作月报（{month_label}）", report)
    _area_table(ws, report, start, rows, total, child.label if child else "区域")

    if child is AreaLevel.TOWNSHIP:
        for town in rows:
            tq = StatsQuery(
                area=get_area(session, town["code"]),
                period=q.period,
                grouping=Grouping("area", AreaLevel.VILLAGE),
                filters=q.filters,
                scope=q.scope,
                backlog_years=q.backlog_years,
            )
            ts = wb.create_sheet(_sheet_title(town["name"], used))
            start = _title_block(ts, f"{town['name']}各村（社区）（{month_label}）", report)
            # The township's own row is the one on the summary sheet.
            _area_table(ts, report, start, figure_rows(session, tq), town, AreaLevel.VILLAGE.label)

    _category_sheet(wb.create_sheet(_sheet_title("类别同比", used)), session, report, month_label)
    _cases_sheet(wb.create_sheet(_sheet_title("超期和积案", used)), session, report)
    _glossary_sheet(wb.create_sheet(_sheet_title("指标说明", used)))

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _category_sheet(ws, session: Session, report: MonthlyReport, month_label: str) -> None:
    q = report.query
    cq = StatsQuery(
        area=q.area,
        period=q.period,
        grouping=Grouping("category"),
        filters=q.filters,
        scope=q.scope,
        backlog_years=q.backlog_years,
    )
    rows = figure_rows(session, cq)
    total = area_total(session, q)
    start = _title_block(ws, f"{q.area.name}各类别信访事项同比（{month_label}）", report)
    keys = [
        "cases",
        "cases_last_year",
        "yoy_change",
        "resolved",
        "resolution_rate",
        "repeats",
        "collective",
    ]
    _header(ws, start, ["类别代码", "类别"] + [column_title(k) for k in keys])
    r = start + 1
    for item in rows + [total]:
        is_total = item is total
        ws.cell(row=r, column=1, value=spreadsheet_text("" if is_total else item["code"]))
        ws.cell(row=r, column=2, value=spreadsheet_text("合计" if is_total else item["name"]))
        for col, key in enumerate(keys, start=3):
            _figure_cell(ws, r, col, key, item.get(key))
        if is_total:
            for col in range(1, len(keys) + 3):
                ws.cell(row=r, column=col).font = BOLD
                ws.cell(row=r, column=col).fill = TOTAL_FILL
        r += 1
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 18
    ws.freeze_panes = ws.cell(row=start + 1, column=3)


CASE_COLUMNS = [
    "类型",
    "编号",
    "标题",
    "类别",
    "渠道",
    "状态",
    "乡镇",
    "村(社区)",
    "网格",
    "登记时间",
    "办理期限",
    "超期天数",
    "登记年数",
    "信访人（已脱敏）",
    "联系电话（已脱敏）",
    "身份证号（已脱敏）",
]


def _cases_sheet(ws, session: Session, report: MonthlyReport) -> None:
    from webapp.stats.queries import area_names, overdue_and_backlog

    q = report.query
    cases = overdue_and_backlog(session, q)
    names = area_names(
        session,
        sorted(
            {c.township_code for c in cases}
            | {c.village_code for c in cases}
            | {c.grid_code for c in cases}
        ),
    )
    as_of = q.period.params()["as_of"]
    start = _title_block(ws, f"{q.area.name}超期未办结和积案事项（截至统计时点）", report)
    _header(ws, start, CASE_COLUMNS)
    r = start + 1
    for c in cases:
        kind = "积案、超期" if c.backlog and c.overdue else ("积案" if c.backlog else "超期")
        overdue_days = (as_of - c.due_at).days if c.overdue and c.due_at else None
        values = [
            kind,
            c.number,
            c.title,
            c.category,
            CHANNEL_LABELS.get(Channel(c.channel), c.channel),
            STATUS_LABELS.get(c.status, c.status),
            names.get(c.township_code, c.township_code),
            names.get(c.village_code, c.village_code),
            names.get(c.grid_code, c.grid_code),
            c.reported_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d"),
            c.due_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d") if c.due_at else "",
            overdue_days,
            round((as_of - c.reported_at).days / 365.25, 1),
            MASKS["petitioner_name"](c.petitioner_name),
            MASKS["petitioner_phone"](c.petitioner_phone),
            MASKS["petitioner_id_number"](c.petitioner_id_number),
        ]
        for col, value in enumerate(values, start=1):
            ws.cell(row=r, column=col, value=spreadsheet_text(value))
        r += 1
    ws.cell(row=r + 1, column=1, value=f"共 {len(cases)} 件。个人信息已按规定脱敏。")
    for col, width in enumerate(
        [10, 20, 36, 14, 12, 10, 12, 14, 18, 12, 12, 9, 9, 14, 16, 22], start=1
    ):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = ws.cell(row=start + 1, column=3)


def _glossary_sheet(ws) -> None:
    ws.cell(row=1, column=1, value="指标说明").font = Font(bold=True, size=14)
    ws.cell(row=2, column=1, value=F.PERIOD_NOTE).alignment = Alignment(wrap_text=True)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=4)
    ws.row_dimensions[2].height = 75
    _header(ws, 4, ["分组", "指标", "单位", "定义"])
    r = 5
    for group in F.glossary():
        for f in group["figures"]:
            for col, value in enumerate(
                [group["group"], f["name"], f["unit"], f["definition"]], start=1
            ):
                ws.cell(row=r, column=col, value=spreadsheet_text(value)).alignment = Alignment(
                    wrap_text=True, vertical="top"
                )
            r += 1
    for col, width in enumerate([10, 20, 8, 90], start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
