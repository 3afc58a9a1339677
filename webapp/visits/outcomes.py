"""Recording what a visit found: once per client id, with its effects in one transaction.

The phone makes an id for every submission and resends it until the server answers;
``visit_records.client_id`` is unique and the insert is ``ON CONFLICT DO NOTHING``, so
a resend (or two racing copies of one) records the outcome once, and only the copy
that inserted the row has effects:

- the stop takes the outcome as its state;
- a follow-up (回访) recorded as done is the case workflow's ``follow_up`` action
  (``cases.queries.apply_field_action``: the visitor's scope, the row lock, the rules
  of ``cases.workflow`` on which statuses take a follow-up and what follows, the
  version, the event with the visit's ids, the audit entry). When the rules refuse it
  (the case moved on since the plan was made, or left the visitor's scope) the visit
  is still recorded and the answer says why the case was not changed;
- a new problem found becomes a new case (``cases.queries.insert_case``, reported by
  the visitor; channel ``leader`` for leaders, ``grid_sweep`` for grid workers) whose
  client id is derived from the visit's, linked from the visit record.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.auth import audit
from webapp.auth.models import User
from webapp.auth.roles import Role
from webapp.cases.models import Case, Category
from webapp.cases.queries import NewCase, add_event, apply_field_action, insert_case, rules_for
from webapp.cases.vocab import Channel, Satisfaction, Status
from webapp.cases.workflow import Action
from webapp.errors import AppError, NotFound
from webapp.grid.queries import locate
from webapp.visits.models import Outcome, VisitRecord

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# The namespace of the ids of cases opened from visits (uuid5 of the visit's client id).
NEW_CASE_NAMESPACE = uuid.UUID("6f1c2b0e-4f57-4d1e-9a51-0c7a11f0d2a4")
# Limits of what a phone sends (characters, people).
MAX_NOTE = 2000
MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_PEOPLE = 10000
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
class FollowUp:
    """Whether a follow-up visit was recorded on its case, and if not, why (the rules' words)."""

    applied: bool
    code: str | None = None
    message: str | None = None

    def as_dict(self) -> dict:
        return {"applied": self.applied, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Recorded:
    visit_id: int
    stop_id: int
    created: bool  # False: this client id was recorded before (a resend)
    outcome: str
    new_case_id: int | None = None
    new_case_number: str | None = None
    follow_up: FollowUp | None = None  # only for a follow-up stop visited (outcome done)

    def as_dict(self) -> dict:
        return {
            "visit_id": self.visit_id,
            "stop_id": self.stop_id,
            "created": self.created,
            "outcome": self.outcome,
            "new_case_number": self.new_case_number,
            "follow_up": self.follow_up.as_dict() if self.follow_up else None,
        }


def _text(data: Mapping, key: str, problems: dict[str, str], field: str, label: str) -> str:
    """A text field (absent: ""); anything but text is refused, never turned into text."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems[field] = f"{label}应为文字"
        return ""
    return value.strip()


def _number(value: object) -> float:
    """A number sent as JSON or as a form's text; true/false and other types are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(value)
    return float(value)


def _whole(value: object) -> int:
    """A whole number sent as JSON or as a form's text (2.5, true and "2.5" are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(value)
    return int(value)


def parse_outcome(data: Mapping, now: datetime) -> OutcomeInput:
    """Read an outcome from a form or JSON body; refuse with the problems named in Chinese.

    Numbers may come as JSON numbers or as text (the page sends its form's values);
    a value of another type is refused rather than converted.
    """
    problems: dict[str, str] = {}
    raw_id = data.get("client_id")
    try:
        if not isinstance(raw_id, str):
            raise ValueError(raw_id)
        client_id = uuid.UUID(raw_id)
    except ValueError:
        client_id = uuid.UUID(int=0)
        problems["client_id"] = "缺少提交编号（client_id），请刷新页面后重试"
    raw_outcome = data.get("outcome")
    try:
        outcome = Outcome(raw_outcome if isinstance(raw_outcome, str) else "")
    except ValueError:
        outcome = Outcome.DONE
        problems["outcome"] = "请选择走访结果：已走访、无人在家或拒绝接访"
    satisfaction = None
    raw_satisfaction = data.get("satisfaction")
    if raw_satisfaction not in (None, ""):
        try:
            satisfaction = Satisfaction(
                raw_satisfaction if isinstance(raw_satisfaction, str) else ""
            )
        except ValueError:
            problems["satisfaction"] = "满意度只能是满意、基本满意或不满意"
    note = _text(data, "note", problems, "note", "走访情况")
    if len(note) > MAX_NOTE:
        problems["note"] = f"走访情况不超过 {MAX_NOTE} 字"
    lon = lat = None
    if data.get("lon") not in (None, "") or data.get("lat") not in (None, ""):
        try:
            lon, lat = _number(data.get("lon")), _number(data.get("lat"))
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
    raw_at = data.get("visited_at")
    if raw_at is not None and not isinstance(raw_at, str):
        problems["visited_at"] = "走访时间应为 ISO 8601 格式的文字"
        raw_at = None
    visited_at = _visited_at(raw_at, now)
    problem = _parse_problem(data, problems)
    if problems:
        raise AppError(
            "invalid_outcome", "；".join(problems.values()), 400, "invalid outcome", problems
        )
    return OutcomeInput(client_id, outcome, satisfaction, note, lon, lat, visited_at, problem)


def _visited_at(raw: str | None, now: datetime) -> datetime | None:
    """When the phone says the visit happened; dropped (not refused) if the phone's clock
    is clearly off, since a queued outcome must never fail for that."""
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
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
    elif raw is not None:
        problems["problem"] = "新发现问题的内容无效"
        return None
    elif data.get("problem_title") or data.get("new_problem") in ("1", "on", True):
        fields = {
            "title": data.get("problem_title"),
            "category_id": data.get("problem_category"),
            "description": data.get("problem_description"),
            "people_count": data.get("problem_people"),
        }
    else:
        return None
    title = _text(fields, "title", problems, "problem_title", "问题标题")
    if not title:
        problems.setdefault("problem_title", "请填写新发现问题的标题")
    elif len(title) > MAX_TITLE:
        problems["problem_title"] = f"问题标题不超过 {MAX_TITLE} 字"
    try:
        category_id = _whole(fields.get("category_id"))
        if not 0 < category_id < 2**31:  # an id column's range: no database error
            raise ValueError(category_id)
    except (TypeError, ValueError):
        category_id = 0
        problems["problem_category"] = "请选择新发现问题的类别"
    description = _text(fields, "description", problems, "problem_description", "问题描述")
    if len(description) > MAX_DESCRIPTION:
        problems["problem_description"] = f"问题描述不超过 {MAX_DESCRIPTION} 字"
    raw_people = fields.get("people_count")
    try:
        people = 1 if raw_people in (None, "") else _whole(raw_people)
        if not 1 <= people <= MAX_PEOPLE:
            raise ValueError
    except (TypeError, ValueError):
        people = 1
        problems["problem_people"] = "涉及人数须为正整数"
    return NewProblem(title, category_id, description, people)


def _existing(session: Session, client_id: uuid.UUID) -> VisitRecord | None:
    return session.scalar(select(VisitRecord).where(VisitRecord.client_id == client_id))


def _as_recorded(session: Session, rec: VisitRecord, created: bool) -> Recorded:
    """The answer to a resend: what the first copy recorded."""
    number = None
    if rec.new_case_id is not None:
        number = session.execute(
            text("SELECT number FROM cases WHERE id = :i"), {"i": rec.new_case_id}
        ).scalar()
    follow_up = None
    if rec.satisfaction is not None and rec.case_id is not None:
        applied = session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM case_events WHERE case_id = :c "
                "AND action = 'follow_up' AND data->>'visit_id' = :v)"
            ),
            {"c": rec.case_id, "v": str(rec.id)},
        ).scalar_one()
        follow_up = FollowUp(applied)
    return Recorded(rec.id, rec.stop_id, created, rec.outcome, rec.new_case_id, number, follow_up)


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
    follow_up = None
    if stop.follow_up and inp.outcome is Outcome.DONE and stop.case_id is not None:
        follow_up = _follow_up(session, user, stop, visit_id, inp)
    new_case = None
    if inp.problem is not None:
        new_case = _open_case(session, user, stop, visit_id, inp)
    audit.record(
        session,
        "visit_outcome",
        user,
        case_id=stop.case_id,
        detail={
            "visit_id": visit_id,
            "stop_id": stop.id,
            "plan_id": stop.plan_id,
            "outcome": inp.outcome.value,
            "follow_up": bool(stop.follow_up),
        },
    )
    if new_case is not None:
        audit.record(
            session,
            "case_register",
            user,
            case_id=new_case[0],
            detail={"number": new_case[1], "channel": "grid_sweep", "visit_id": visit_id},
        )
    session.flush()
    return Recorded(
        visit_id, stop.id, True, inp.outcome.value, *(new_case or (None, None)), follow_up
    )


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


def _follow_up(session: Session, user: User, stop, visit_id: int, inp: OutcomeInput) -> FollowUp:
    """Record the follow-up on its case through the case workflow; say so if the rules refuse.

    In a savepoint, so that a refusal leaves the case exactly as it was while the
    visit itself stays recorded.
    """
    sat = inp.satisfaction.value  # type: ignore[union-attr]
    county = session.execute(
        text("SELECT county_code FROM cases WHERE id = :id"), {"id": stop.case_id}
    ).scalar_one()
    try:
        with session.begin_nested():
            apply_field_action(
                session,
                user,
                stop.case_id,
                Action.FOLLOW_UP,
                {
                    "satisfaction": sat,
                    "method": "visit",
                    "note": inp.note or f"入户回访：{Satisfaction(sat).label}",
                },
                rules_for(county),
                data={"visit_id": visit_id, "plan_id": stop.plan_id, "stop_id": stop.id},
            )
    except AppError as refused:  # the rules' refusal, or the case is out of the visitor's scope
        return FollowUp(False, refused.code, refused.message)
    return FollowUp(True)


def new_problem_channel(user: User) -> Channel:
    """The channel of a case opened on a visit: leaders' visits are 领导下访, others' 排查."""
    return Channel.LEADER if user.role_enum in LEADER_ROLES else Channel.GRID_SWEEP


def _open_case(
    session: Session, user: User, stop, visit_id: int, inp: OutcomeInput
) -> tuple[int, str]:
    """Open a case for the new problem at the phone's position (if in the visitor's county:
    nobody files into another county) or the stop's."""
    problem = inp.problem
    assert problem is not None
    lon, lat, approx = stop.lon, stop.lat, True
    here = locate(session, inp.lon, inp.lat) if inp.lon is not None else None
    if here is not None and here.county_code == user.county_code:
        lon, lat, approx = inp.lon, inp.lat, False
    channel = new_problem_channel(user)
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
            reporter_id=user.id,
        ),
    )
    if stored.created:
        add_event(
            session,
            session.get(Case, stored.id),
            "register",
            user,
            None,
            Status.REGISTERED.value,
            "入户走访中发现的新问题",
            {"source": "visit", "visit_id": visit_id, "plan_id": stop.plan_id},
        )
    session.execute(
        text("UPDATE visit_records SET new_case_id = :c WHERE id = :v"),
        {"c": stored.id, "v": visit_id},
    )
    return stored.id, stored.number
