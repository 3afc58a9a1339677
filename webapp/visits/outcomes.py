"""Recording what a visit found: once per client id, with its effects in one transaction.

The phone makes an id for every submission and resends it until the server answers;
``visit_records.client_id`` is unique and the insert is ``ON CONFLICT DO NOTHING``, so
a resend (or two racing copies of one) records the outcome once, and only the copy
that inserted the row has effects:

- the stop takes the outcome as its state;
- a follow-up (回访) recorded as done sets ``cases.satisfaction`` and appends a
  ``case_events`` row ``follow_up`` with the satisfaction in ``data``;
- a new problem found becomes a new case (``cases.queries.insert_case``; channel
  ``leader`` for leaders, ``grid_sweep`` for grid workers) whose client id is derived
  from the visit's, linked from the visit record.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.auth.models import User
from webapp.auth.roles import Role
from webapp.cases.models import Category
from webapp.cases.queries import NewCase, insert_case
from webapp.cases.vocab import Channel, Satisfaction
from webapp.errors import AppError, NotFound
from webapp.grid.queries import locate
from webapp.visits.models import Outcome, VisitRecord

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# The namespace of the ids of cases opened from visits (uuid5 of the visit's client id).
NEW_CASE_NAMESPACE = uuid.UUID("6f1c2b0e-4f57-4d1e-9a51-0c7a11f0d2a4")
LEADER_ROLES = frozenset(
    {Role.LEADER_IN_CHARGE, Role.TOWNSHIP_LEADER, Role.COUNTY_STAFF, Role.ADMIN}
)


@dataclass(frozen=True)
class NewProblem:
    title: str
    category_id: int
    description: str = ""
    people_count: int = 1


@dataclass(frozen=True)
class OutcomeInput:
    client_id: uuid.UUID
    outcome: Outcome
    satisfaction: Satisfaction | None = None
    note: str = ""
    lon: float | None = None
    lat: float | None = None
    visited_at: datetime | None = None
    problem: NewProblem | None = None


@dataclass(frozen=True)
class Recorded:
    visit_id: int
    stop_id: int
    created: bool  # False: this client id was recorded before (a resend)
    outcome: str
    new_case_id: int | None = None
    new_case_number: str | None = None

    def as_dict(self) -> dict:
        return {
            "visit_id": self.visit_id,
            "stop_id": self.stop_id,
            "created": self.created,
            "outcome": self.outcome,
            "new_case_number": self.new_case_number,
        }


def _text(data: Mapping, key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()


def parse_outcome(data: Mapping, now: datetime) -> OutcomeInput:
    """Read an outcome from a form or JSON body; refuse with the problems named in Chinese."""
    problems: dict[str, str] = {}
    try:
        client_id = uuid.UUID(str(data.get("client_id") or ""))
    except ValueError:
        client_id = uuid.UUID(int=0)
        problems["client_id"] = "缺少提交编号（client_id），请刷新页面后重试"
    try:
        outcome = Outcome(str(data.get("outcome") or ""))
    except ValueError:
        outcome = Outcome.DONE
        problems["outcome"] = "请选择走访结果：已走访、无人在家或拒绝接访"
    satisfaction = None
    if data.get("satisfaction"):
        try:
            satisfaction = Satisfaction(str(data.get("satisfaction")))
        except ValueError:
            problems["satisfaction"] = "满意度只能是满意、基本满意或不满意"
    note = _text(data, "note")
    if len(note) > 2000:
        problems["note"] = "走访情况不超过 2000 字"
    lon = lat = None
    if data.get("lon") not in (None, "") or data.get("lat") not in (None, ""):
        try:
            lon, lat = float(data.get("lon")), float(data.get("lat"))  # type: ignore[arg-type]
            if not (
                math.isfinite(lon)
                and math.isfinite(lat)
                and -180 <= lon <= 180
                and -90 <= lat <= 90
            ):
                raise ValueError
        except (TypeError, ValueError):
            lon = lat = None
            problems["location"] = "定位坐标无效"
    visited_at = _visited_at(data.get("visited_at"), now)
    problem = _parse_problem(data, problems)
    if problems:
        raise AppError(
            "invalid_outcome", "；".join(problems.values()), 400, "invalid outcome", problems
        )
    return OutcomeInput(client_id, outcome, satisfaction, note, lon, lat, visited_at, problem)


def _visited_at(raw: object, now: datetime) -> datetime | None:
    """When the phone says the visit happened; dropped (not refused) if the phone's clock
    is clearly off, since a queued outcome must never fail for that."""
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=LOCAL_TZ)
    if at > now + timedelta(hours=1) or at < now - timedelta(days=60):
        return None
    return at


def _parse_problem(data: Mapping, problems: dict[str, str]) -> NewProblem | None:
    raw = data.get("problem")
    if isinstance(raw, Mapping):
        fields = raw
    elif data.get("problem_title") or data.get("new_problem") in ("1", "on", True):
        fields = {
            "title": data.get("problem_title"),
            "category_id": data.get("problem_category"),
            "description": data.get("problem_description"),
            "people_count": data.get("problem_people"),
        }
    else:
        return None
    title = _text(fields, "title")
    if not title:
        problems["problem_title"] = "请填写新发现问题的标题"
    elif len(title) > 200:
        problems["problem_title"] = "问题标题不超过 200 字"
    try:
        category_id = int(fields.get("category_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        category_id = 0
        problems["problem_category"] = "请选择新发现问题的类别"
    description = _text(fields, "description")
    if len(description) > 4000:
        problems["problem_description"] = "问题描述不超过 4000 字"
    try:
        people = int(fields.get("people_count") or 1)
        if not 1 <= people <= 10000:
            raise ValueError
    except (TypeError, ValueError):
        people = 1
        problems["problem_people"] = "涉及人数须为正整数"
    return NewProblem(title, category_id, description, people)


def _existing(session: Session, client_id: uuid.UUID) -> VisitRecord | None:
    return session.scalar(select(VisitRecord).where(VisitRecord.client_id == client_id))


def _as_recorded(session: Session, rec: VisitRecord, created: bool) -> Recorded:
    number = None
    if rec.new_case_id is not None:
        number = session.execute(
            text("SELECT number FROM cases WHERE id = :i"), {"i": rec.new_case_id}
        ).scalar()
    return Recorded(rec.id, rec.stop_id, created, rec.outcome, rec.new_case_id, number)


def _check_same_submission(rec: VisitRecord, user: User, stop_id: int) -> None:
    """A client id belongs to one submission: the same person's outcome for the same stop."""
    if rec.user_id != user.id or rec.stop_id != stop_id:
        raise AppError(
            "client_id_reused",
            "提交编号已被其他记录使用，请刷新页面后重新填写",
            409,
            "client id used by another record",
        )


def record_outcome(session: Session, user: User, stop_id: int, inp: OutcomeInput) -> Recorded:
    """Record a visit outcome for ``user``'s stop; a known client id returns the first record.

    The stop must be the user's, on a published plan (otherwise 404, as if missing).
    Flushes, never commits.
    """
    earlier = _existing(session, inp.client_id)
    if earlier is not None:
        _check_same_submission(earlier, user, stop_id)
        return _as_recorded(session, earlier, created=False)
    stop = session.execute(
        text(
            """
            SELECT s.id, s.plan_id, s.kind, s.case_id, s.grid_code, s.follow_up,
                   ST_X(s.location) AS lon, ST_Y(s.location) AS lat
            FROM visit_stops s JOIN visit_plans p ON p.id = s.plan_id
            WHERE s.id = :id AND s.user_id = :u AND p.status = 'published'
            """
        ),
        {"id": stop_id, "u": user.id},
    ).first()
    if stop is None:
        raise NotFound("走访点", "no such stop on a published plan of yours")
    _check_satisfaction(stop.follow_up, inp)
    if inp.problem is not None:
        category = session.get(Category, inp.problem.category_id)
        if category is None or not category.active:
            raise AppError("invalid_category", "新发现问题的类别无效", 400, "unknown category")
    row = session.execute(
        text(
            """
            INSERT INTO visit_records (client_id, stop_id, plan_id, case_id, grid_code,
                user_id, outcome,
                                       satisfaction, note, location, visited_at)
            VALUES (:client_id, :stop_id, :plan_id, :case_id, :grid_code, :user_id, :outcome,
                    :satisfaction, :note,
                    CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                         ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END,
                    :visited_at)
            ON CONFLICT (client_id) DO NOTHING
            RETURNING id
            """
        ),
        {
            "client_id": inp.client_id,
            "stop_id": stop.id,
            "plan_id": stop.plan_id,
            "case_id": stop.case_id,
            "grid_code": stop.grid_code,
            "user_id": user.id,
            "outcome": inp.outcome.value,
            "satisfaction": inp.satisfaction.value if inp.satisfaction else None,
            "note": inp.note,
            "lon": inp.lon,
            "lat": inp.lat,
            "visited_at": inp.visited_at,
        },
    ).first()
    if row is None:  # a concurrent copy of this submission committed first
        earlier = _existing(session, inp.client_id)
        _check_same_submission(earlier, user, stop_id)  # type: ignore[arg-type]
        return _as_recorded(session, earlier, created=False)  # type: ignore[arg-type]
    visit_id = row.id
    session.execute(
        text("UPDATE visit_stops SET state = :o, updated_at = now() WHERE id = :id"),
        {"o": inp.outcome.value, "id": stop.id},
    )
    if stop.follow_up and inp.outcome is Outcome.DONE and stop.case_id is not None:
        _write_follow_up(session, user, stop, visit_id, inp)
    new_case = None
    if inp.problem is not None:
        new_case = _open_case(session, user, stop, visit_id, inp)
    session.flush()
    return Recorded(visit_id, stop.id, True, inp.outcome.value, *(new_case or (None, None)))


def _check_satisfaction(follow_up: bool, inp: OutcomeInput) -> None:
    if inp.outcome is Outcome.DONE and follow_up and inp.satisfaction is None:
        raise AppError(
            "satisfaction_required", "回访已完成，请选择群众满意度", 400, "satisfaction required"
        )
    if inp.satisfaction is not None and not (follow_up and inp.outcome is Outcome.DONE):
        raise AppError(
            "satisfaction_not_applicable",
            "只有完成的回访需要填写满意度",
            400,
            "satisfaction only for a done follow-up",
        )


def _write_follow_up(session: Session, user: User, stop, visit_id: int, inp: OutcomeInput) -> None:
    """Set the case's satisfaction and append the follow_up event (the minimal write)."""
    sat = inp.satisfaction.value  # type: ignore[union-attr]
    session.execute(
        text(
            "UPDATE cases SET satisfaction = :s, version = version + 1, updated_at = now() "
            "WHERE id = :id"
        ),
        {"s": sat, "id": stop.case_id},
    )
    session.execute(
        text(
            """
            INSERT INTO case_events (case_id, action, actor_id, actor_name, from_status,
                to_status, note, data)
            SELECT c.id, 'follow_up', :uid, :uname, c.status, c.status, :note, CAST(:data AS jsonb)
            FROM cases c WHERE c.id = :id
            """
        ),
        {
            "id": stop.case_id,
            "uid": user.id,
            "uname": user.display_name,
            "note": inp.note or f"入户回访：{Satisfaction(sat).label}",
            "data": _json(
                {
                    "satisfaction": sat,
                    "method": "visit",
                    "visit_id": visit_id,
                    "plan_id": stop.plan_id,
                    "stop_id": stop.id,
                }
            ),
        },
    )


def _open_case(
    session: Session, user: User, stop, visit_id: int, inp: OutcomeInput
) -> tuple[int, str]:
    """Open a case for the new problem at the phone's position (if in the county) or the stop's."""
    problem = inp.problem
    assert problem is not None
    lon, lat, approx = stop.lon, stop.lat, True
    if inp.lon is not None and locate(session, inp.lon, inp.lat) is not None:
        lon, lat, approx = inp.lon, inp.lat, False
    channel = Channel.LEADER if user.role_enum in LEADER_ROLES else Channel.GRID_SWEEP
    stored = insert_case(
        session,
        NewCase(
            title=problem.title,
            category_id=problem.category_id,
            channel=channel,
            lon=lon,
            lat=lat,
            description=problem.description,
            people_count=problem.people_count,
            location_approx=approx,
            reported_at=inp.visited_at,
            client_id=uuid.uuid5(NEW_CASE_NAMESPACE, str(inp.client_id)),
        ),
    )
    if stored.created:
        session.execute(
            text("UPDATE cases SET reporter_id = :u WHERE id = :id"),
            {"u": user.id, "id": stored.id},
        )
        session.execute(
            text(
                """
                INSERT INTO case_events (case_id, action, actor_id, actor_name, from_status,
                    to_status, note, data)
                VALUES (:id, 'register', :uid, :uname, NULL, 'registered', :note,
                    CAST(:data AS jsonb))
                """
            ),
            {
                "id": stored.id,
                "uid": user.id,
                "uname": user.display_name,
                "note": "入户走访中发现的新问题",
                "data": _json({"source": "visit", "visit_id": visit_id, "plan_id": stop.plan_id}),
            },
        )
    session.execute(
        text("UPDATE visit_records SET new_case_id = :c WHERE id = :v"),
        {"c": stored.id, "v": visit_id},
    )
    return stored.id, stored.number


def _json(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False)
