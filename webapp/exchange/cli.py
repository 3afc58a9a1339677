"""``flask cases ...``: import a ledger (台账) of cases from Excel or CSV."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from webapp.auth.accounts import get_user
from webapp.db import get_session
from webapp.exchange.importer import check_ledger, import_ledger
from webapp.exchange.ledger import CRS_WORDS, LedgerUnreadable, normalise
from webapp.progress import TerminalProgress

cases_cli = AppGroup("cases", help="案件 (cases): 台账导入 (ledger import).")


@cases_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="只检查并报告每一行，不写入")
@click.option(
    "--crs",
    default="wgs84",
    show_default=True,
    help="没有“坐标系”列时经纬度的坐标系：wgs84、cgcs2000、gcj02",
)
@click.option("--user", "username", help="记为导入人的用户名（写入办理记录）")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="把逐行结果写入 CSV 文件",
)
@click.option("--all-rows", is_flag=True, help="终端上也列出可导入的行")
def import_command(
    file: Path,
    dry_run: bool,
    crs: str,
    username: str | None,
    report_path: Path | None,
    all_rows: bool,
):
    """Import the cases of a ledger FILE (.xlsx or .csv); the good rows in one transaction."""
    crs_name = CRS_WORDS.get(normalise(crs))
    if crs_name is None:
        click.echo(f"错误：不支持的坐标系 {crs}（可用 wgs84、cgcs2000、gcj02）", err=True)
        sys.exit(2)
    session = get_session()
    user = None
    if username:
        user = get_user(session, username)
        if user is None:
            click.echo(f"错误：用户 {username} 不存在", err=True)
            sys.exit(2)
    progress = TerminalProgress()
    try:
        if dry_run:
            county = user.county_code if user else None
            report = check_ledger(session, file, crs_name, progress=progress, county=county)
            session.rollback()
        else:
            report = import_ledger(session, file, user, default_crs=crs_name, progress=progress)
            session.commit()
    except LedgerUnreadable as exc:
        session.rollback()
        progress.close()
        click.echo(f"错误：{exc}", err=True)
        sys.exit(1)
    progress.close()
    click.echo("\n".join(report.lines(only_problems=not all_rows)))
    if report_path:
        report_path.write_bytes(report.csv_bytes())
        click.echo(f"逐行结果已写入 {report_path}")


def init_app(app: Flask) -> None:
    app.cli.add_command(cases_cli)
