"""``flask demo load``: the demo county with synthetic cases."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from webapp.db import get_session
from webapp.demo import accounts, loader
from webapp.grid.importer import ImportRejected
from webapp.progress import TerminalProgress, commit_or_exit
from webapp.roads.importer import RoadImportRejected

# The loader's stages (cases.bulk timings), as the command reports them.
STAGE_NAMES = {
    "generate": "生成",
    "generate_rest": "等待其余列生成",
    "copy": "写入暂存表",
    "duplicates": "查重",
    "index": "暂存点索引",
    "join": "空间匹配",
    "place": "编号",
    "analyze": "统计信息",
    "drop_indexes": "拆除索引",
    "insert": "写入案件表",
    "rebuild_indexes": "重建索引",
    "tallies": "统计汇总",
    # Computed in a second session while the stages above ran: not on top of them.
    "tallies_beside": "统计汇总（另一会话同时计算）",
    "finish": "收尾",
    "events": "办理记录",
}

HISTORY_NOTE = {
    "all": "",
    "open": "（只为未办结案件生成；全部生成请加 --events all，约需两分钟/百万件）",
    "none": "（未生成）",
}

demo_cli = AppGroup("demo", help="演示县 (the demo county).")


@demo_cli.command("load")
@click.option("--cases", "n", default=5000, show_default=True, type=click.IntRange(0, 5_000_000))
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--if-empty", is_flag=True, help="只在尚无案件时加载案件（make run 用）")
@click.option(
    "--events",
    type=click.Choice(["auto", "all", "open", "none"]),
    default="auto",
    show_default=True,
    help=f"为哪些案件生成办理记录：auto = 不超过 {loader.FULL_HISTORY_MAX} 件时全部，否则只为未办结案件；"
    "all 全部；open 只为未办结案件；none 不生成",
)
@click.option("--no-events", is_flag=True, help="不生成办理记录（同 --events none）")
def load_command(n, seed, if_empty, events, no_events):
    """Load the demo county (延津县 outline, fictional areas) and N synthetic cases."""
    events = "none" if no_events else events
    session = get_session()
    passwords = accounts.DemoPasswords.for_missing(session)  # hashed in a thread meanwhile
    created: dict[str, str] = {}
    progress = TerminalProgress()
    t0 = time.perf_counter()
    reports = commit_or_exit(
        session,
        progress,
        lambda: loader.load_boundaries(session, progress=progress),
        ImportRejected,
    )
    for r in reports:
        click.echo(
            f"{r.level}: {r.features} 个（新增 {r.inserted}，更新 {r.updated}，未变化 {r.unchanged}）"
        )
    if if_empty and loader.road_count(session):
        click.echo("已有道路图层，不再加载演示道路。")
    else:
        roads = commit_or_exit(
            session,
            progress,
            lambda: loader.load_roads(session, progress=progress),
            RoadImportRejected,
        )
        click.echo("演示道路：" + "；".join(roads.lines()[1:]))
    steps = {"区划与道路": time.perf_counter() - t0}
    existing = loader.case_count(session)
    if existing and if_empty:
        click.echo(f"已有 {existing} 个案件，不再加载演示案件。")
        n = 0
    if n:
        t1 = time.perf_counter()
        result, written, spots = loader.load_cases(
            session, n, seed, progress=progress, events=events
        )
        t2 = time.perf_counter()
        # In the load's transaction: one commit, and no reader of the new rows before it.
        created = accounts.create_demo_accounts(session, loader.DEMO_COUNTY, passwords)
        t3 = time.perf_counter()
        session.commit()
        progress.close()
        steps["生成与入库"] = t2 - t1
        steps["演示账号"] = t3 - t2
        steps["提交"] = time.perf_counter() - t3
        click.echo(
            f"演示案件：{result.inserted} 个已入库（边界上 {result.on_border} 个），"
            f"{len(result.outside)} 个在县外被排除；办理记录 {written} 条"
            + HISTORY_NOTE[loader.history_for(n, events)]
        )
        for s in spots:
            click.echo(f"  热点「{s.name}」：网格 {s.grid_code}")
        click.echo(
            "  入库各步用时："
            + "，".join(f"{STAGE_NAMES.get(k, k)} {v:.1f} 秒" for k, v in result.timings.items())
        )
    if not n:  # else made in the load's transaction, above
        t3 = time.perf_counter()
        created = accounts.create_demo_accounts(session, loader.DEMO_COUNTY, passwords)
        session.commit()
        steps["演示账号"] = time.perf_counter() - t3
    path = Path(current_app.config["VAR_DIR"]) / "demo-accounts.txt"
    if created:
        accounts.write_passwords(path, created)
    click.echo(f"演示账号（每个角色一个）的用户名和密码见 {path}")
    parts = "，".join(f"{k} {v:.1f} 秒" for k, v in steps.items())
    click.echo(f"完成，用时 {time.perf_counter() - t0:.1f} 秒（{parts}）。")


def init_app(app: Flask) -> None:
    app.cli.add_command(demo_cli)
