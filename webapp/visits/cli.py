"""``flask visits ...``: measuring how long a large plan takes to make."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import text

from webapp.auth.models import User
from webapp.db import get_session
from webapp.roads import cli as roads_cli
from webapp.visits import planning, queries
from webapp.visits.settings import visit_settings

visits_cli = AppGroup("visits", help="入户走访 (door-to-door visits).")


@visits_cli.command("bench")
@click.option(
    "--stops",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="目标走访点数（计划容量）",
)
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 31))
@click.option("--area", default=None, help="区划代码（默认整个县）")
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(1, 20),
    help="重复次数（首次含进程缓存的预热，如 Gi* 邻接关系）",
)
def bench_command(stops: int, days: int, area: str | None, repeat: int) -> None:
    """Make a county plan of about STOPS stops with one leader per township; report the time.

    Everything happens in a transaction that is rolled back: nothing is stored. With
    ``--repeat`` the plan is made again in a new transaction each time; the first run
    of a process also fills its caches (Gi* neighbours), as a server's first plan does.
    """
    for _ in range(repeat):
        _bench_once(stops, days, area)


def _bench_once(stops: int, days: int, area: str | None) -> None:
    session = get_session()
    county = area or current_app.config["COUNTY_CODE"]
    try:
        townships = (
            session.execute(
                text(
                    "SELECT code FROM areas WHERE level = 'township' AND code LIKE :p ORDER BY code"
                ),
                {"p": county[:9] + "%"},
            )
            .scalars()
            .all()
        )
        if not townships:
            raise click.ClickException(f"区划 {county} 下没有乡镇")
        capacity = min(200, math.ceil(stops / len(townships) / days))
        ids = (
            session.execute(
                text(
                    """
                INSERT INTO users (username, display_name, role, area_code, password_hash)
                SELECT 'bench_' || code, '测试乡镇领导 ' || name, 'township_leader', code, '!'
                FROM areas WHERE code = ANY(:codes)
                RETURNING id
                """
                ),
                {"codes": list(townships)},
            )
            .scalars()
            .all()
        )
        planner = session.execute(
            text(
                "INSERT INTO users (username, display_name, role, area_code, password_hash) "
                "VALUES ('bench_planner', '测试研判', 'planner', :c, '!') RETURNING id"
            ),
            {"c": county[:6]},
        ).scalar_one()
        user = session.get(User, planner)
        cfg = visit_settings(current_app.config)
        today = queries.local_today(session)
        req = planning.PlanRequest(
            "性能测试",
            county,
            today,
            today + timedelta(days=days - 1),
            tuple(planning.PersonRequest(i, capacity) for i in ids),
            cfg.weights,
        )
        t0 = time.perf_counter()
        plan = planning.make_plan(session, user, req, cfg)
        elapsed = time.perf_counter() - t0
        counts = session.execute(
            text(
                "SELECT count(*) FILTER (WHERE user_id IS NOT NULL), count(*) FROM visit_stops "
                "WHERE plan_id = :p"
            ),
            {"p": plan.id},
        ).one()
        click.echo(
            f"计划 {len(ids)} 人 × {days} 天 × 每日 {capacity}：已分配 {counts[0]} 个走访点"
            f"（候选 {counts[1] + plan.overflow} 个），用时 {elapsed:.2f} 秒"
        )
    finally:
        session.rollback()


def init_app(app: Flask) -> None:
    app.cli.add_command(visits_cli)
    # The road layers routes follow: ``roads`` is not in webapp.FEATURES, so its
    # commands come in with the feature that uses them.
    roads_cli.init_app(app)
