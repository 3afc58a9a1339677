"""Shared fixtures of the security tests: each role's own and foreign cases, areas and photos.

``targets(role)`` signs the test client in as a new account of ``role`` and builds,
inside the test's transaction, the nearest things inside and just outside its area:

| role | in | out |
|---|---|---|
| grid worker | a case in its grid | a case in another grid of the same village |
| village informant | a case in its village | a case in another village of the township |
| township leader | a case in its township | a case in another township |
| leader in charge | a case it is in charge of | a case beside it, in charge of nobody |
| county roles | a case in the county | a case in another county (990100) |

each with a photo, and the matching area codes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import func, text

from tests.cases_fixtures import *  # noqa: F403
from tests.conftest import CSRF
from tests.field_fixtures import image_bytes, photo_dir  # noqa: F401

ROLES = [
    "grid_worker",
    "village_informant",
    "township_leader",
    "county_staff",
    "leader_in_charge",
    "planner",
    "admin",
]


@dataclass
class Targets:
    role: str
    user: object
    token: str
    case_in: object
    case_out: object
    area_in: str
    area_out: str
    photo_in: int
    photo_out: int
    marker_out: str  # a text only the foreign case carries: must never reach this user
    import_id: int
    plan_in: int = 0  # a published visit plan of the area, with a stop given to the user
    plan_out: int = 0  # one of the area outside, with a stop given to nobody
    stop_in: int = 0
    stop_out: int = 0


def _sibling(session, parent_len: int, code: str, level: str) -> str:
    """Another area of ``level`` under the same parent (first ``parent_len`` digits) as ``code``."""
    return session.execute(
        text(
            "SELECT code FROM areas WHERE level = :lv AND left(code, :n) = left(:c, :n) "
            "AND code <> left(:c, length(code)) ORDER BY code LIMIT 1"
        ),
        {"lv": level, "n": parent_len, "c": code},
    ).scalar_one()


def _grid_under(session, code: str) -> str:
    return session.execute(
        text("SELECT code FROM areas WHERE level = 'grid' AND code LIKE :p ORDER BY code LIMIT 1"),
        {"p": code + "%"},
    ).scalar_one()


@pytest.fixture
def targets(
    session, login, demo_areas, make_case, other_county_case, photo_dir, app, tmp_path, monkeypatch
):
    """targets(role) -> Targets, with the test client signed in as that role."""
    monkeypatch.setitem(app.config, "EXCHANGE_DIR", str(tmp_path / "imports"))
    from webapp.auth.accounts import issue_token
    from webapp.exchange import jobs
    from webapp.exchange.models import LedgerImport
    from webapp.field.photos import PhotoLimits, store_photo
    from webapp.field.queries import add_photo
    from webapp.visits.models import VisitPlan, VisitPlanPerson, VisitStop

    def build(role: str) -> Targets:
        user = login(role)
        token = issue_token(session, user, "matrix")
        grid = demo_areas["grid_worker"]
        marker = f"越界标记{uuid.uuid4().hex[:10]}"
        case_in = make_case(grid, title="本辖区案件")
        if role == "grid_worker":
            area_in, area_out = grid, _sibling(session, 12, grid, "grid")
            case_out = make_case(area_out, title=marker)
        elif role == "village_informant":
            area_in = grid[:12]
            area_out = _sibling(session, 9, area_in, "village")
            case_out = make_case(_grid_under(session, area_out), title=marker)
        elif role == "township_leader":
            area_in = grid[:9]
            area_out = _sibling(session, 6, area_in, "township")
            case_out = make_case(_grid_under(session, area_out), title=marker)
        elif role == "leader_in_charge":
            area_in, area_out = user.area_code, "990100"
            case_in.leader_id = user.id
            case_out = make_case(grid, title=marker)
        else:
            area_in, area_out = user.area_code, "990100"
            case_out = other_county_case
            case_out.title = marker
        for c in (case_in, case_out):
            c.client_id = uuid.uuid4()
        session.flush()
        limits = PhotoLimits(max_bytes=10 << 20, max_pixels=60_000_000, stored_side=2560)
        photos = []
        for case in (case_in, case_out):
            stored = store_photo(photo_dir, image_bytes(), limits)
            photo, _ = add_photo(session, user, case.id, uuid.uuid4(), stored)
            photos.append(photo.id)
        imp = LedgerImport(
            user_id=user.id,
            filename="台账.csv",
            sha256="0" * 64,
            crs="EPSG:4326",
            state="checked",
        )
        session.add(imp)
        session.flush()
        with app.app_context():
            jobs.report_path(imp).write_text("行号,状态\n", encoding="utf-8")
        plans, stops = [], []
        today = session.execute(
            text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")
        ).scalar_one()
        for area, case, assignee in ((area_in, case_in, user.id), (area_out, case_out, None)):
            plan = VisitPlan(
                title="走访计划",
                area_code=area,
                date_from=today,
                date_to=today,
                status="published",
                weights={},
                created_by=user.id,
                published_at=func.now(),
            )
            session.add(plan)
            session.flush()
            stop = VisitStop(
                plan_id=plan.id,
                kind="grid",
                grid_code=case.grid_code,
                score=1.0,
                reasons=[],
                location=case.location,
                user_id=assignee,
                day=today if assignee else None,
                seq=1 if assignee else None,
                unassigned_reason=None if assignee else "无人可派",
            )
            session.add(stop)
            if assignee:
                session.add(
                    VisitPlanPerson(
                        plan_id=plan.id,
                        user_id=assignee,
                        daily_capacity=5,
                        start_point=case.location,
                        start_label="村委会",
                    )
                )
            session.flush()
            plans.append(plan.id)
            stops.append(stop.id)
        return Targets(
            role,
            user,
            token,
            case_in,
            case_out,
            area_in,
            area_out,
            photos[0],
            photos[1],
            marker,
            imp.id,
            plans[0],
            plans[1],
            stops[0],
            stops[1],
        )

    return build


def form(**fields) -> dict:
    """A form body carrying the session's CSRF token."""
    return {"csrf_token": CSRF, **fields}
