"""``flask stats monthly-report``: the monthly report from the command line; configuration."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.datastructures import MultiDict

from webapp.auth import audit
from webapp.auth.roles import Role
from webapp.db import get_session
from webapp.errors import AppError
from webapp.stats import figures as F
from webapp.stats import tallies

stats_cli = AppGroup("stats", help="统计与月报 (figures and the monthly report).")


@stats_cli.command("monthly-report")
@click.option("--area", default=None, help="县或乡镇代码（默认本县）")
@click.option("--month", default=None, help="年月 YYYY-MM（默认上月）")
@click.option("--as-of", "as_of", default=None, help="办理状态截至哪一天 YYYY-MM-DD（默认现在）")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def monthly_report_command(area, month, as_of, out):
    """Write the monthly report (月报) of a county or township as an Excel workbook."""
    from webapp.stats import exports  # openpyxl: imported by this command, not at every start

    session = get_session()
    county = current_app.config["COUNTY_CODE"]
    # The command line sees the whole county, as the petition bureau does.
    operator = SimpleNamespace(
        area_code=county,
        username="flask stats",
        role=Role.ADMIN.value,
        id=None,
        unit=None,
        county_code=county,
        role_enum=Role.ADMIN,
    )
    args = MultiDict({k: v for k, v in {"area": area, "month": month, "as_of": as_of}.items() if v})
    try:
        report = exports.parse_month_request(session, operator, args)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    out.write_bytes(exports.monthly_workbook(session, report))
    audit.record(
        session,
        "export",
        None,
        username="flask stats",
        detail={"kind": "monthly_report", **report.echo(), "file": str(out)},
    )
    session.commit()
    click.echo(f"已写入 {out}")


@stats_cli.command("tallies")
@click.option("--rebuild", is_flag=True, help="从案件重新计算全部汇总（锁定案件表直至完成）")
def tallies_command(rebuild):
    """Check the case and heat tallies against the cases (or recompute them with --rebuild)."""
    session = get_session()
    if rebuild:
        rows, heat_rows = tallies.rebuild(session)
        session.commit()
        click.echo(f"已重新计算案件汇总：{rows} 行；热力汇总：{heat_rows} 行")
        return
    wrong = tallies.differences(session)
    session.rollback()
    if wrong:
        for row in wrong:
            if "category_id" in row:
                where = f"{row['village_code']} 类别 {row['category_id']}"
            else:  # a grid's tally, or a heat cell (coarse ones name only the county)
                where = row["grid_code"] or row["county_code"]
            click.echo(f"{row['tally']} {row['side']}: {where} {row['month']} 案件 {row['cases']}")
        raise click.ClickException("案件汇总与案件不一致：请运行 flask stats tallies --rebuild")
    click.echo("案件汇总与案件一致")


def init_app(app: Flask) -> None:
    value = os.environ.get("GRIDCASE_STATS_BACKLOG_YEARS")
    if value is not None:
        if not value.strip().isdigit() or not 1 <= int(value) <= 30:
            raise RuntimeError("GRIDCASE_STATS_BACKLOG_YEARS must be a whole number from 1 to 30")
        app.config["STATS_BACKLOG_YEARS"] = int(value)
    app.config.setdefault("STATS_BACKLOG_YEARS", F.DEFAULT_BACKLOG_YEARS)
    app.cli.add_command(stats_cli)
