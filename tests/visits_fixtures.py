"""Shared fixtures and helpers for the door-to-door visit tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, text

from webapp.visits import planning, queries
from webapp.visits.settings import visit_settings
from webapp.visits.targeting import DEFAULT_WEIGHTS, Weights

LIVE = "('resolved','closed','not_accepted')"

# The fixtures a test module gets with ``from tests.visits_fixtures import *``.
__all__ = ["busy_places", "busy_place"]


@dataclass(frozen=True)
class BusyPlace:
    """A village of the demo county with many live cases, and its busiest grid."""

    township: str
    village: str
    grid: str
    other_grid: str  # another grid of the same village with live cases


def _busy_places(template_url: str) -> list[BusyPlace]:
    engine = create_engine(template_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"""
                SELECT village_code, grid_code, count(*) AS n FROM cases
                WHERE status NOT IN {LIVE}
                GROUP BY village_code, grid_code
                """
            )
        ).all()
    engine.dispose()
    by_village: dict[str, list[tuple[str, int]]] = {}
    for v, g, n in rows:
        by_village.setdefault(v, []).append((g, n))
    villages = sorted(
        (v for v, gs in by_village.items() if len(gs) >= 2),
        key=lambda v: (-sum(n for _, n in by_village[v]), v),
    )
    out = []
    for village in villages:
        grids = sorted(by_village[village], key=lambda gn: (-gn[1], gn[0]))
        out.append(BusyPlace(village[:9], village, grids[0][0], grids[1][0]))
    return out


@pytest.fixture(scope="session")
def busy_places(template_url) -> list[BusyPlace]:
    """Villages with many live cases in at least two grids, busiest first."""
    return _busy_places(template_url)


@pytest.fixture(scope="session")
def busy_place(busy_places) -> BusyPlace:
    return busy_places[0]


def default_weights() -> Weights:
    return Weights({k.value: v for k, v in DEFAULT_WEIGHTS.items()})


def settings_for(app, **overrides):
    cfg = dict(app.config)
    cfg.update(overrides)
    return visit_settings(cfg)


def new_plan(
    session,
    app,
    planner,
    area: str,
    people: list[tuple[int, int]],
    days: int = 3,
    start: tuple[float, float] | None = None,
    weights: Weights | None = None,
    first: date | None = None,
    **settings_overrides,
):
    """Make a draft plan through the real code path; people are (user id, capacity)."""
    today = queries.local_today(session)
    first = first or today
    req = planning.PlanRequest(
        title="测试走访计划",
        area_code=area,
        date_from=first,
        date_to=first + timedelta(days=days - 1),
        people=tuple(planning.PersonRequest(u, c) for u, c in people),
        weights=weights or default_weights(),
        start=start,
    )
    return planning.make_plan(session, planner, req, settings_for(app, **settings_overrides))


def stops_of(session, plan_id: int):
    return session.execute(
        text(
            """
            SELECT s.id, s.kind, s.case_id, s.grid_code, s.user_id, s.day, s.seq, s.state, s.leg_m,
                   s.follow_up, s.score, c.township_code, c.village_code
            FROM visit_stops s LEFT JOIN cases c ON c.id = s.case_id
            WHERE s.plan_id = :p ORDER BY s.user_id NULLS LAST, s.day, s.seq, s.id
            """
        ),
        {"p": plan_id},
    ).all()


def in_browser(live_server: str, scenario, phone: bool = False, timeout_s: float = 300) -> None:
    """Run ``scenario(page)`` in a fresh chromium, driven from a thread of its own.

    The page is set up as the harness's ``page`` fixture sets it up (zh-CN, Shanghai
    time, every request to another origin blocked and recorded in ``page.blocked``,
    failures in ``page.failed``, console errors in ``page.console_errors``; phone size
    with ``phone``). Why a thread: Playwright's sync API allows one instance per thread,
    and ``tests/browser.py``'s session fixtures, star-imported into several modules, make
    one instance per module, so a second browser test module cannot start its own in
    the main thread while the first module's is alive.
    """
    import threading

    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, PHONE

    errors: list[BaseException] = []

    def run() -> None:
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    options = dict(locale="zh-CN", timezone_id="Asia/Shanghai")
                    if phone:
                        options.update(PHONE)
                    context = browser.new_context(base_url=live_server, **options)
                    context.set_default_timeout(15_000)
                    page = context.new_page()
                    page.blocked, page.failed, page.console_errors = [], [], []

                    def route(r):
                        url = r.request.url
                        if url.startswith(live_server) or url.startswith(("data:", "blob:")):
                            r.continue_()
                        else:
                            page.blocked.append(url)
                            r.abort()

                    context.route("**/*", route)
                    page.on("requestfailed", lambda req: page.failed.append((req.url, req.failure)))
                    page.on(
                        "console",
                        lambda msg: (
                            page.console_errors.append(msg.text) if msg.type == "error" else None
                        ),
                    )
                    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
                    scenario(page)
                    context.close()
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised in the test's own thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="visits-browser")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"browser scenario still running after {timeout_s} s")
    if errors:
        raise errors[0]
