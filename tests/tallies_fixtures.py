"""What the tally tests share: a new case in a grid, and the walk of a case through the workflow.

``tests/test_case_tallies.py`` and ``tests/test_heat_tallies.py`` check the tallies
after each kind of write; the workflow's actions are one kind, taken here in the order
a case lives them (registered, accepted, assigned, handled, concluded, followed up,
resolved).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import text

from webapp.cases import queries as cq
from webapp.cases.vocab import Channel


def new_case(session, grid_code: str, **kw) -> int:
    """Register one case through the app's own insert, at the grid's label point unless
    ``lon``/``lat`` say otherwise (category 1 and channel ``visit`` unless given)."""
    lon, lat = session.execute(
        text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"),
        {"c": grid_code},
    ).one()
    stored = cq.insert_case(
        session,
        cq.NewCase(
            title="汇总测试：邻里纠纷",
            category_id=kw.pop("category_id", 1),
            channel=Channel(kw.pop("channel", "visit")),
            lon=kw.pop("lon", lon),
            lat=kw.pop("lat", lat),
            **kw,
        ),
    )
    return stored.id


# Each action of the walk and its inputs, in order.
WORKFLOW_WALK: tuple[tuple[str, dict], ...] = (
    ("accept", {}),
    ("assign", {"unit": "城关镇人民政府", "level": "township"}),
    ("start", {}),
    ("conclude", {"opinion": "support", "text": "予以支持"}),
    ("follow_up", {"satisfaction": "satisfied"}),
    ("resolve", {"level": "village"}),
)


def walk_workflow(
    session, user, case_ids: Iterable[int], rules, after_each: Callable[[], None] | None = None
) -> None:
    """Take every case of ``case_ids`` through :data:`WORKFLOW_WALK` as ``user``.

    Each action is applied to every case (with the case's current version) before the
    next; ``after_each`` is called after each action.
    """
    case_ids = list(case_ids)
    for action, inputs in WORKFLOW_WALK:
        for case_id in case_ids:
            version = session.execute(
                text("SELECT version FROM cases WHERE id = :i"), {"i": case_id}
            ).scalar_one()
            cq.apply_action(session, user, case_id, version, action, inputs, rules)
        if after_each is not None:
            after_each()
