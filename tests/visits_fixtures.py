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


def standalone_cases(
    session, grid: str, n: int, statuses: tuple[str, ...] | None = None
) -> list[int]:
    """``n`` cases of ``grid`` that stand alone: no repeat of another, none repeating them.

    Without ``statuses``: live cases (not resolved, closed or not accepted). The demo data
    is made relative to now, so which cases head a repeat chain changes with the hour; a
    test that needs one household per case picks cases that stand alone, never by position.
    """
    status = "status = ANY(:s)" if statuses else f"status NOT IN {LIVE}"
    ids = (
        session.execute(
            text(
                f"SELECT id FROM cases WHERE grid_code = :g AND {status} "
                "AND repeat_of_id IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM cases r WHERE r.repeat_of_id = cases.id) "
                "ORDER BY id LIMIT :n"
            ),
            {"g": grid, "n": n, "s": list(statuses or ())},
        )
        .scalars()
        .all()
    )
    assert len(ids) == n, f"grid {grid} has {len(ids)} standalone cases, the test needs {n}"
    return list(ids)


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


@pytest.fixture
def in_browser(browser):
    """Run ``scenario(page)`` on a fresh page: ``in_browser(live_server, scenario, phone=False)``.

    The page is the harness's (tests.browser.open_page): zh-CN, Shanghai time, every
    request to another origin blocked and recorded in ``page.blocked``, failures in
    ``page.failed``, console errors in ``page.console_errors``; phone size with ``phone``.
    """
    from tests.browser import PHONE, open_page

    def run(live_server: str, scenario, phone: bool = False) -> None:
        page = open_page(browser, live_server, **(PHONE if phone else {}))
        try:
            scenario(page)
        finally:
            page.context.close()

    return run
