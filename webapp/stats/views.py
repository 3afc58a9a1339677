"""Statistics pages: the dashboard of an area, the glossary, the early warning panel, exports."""

from __future__ import annotations

import csv
import io
from datetime import date

from flask import Blueprint, Response, render_template, request, url_for

from webapp.auth import audit
from webapp.auth.identity import current_user, roles_required
from webapp.auth.permissions import STATS_ROLES, may_see_area
from webapp.db import get_session
from webapp.grid.models import AreaLevel
from webapp.grid.queries import ancestors
from webapp.stats import figures, params, presenting, queries, warning
from webapp.stats.queries import Grouping, Period, StatsQuery

bp = Blueprint("stats", __name__, url_prefix="/stats")

# Parameters a dashboard link carries from one area to the next.
CARRIED = ("from", "to", "as_of", "category", "channel", "backlog_years")
TREND_MONTHS = 12


@bp.context_processor
def helpers():
    return {"fmt": presenting.format_value, "FIGURES": figures.BY_KEY}


def _carried(args) -> dict:
    return {k: args.get(k) for k in CARRIED if args.get(k)}


def _months_back(end: date, months: int) -> date:
    y, m = end.year, end.month - (months - 1)
    while m < 1:
        y, m = y - 1, m + 12
    return date(y, m, 1)


def _with(q: StatsQuery, **changes) -> StatsQuery:
    fields = {
        k: getattr(q, k)
        for k in ("area", "period", "grouping", "filters", "scope", "backlog_years")
    }
    fields.update(changes)
    return StatsQuery(**fields)


@bp.get("")
@roles_required(*STATS_ROLES)
def index():
    user = current_user()
    session = get_session()
    parsed = params.parse(session, user, request.args)
    q = parsed.query
    rows = queries.figure_rows(session, q) if parsed.level != AreaLevel(q.area.level) else []
    total = queries.area_total(session, q, rows or None)
    # The trend covers the period (at least the last twelve months of it), never the future.
    trend_end = max(min(q.period.end, params.today_local()), q.period.start)
    trend_start = min(q.period.start, _months_back(trend_end, TREND_MONTHS))
    trend_q = _with(
        q, grouping=Grouping("month"), period=Period(trend_start, trend_end, q.period.as_of)
    )
    months = queries.figure_rows(session, trend_q)
    categories = queries.figure_rows(session, _with(q, grouping=Grouping("category")))
    # Villages ranked across a county, or grids across a township, show whose they are.
    parent_len = {AreaLevel.VILLAGE: 9, AreaLevel.GRID: 12}.get(parsed.level, 0)
    parents = {}
    if rows and len(q.area.code) < parent_len:
        parents = queries.area_names(session, sorted({r["code"][:parent_len] for r in rows}))
    trail = [a for a in ancestors(session, q.area) if may_see_area(user, a.code)]
    chart = {
        "months": [
            {
                "month": m["code"],
                **{
                    k: m[k]
                    for k in (
                        "cases",
                        "resolved",
                        "resolution_rate",
                        "satisfaction_rate",
                        "on_time_rate",
                    )
                },
            }
            for m in months
        ],
        "categories": [
            {"name": c["name"], "cases": c["cases"], "last_year": c["cases_last_year"]}
            for c in categories
            if c["cases"] or c["cases_last_year"]
        ],
        "levels": {
            k: total[k]
            for k in ("resolved_village", "resolved_township", "resolved_county", "resolved_above")
        },
    }
    return render_template(
        "stats/index.html",
        parsed=parsed,
        area=q.area,
        total=total,
        rows=rows,
        parents=parents,
        parent_len=parent_len,
        trail=trail,
        categories=categories,
        chart=chart,
        carried=_carried(request.args),
        columns=presenting.columns_for(rows) if rows else [],
        headline=figures.HEADLINE,
        levels=_rank_levels(AreaLevel(q.area.level)),
        all_categories=presenting.category_choices(session),
        channels=presenting.channel_choices(),
        trend_start=trend_start,
    )


def _rank_levels(area_level: AreaLevel) -> list[tuple[str, str]]:
    names = {AreaLevel.TOWNSHIP: "town", AreaLevel.VILLAGE: "village", AreaLevel.GRID: "grid"}
    order = list(AreaLevel)
    return [(names[lv], lv.label) for lv in order[order.index(area_level) + 1 :]]


@bp.get("/glossary")
@roles_required(*STATS_ROLES)
def glossary():
    return render_template(
        "stats/glossary.html",
        groups=figures.glossary(),
        conditions=figures.CONDITIONS,
        period_note=figures.PERIOD_NOTE,
        collective=figures.COLLECTIVE_MIN_PEOPLE,
        backlog_years=figures.DEFAULT_BACKLOG_YEARS,
        warning_method=warning.METHOD,
    )


@bp.get("/ranking.csv")
@roles_required(*STATS_ROLES)
def ranking_csv():
    user = current_user()
    session = get_session()
    parsed = params.parse(session, user, request.args)
    rows = queries.figure_rows(session, parsed.query)
    total = queries.area_total(session, parsed.query, rows)
    keys = presenting.columns_for(rows) or presenting.columns_for([total])
    label = (
        parsed.level.label
        if parsed.by == "area"
        else {"category": "类别", "channel": "渠道", "month": "月份"}[parsed.by]
    )
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel opens UTF-8 CSV correctly only with a byte-order mark
    csv.writer(buf, lineterminator="\r\n").writerows(presenting.csv_rows(rows, total, keys, label))
    audit.record(
        session, "export", user, detail={"kind": "ranking_csv", **parsed.echo(), "rows": len(rows)}
    )
    session.commit()
    period = parsed.query.period
    name = f"ranking-{parsed.query.area.code}-{parsed.by}-{parsed.level.value}"
    name += f"-{period.start}-{period.end}.csv"
    return Response(
        buf.getvalue(),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/monthly.xlsx")
@roles_required(*STATS_ROLES)
def monthly_report():
    from webapp.stats import exports  # openpyxl: imported by the workbook, not at app start

    user = current_user()
    session = get_session()
    report = exports.parse_month_request(session, user, request.args)
    data = exports.monthly_workbook(session, report)
    audit.record(session, "export", user, detail={"kind": "monthly_report", **report.echo()})
    session.commit()
    return Response(
        data,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{report.filename}"'},
    )


@bp.get("/warning")
@roles_required(*STATS_ROLES)
def warning_panel():
    user = current_user()
    session = get_session()
    req = warning.parse_request(session, user, request.args)
    alerts = warning.alerts(session, req)
    emerging = warning.emerging_hot_spots(session, req)
    trail = [a for a in ancestors(session, req.area) if may_see_area(user, a.code)]
    return render_template(
        "stats/warning.html",
        req=req,
        alerts=alerts,
        emerging=emerging,
        trail=trail,
        method=warning.METHOD,
        patterns=warning.PATTERN_LABELS,
        dashboard_url=url_for("stats.index", area=req.area.code),
    )
