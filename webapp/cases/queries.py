"""Queries on cases: storing a case in its grid, finding cases."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, or_, select, text
from sqlalchemy.orm import Session

from webapp.auth import audit
from webapp.auth.models import User
from webapp.auth.permissions import case_scope, case_scope_sql
from webapp.auth.roles import Role
from webapp.cases import workflow
from webapp.cases.models import Case, CaseEvent, Category
from webapp.cases.schemas import CaseFilters, Registration
from webapp.cases.vocab import FINAL_STATUSES, CaseClass, Channel, ReviewStage, Status
from webapp.cases.workflow import CaseFacts, Decision, Rules
from webapp.errors import AppError, NotFound
from webapp.grid.models import Area, AreaLevel
from webapp.grid.queries import area_features

# One statement stores the case and decides its grid: the grids covering the point,
# lowest code first (the same rule as ``grid.queries.locate``). No grid, no row.
# In parts, so that a statement writing more beside the case (field reports) reuses them.
INSERT_CASE_CTES = """p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom),
    g AS (
        SELECT g.id, g.code, g.village_code, g.township_code, g.county_code
        FROM areas g, p
        WHERE g.level = 'grid' AND ST_Covers(g.geom, p.geom)
        ORDER BY g.code
        LIMIT 1
    ),
    n AS (SELECT nextval(pg_get_serial_sequence('cases', 'id')) AS id)"""
INSERT_CASE_COLUMNS = """
        id, client_id, title, description, category_id, channel, case_class,
        people_count, batch_count, location, location_approx, location_accuracy_m,
        grid_id, grid_code, village_code, township_code, county_code,
        status, reported_at, due_at, reporter_id,
        petitioner_name, petitioner_phone, petitioner_id_number
"""
INSERT_CASE_VALUES = """n.id, :client_id, :title, :description, :category_id, :channel, :case_class,
           :people_count, :batch_count, p.geom, :location_approx, :accuracy,
           g.id, g.code, g.village_code, g.township_code, g.county_code,
           :status, :reported_at, :due_at, :reporter_id,
           :petitioner_name, :petitioner_phone, :petitioner_id_number"""
INSERT_CASE_SQL = f"""
    WITH {INSERT_CASE_CTES}
    INSERT INTO cases ({INSERT_CASE_COLUMNS})
    SELECT {INSERT_CASE_VALUES}
    FROM g, n, p
    ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
    RETURNING id, number, county_code
"""


@dataclass
class NewCase:
    """What it takes to store a case; the place decides grid, village and township."""

    title: str
    category_id: int
    channel: Channel
    lon: float
    lat: float
    description: str = ""
    case_class: CaseClass = CaseClass.REQUEST
    people_count: int = 1
    batch_count: int = 1
    location_approx: bool = False
    accuracy_m: float | None = None
    reported_at: datetime | None = None
    client_id: uuid.UUID | None = None
    petitioner_name: str | None = None
    petitioner_phone: str | None = None
    petitioner_id_number: str | None = None
    status: Status = Status.REGISTERED
    # Who filed it (their own reports stay visible to them).
    reporter_id: int | None = None
    # The first deadline; by default, the county's limit to register and assign (第22条).
    due_at: datetime | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoredCase:
    id: int
    number: str
    created: bool  # False when a resend with the same client id found the first one
    county_code: str | None = None  # the county of the grid PostGIS chose (new cases)


class OutsideCounty(AppError):
    def __init__(self) -> None:
        super().__init__(
            "outside_county",
            "该位置不在本县任何网格内，无法登记。请检查定位或在地图上重新选点。",
            422,
            "the location is outside every grid of the county",
        )


def insert_case(session: Session, new: NewCase, now: datetime | None = None) -> StoredCase:
    """Store a case in the grid PostGIS finds for its point; a known client id returns the first.

    Every channel stores through here, so every new case gets its reporter and its
    first deadline (the county's limit to register and assign, unless ``due_at`` is
    given). Raises :class:`OutsideCounty` when no grid covers the point. Flushes,
    never commits.
    """
    reported_at = new.reported_at or now or _db_now(session)
    params = {
        "lon": new.lon,
        "lat": new.lat,
        "client_id": new.client_id,
        "title": new.title,
        "description": new.description,
        "category_id": new.category_id,
        "channel": Channel(new.channel).value,
        "case_class": CaseClass(new.case_class).value,
        "people_count": new.people_count,
        "batch_count": new.batch_count,
        "location_approx": new.location_approx,
        "accuracy": new.accuracy_m,
        "status": Status(new.status).value,
        "reported_at": reported_at,
        "due_at": new.due_at,
        "reporter_id": new.reporter_id,
        "petitioner_name": new.petitioner_name,
        "petitioner_phone": new.petitioner_phone,
        "petitioner_id_number": new.petitioner_id_number,
    }
    row = session.execute(text(INSERT_CASE_SQL), params).first()
    if row is not None:
        if new.due_at is None and Status(new.status) is Status.REGISTERED:
            due = workflow.initial_due(reported_at, rules_for(row.county_code))
            session.execute(
                text("UPDATE cases SET due_at = :d WHERE id = :i"), {"d": due, "i": row.id}
            )
        return StoredCase(row.id, row.number, True, row.county_code)
    if new.client_id is not None:
        existing = session.execute(
            select(Case.id, Case.number).where(Case.client_id == new.client_id)
        ).first()
        if existing is not None:
            return StoredCase(existing.id, existing.number, False)
    raise OutsideCounty()


def initial_due_for(county_code: str, reported_at: datetime) -> datetime:
    """The first deadline of a case registered at ``reported_at`` in ``county_code``.

    The same as :func:`insert_case` sets when not given one; a caller that knows the
    county before storing passes it in and saves the UPDATE after the INSERT.
    """
    return workflow.initial_due(reported_at, rules_for(county_code))


def rules_for(county_code: str) -> Rules:
    """The county's rules from the app config; the regulation's defaults outside an app."""
    from flask import has_app_context

    if has_app_context():
        from webapp.cases.rules import county_rules

        return county_rules(county_code)
    from webapp.cases.deadlines import limits_for
    from webapp.cases.workdays import national_calendar

    return Rules(limits_for({}, county_code), national_calendar())


def _db_now(session: Session) -> datetime:
    return session.execute(text("SELECT now()")).scalar_one()


def get_case(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def get_case_by_number(session: Session, number: str) -> Case | None:
    return session.scalar(select(Case).where(Case.number == number))


def categories(session: Session, active_only: bool = True) -> list[Category]:
    stmt = select(Category).order_by(Category.sort_order, Category.id)
    if active_only:
        stmt = stmt.where(Category.active.is_(True))
    return list(session.scalars(stmt))


def category_by_code(session: Session, code: str) -> Category | None:
    return session.scalar(select(Category).where(Category.code == code))


# -- the case file and its scope ------------------------------------------------------


def scoped_case(session: Session, user: User, case_id: int, for_update: bool = False) -> Case:
    """The case ``case_id`` if ``user`` may see it, else :class:`NotFound` (like a missing one).

    ``for_update`` locks the row until the transaction ends, so two people acting on
    the same case are serialised and the second one sees the first one's version.
    """
    stmt = select(Case).where(Case.id == case_id, case_scope(user))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    case = session.scalar(stmt)
    if case is None:
        raise NotFound("案件")
    return case


def repeat_of_final(session: Session, case: Case) -> bool:
    """Whether the matter ``case`` repeats has been re-examined (复核, final)."""
    if case.repeat_of_id is None:
        return False
    stage = session.scalar(select(Case.review_stage).where(Case.id == case.repeat_of_id))
    return stage == ReviewStage.REEXAMINED


def case_facts(session: Session, case: Case) -> CaseFacts:
    """The facts the lifecycle rules need, from a case row."""
    return CaseFacts(
        status=Status(case.status),
        reported_at=case.reported_at,
        case_class=CaseClass(case.case_class),
        due_at=case.due_at,
        accepted_at=case.accepted_at,
        assigned_at=case.assigned_at,
        assigned_level=case.assigned_level,
        accused_unit=case.accused_unit,
        answered_at=case.answered_at,
        extension_days=case.extension_days or 0,
        supervision=case.supervision,
        review_stage=case.review_stage,
        satisfaction=case.satisfaction,
        repeat_of_final=repeat_of_final(session, case),
    )


class StaleCase(AppError):
    def __init__(self) -> None:
        super().__init__(
            "case_stale",
            "案件已被他人更新，请刷新页面查看最新情况后再操作",
            409,
            "the case was changed by someone else; reload it",
        )


def add_event(
    session: Session,
    case: Case,
    action: str,
    user: User | None,
    from_status: str | None,
    to_status: str | None,
    note: str = "",
    data: dict | None = None,
    at: datetime | None = None,
) -> CaseEvent:
    """Append one event to the case's file (flushed with the caller's transaction)."""
    event = CaseEvent(
        case_id=case.id,
        action=action,
        actor_id=user.id if user else None,
        actor_name=user.display_name if user else None,
        from_status=from_status,
        to_status=to_status,
        note=note,
        data=data or None,
    )
    if at is not None:
        event.at = at
    session.add(event)
    session.flush()
    return event


def apply_action(
    session: Session,
    user: User,
    case_id: int,
    seen_version: int | None,
    action: str,
    inputs: dict,
    rules: Rules,
    now: datetime | None = None,
    form: dict | None = None,
) -> Decision:
    """Do ``action`` on a case: check, change, log the event and the audit entry; flush.

    The row is locked first; ``seen_version`` must be the version the actor saw, or
    the action is refused with :class:`StaleCase` (409) and nothing changes.
    ``form``: the id and fingerprint of the page's form (``webapp.forms``), kept in
    the event, so that the form sent again is known as done (:func:`action_done`).
    """
    case = scoped_case(session, user, case_id, for_update=True)
    if seen_version is None or seen_version != case.version:
        raise StaleCase()
    return _apply(session, user, case, action, inputs, rules, now, form)


def action_done(session: Session, user: User, case_id: int, action: str, form: dict) -> bool:
    """Whether this very form (same id, same content) already did ``action`` on the case.

    A stale version from a form that did is a resend (a double click, a retried POST,
    the second of two at once, which waited on the row lock): done, not stale.
    """
    return (
        session.execute(
            text(
                "SELECT 1 FROM case_events WHERE case_id = :c AND actor_id = :u AND action = :a "
                "AND data->>'form_id' = :f AND data->>'form_hash' = :h LIMIT 1"
            ),
            {"c": case_id, "u": user.id, "a": action, "f": form["form_id"], "h": form["form_hash"]},
        ).first()
        is not None
    )


def apply_field_action(
    session: Session,
    user: User,
    case_id: int,
    action: str,
    inputs: dict,
    rules: Rules,
    data: dict | None = None,
    now: datetime | None = None,
) -> Decision:
    """Do ``action`` on a case from the field, where the actor saw no version of the case.

    A visit's outcome waits on a phone and is sent when the network allows: it reports
    what the visitor found, not an edit of a page they loaded, so there is no version
    to compare. Everything else is :func:`apply_action`'s: the scope, the row lock, the
    rules of :func:`workflow.decide`, the version bump, the event (``data`` added to
    the decision's) and the audit entry. Flushes, never commits.
    """
    case = scoped_case(session, user, case_id, for_update=True)
    return _apply(session, user, case, action, inputs, rules, now, data)


def _apply(
    session: Session,
    user: User,
    case: Case,
    action: str,
    inputs: dict,
    rules: Rules,
    now: datetime | None,
    data: dict | None = None,
) -> Decision:
    now = now or _db_now(session)
    decision = workflow.decide(
        case_facts(session, case), action, user.role_enum, inputs, now, rules
    )
    if "leader_id" in decision.changes and decision.changes["leader_id"] is not None:
        leader = session.get(User, decision.changes["leader_id"])
        if (
            leader is None
            or not leader.active
            or leader.role_enum is not Role.LEADER_IN_CHARGE
            or leader.county_code != case.county_code
        ):
            raise AppError(
                "leader_invalid",
                "请选择本县在岗的包案领导",
                422,
                "not a leader in charge of this county",
            )
        decision.data["leader_name"] = leader.display_name
    decision.data.update(data or {})
    for column, value in decision.changes.items():
        setattr(case, column, value.value if isinstance(value, Status) else value)
    case.version += 1
    case.updated_at = now
    add_event(
        session,
        case,
        decision.action.value,
        user,
        decision.from_status.value,
        decision.to_status.value,
        decision.note,
        decision.data,
        at=now,
    )
    audit.record(
        session,
        "case_action",
        user,
        case_id=case.id,
        detail={
            "action": decision.action.value,
            "from": decision.from_status.value,
            "to": decision.to_status.value,
            "version": case.version,
        },
    )
    session.flush()
    return decision


def timeline(session: Session, case_id: int) -> list[CaseEvent]:
    """The case's events, oldest first (the order they happened, then were written)."""
    return list(
        session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.at, CaseEvent.id)
        )
    )


def case_places(session: Session, case: Case) -> dict:
    """Names of the case's grid, village and township, and its map as GeoJSON (made in SQL)."""
    row = (
        session.execute(
            text(
                """
            SELECT g.name AS grid_name, v.name AS village_name, t.name AS township_name,
                   ST_AsGeoJSON(g.geom, 6)::json AS grid_geojson,
                   ST_AsGeoJSON(c.location, 6)::json AS point_geojson,
                   ST_X(c.location) AS lon, ST_Y(c.location) AS lat
            FROM cases c
            JOIN areas g ON g.id = c.grid_id
            LEFT JOIN areas v ON v.code = c.village_code
            LEFT JOIN areas t ON t.code = c.township_code
            WHERE c.id = :id
            """
            ),
            {"id": case.id},
        )
        .mappings()
        .one()
    )
    return dict(row)


def leaders(session: Session, county_code: str) -> list[User]:
    """The active leaders in charge (包案领导) of a county, for the set-leader form."""
    return list(
        session.scalars(
            select(User)
            .where(
                User.role == Role.LEADER_IN_CHARGE.value,
                User.active.is_(True),
                User.area_code.startswith(county_code, autoescape=True),
            )
            .order_by(User.display_name)
        )
    )


def user_names(session: Session, ids: list[int]) -> dict[int, str]:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


# -- desk registration -------------------------------------------------------------


def village_label_point(
    session: Session, code: str, county_code: str
) -> tuple[float, float] | None:
    """The label point (a point inside the area) of a village of the county, or None."""
    row = session.execute(
        text(
            "SELECT ST_X(label_point), ST_Y(label_point) FROM areas "
            "WHERE code = :c AND level = 'village' AND county_code = :county"
        ),
        {"c": code, "county": county_code},
    ).first()
    return (row[0], row[1]) if row else None


def register_case(
    session: Session, user: User, reg: Registration, rules: Rules, now: datetime | None = None
) -> StoredCase:
    """Store a case registered at the desk, with its deadline, repeat link and first event.

    With only a village known, the case sits at the village's label point and is
    marked approximate. Flushes, never commits.
    """
    now = now or _db_now(session)
    lon, lat = reg.lon, reg.lat
    if reg.approximate:
        point = village_label_point(session, reg.village_code or "", user.county_code)
        if point is None:
            raise AppError("village_not_found", "所选村（社区）不存在", 422, "no such village")
        lon, lat = point
    repeat_of = None
    if reg.repeat_of_id is not None:
        repeat_of = scoped_case(session, user, reg.repeat_of_id)
    stored = insert_case(
        session,
        NewCase(
            title=reg.title,
            description=reg.description,
            category_id=reg.category_id,
            channel=reg.channel,
            case_class=reg.case_class,
            people_count=reg.people_count,
            batch_count=reg.batch_count,
            lon=lon,
            lat=lat,
            location_approx=reg.approximate,
            reported_at=now,
            petitioner_name=reg.petitioner_name,
            petitioner_phone=reg.petitioner_phone,
            petitioner_id_number=reg.petitioner_id_number,
            reporter_id=user.id,
            due_at=workflow.initial_due(now, rules),
            client_id=reg.client_id,
        ),
    )
    case = session.get(Case, stored.id)
    if not stored.created:
        return _desk_resend(case, user, reg, stored)
    if case.county_code != user.county_code:
        raise OutsideCounty()
    case.accused_unit = reg.accused_unit
    data = {"channel": reg.channel.value, "people": reg.people_count, "batches": reg.batch_count}
    if reg.collective:
        data["collective"] = True
    add_event(
        session, case, "register", user, None, Status.REGISTERED.value, reg.title, data, at=now
    )
    if repeat_of is not None:
        _link(session, user, case, repeat_of)
    audit.record(session, "case_register", user, case_id=case.id, detail={"number": case.number})
    session.flush()
    return stored


def _desk_resend(case: Case, user: User, reg: Registration, stored: StoredCase) -> StoredCase:
    """The same desk form sent again: its first case, stored once (event and audit included).

    A different registration under the same form id (a page brought back from the
    browser's history and filled in again) is refused with ``form_resubmitted``, never
    taken for a resend: what was typed is not dropped unseen.
    """
    same = (
        case.reporter_id == user.id
        and case.title == reg.title
        and case.category_id == reg.category_id
        and case.channel == reg.channel.value
        and (case.description or "") == reg.description
    )
    if not same:
        raise AppError(
            "form_resubmitted",
            f"这张登记表已登记为案件 {case.number}；如要登记另一件事项，请重新打开登记页",
            409,
            "this form was already registered as another case",
        )
    return stored


# -- repeats ------------------------------------------------------------------------


@dataclass(frozen=True)
class RepeatCandidate:
    id: int
    number: str
    title: str
    status: str
    reported_at: datetime
    same_person: bool
    distance_m: float | None


REPEAT_SQL = """
    WITH p AS (
        SELECT CASE WHEN :lon IS NULL THEN NULL
                    ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END AS geom
    )
    SELECT c.id, c.number, c.title, c.status, c.reported_at,
           ((:phone IS NOT NULL AND c.petitioner_phone = :phone)
            OR (:id_number IS NOT NULL AND c.petitioner_id_number = :id_number)) AS same_person,
           CASE WHEN p.geom IS NULL THEN NULL
                ELSE ST_Distance(c.location::geography, p.geom::geography) END AS distance_m
    FROM cases c, p
    WHERE {scope}
      AND c.id IS DISTINCT FROM :exclude
      AND c.reported_at >= :since
      AND (
            (:phone IS NOT NULL AND c.petitioner_phone = :phone)
         OR (:id_number IS NOT NULL AND c.petitioner_id_number = :id_number)
         OR (p.geom IS NOT NULL AND c.category_id = :category_id
             -- a box on the geometry index first, then the exact distance on the spheroid
             AND ST_DWithin(c.location, p.geom, :radius_deg)
             AND ST_DWithin(c.location::geography, p.geom::geography, :radius_m))
      )
      AND NOT EXISTS (
            SELECT 1 FROM case_repeat_dismissals d WHERE d.case_id = :exclude AND d.other_id = c.id)
      AND NOT EXISTS (SELECT 1 FROM cases r WHERE r.id = :exclude AND r.repeat_of_id = c.id)
    ORDER BY same_person DESC, c.reported_at DESC, c.id DESC
    LIMIT :limit
"""


def repeat_candidates(
    session: Session,
    user: User,
    *,
    phone: str | None,
    id_number: str | None,
    category_id: int | None,
    lon: float | None,
    lat: float | None,
    radius_m: float,
    since: datetime,
    exclude_id: int | None = None,
    limit: int = 10,
) -> list[RepeatCandidate]:
    """Earlier cases the user may see that this matter may repeat, most likely first.

    The same petitioner (phone or ID number) anywhere, or the same category within
    ``radius_m`` metres, reported since ``since``; minus the suggestions dismissed for
    ``exclude_id`` and the case it is already linked to.
    """
    if not (phone or id_number or (lon is not None and lat is not None and category_id)):
        return []
    scope, scope_params = case_scope_sql(user)
    # Degrees that surely cover radius_m at this latitude (the index pre-filter only).
    radius_deg = radius_m / (111_320.0 * max(math.cos(math.radians(lat or 0.0)), 0.1)) * 1.01
    rows = session.execute(
        text(REPEAT_SQL.format(scope=scope)),
        {
            **scope_params,
            "phone": phone,
            "id_number": id_number,
            "category_id": category_id,
            "lon": lon,
            "lat": lat if lon is not None else None,
            "radius_m": radius_m,
            "radius_deg": radius_deg,
            "since": since,
            "exclude": exclude_id,
            "limit": limit,
        },
    ).all()
    return [RepeatCandidate(*r) for r in rows]


def repeat_candidates_for(
    session: Session, user: User, case: Case, radius_m: float, since: datetime
) -> list[RepeatCandidate]:
    """Possible earlier cases of which ``case`` is a repeat (reported before it)."""
    lon, lat = session.execute(
        text("SELECT ST_X(location), ST_Y(location) FROM cases WHERE id = :i"), {"i": case.id}
    ).one()
    found = repeat_candidates(
        session,
        user,
        phone=case.petitioner_phone,
        id_number=case.petitioner_id_number,
        category_id=case.category_id,
        lon=lon,
        lat=lat,
        radius_m=radius_m,
        since=since,
        exclude_id=case.id,
    )
    return [c for c in found if (c.reported_at, c.id) < (case.reported_at, case.id)]


def _link(session: Session, user: User, case: Case, other: Case) -> None:
    if other.id == case.id:
        raise AppError("repeat_of_self", "不能把案件关联为自身的重复件", 422)
    case.is_first = False
    case.repeat_of_id = other.id
    add_event(
        session,
        case,
        "link_repeat",
        user,
        case.status,
        case.status,
        f"关联为 {other.number} 的重复信访",
        {"repeat_of_id": other.id, "repeat_of_number": other.number},
    )


def link_repeat(
    session: Session, user: User, case_id: int, seen_version: int | None, other_id: int
) -> Case:
    """Mark the case as a repeat of ``other_id`` (not a first petition); flush."""
    case = scoped_case(session, user, case_id, for_update=True)
    if seen_version != case.version:
        raise StaleCase()
    other = scoped_case(session, user, other_id)
    _link(session, user, case, other)
    case.version += 1
    audit.record(
        session, "case_link_repeat", user, case_id=case.id, detail={"repeat_of_id": other.id}
    )
    session.flush()
    return case


def dismiss_repeat(session: Session, user: User, case_id: int, other_id: int) -> None:
    """Remember that ``other_id`` is not a repeat of the case: it is not suggested again."""
    case = scoped_case(session, user, case_id)
    scoped_case(session, user, other_id)
    session.execute(
        text(
            "INSERT INTO case_repeat_dismissals (case_id, other_id, user_id) VALUES (:c, :o, :u) "
            "ON CONFLICT DO NOTHING"
        ),
        {"c": case.id, "o": other_id, "u": user.id},
    )
    audit.record(
        session, "case_dismiss_repeat", user, case_id=case.id, detail={"other_id": other_id}
    )
    session.flush()


# -- lists ---------------------------------------------------------------------------


def case_list(user: User, filters: CaseFilters, now: datetime, due_soon: timedelta) -> Select:
    """The cases ``user`` may see that match ``filters``, newest first (a stable order)."""
    stmt = select(Case).where(case_scope(user))
    if filters.status is not None:
        stmt = stmt.where(Case.status == filters.status.value)
    if filters.category_id is not None:
        stmt = stmt.where(Case.category_id == filters.category_id)
    if filters.channel is not None:
        stmt = stmt.where(Case.channel == filters.channel.value)
    if filters.area:
        column = {6: Case.county_code, 9: Case.township_code, 12: Case.village_code}.get(
            len(filters.area), Case.grid_code
        )
        stmt = stmt.where(column == filters.area)
    if filters.since is not None:
        stmt = stmt.where(Case.reported_at >= _day_start(filters.since))
    if filters.until is not None:
        stmt = stmt.where(Case.reported_at < _day_start(filters.until + timedelta(days=1)))
    if filters.text:
        pattern = f"%{_like_escape(filters.text)}%"
        stmt = stmt.where(
            or_(
                Case.number.ilike(pattern, escape="\\"),
                Case.title.ilike(pattern, escape="\\"),
                Case.description.ilike(pattern, escape="\\"),
            )
        )
    if filters.due == "overdue":
        stmt = stmt.where(Case.due_at <= now, Case.status.not_in(_FINAL))
    elif filters.due == "due_soon":
        stmt = stmt.where(
            Case.due_at > now, Case.due_at <= now + due_soon, Case.status.not_in(_FINAL)
        )
    return stmt.order_by(Case.reported_at.desc(), Case.id.desc())


_FINAL = [s.value for s in FINAL_STATUSES] + [Status.ESCALATED.value]


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_start(day) -> datetime:
    from webapp.cases.deadlines import LOCAL_TZ

    return datetime.combine(day, datetime.min.time(), tzinfo=LOCAL_TZ)


@dataclass(frozen=True)
class Page:
    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def paginate(session: Session, stmt: Select, page: int, per_page: int = 50) -> Page:
    """One page of ``stmt`` (which must have a stable order) and the total count."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    page = min(max(page, 1), max(1, -(-total // per_page)))
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    return Page(items, total, page, per_page)


def due_by_area(session: Session, user: User, now: datetime, due_soon: timedelta) -> list[dict]:
    """Per township (within the user's scope): open cases overdue and due soon."""
    scope, params = case_scope_sql(user)
    rows = (
        session.execute(
            text(
                f"""
            SELECT c.township_code AS code, coalesce(t.name, c.township_code) AS name,
                   count(*) FILTER (WHERE c.due_at <= :now) AS overdue,
                   count(*) FILTER (WHERE c.due_at > :now AND c.due_at <= :soon) AS due_soon
            FROM cases c LEFT JOIN areas t ON t.code = c.township_code
            WHERE {scope} AND c.due_at IS NOT NULL AND c.due_at <= :soon
              AND c.status NOT IN :final
            GROUP BY c.township_code, t.name
            ORDER BY overdue DESC, due_soon DESC, c.township_code
            """
            ).bindparams(bindparam("final", expanding=True)),
            {**params, "now": now, "soon": now + due_soon, "final": _FINAL},
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def category_names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Category.id, Category.name)).all())


def area_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(session.execute(select(Area.code, Area.name).where(Area.code.in_(codes))).all())


def townships(session: Session, user: User) -> list[Area]:
    """The townships the user may filter by (their own area and below)."""
    stmt = select(Area).where(Area.level == "township", Area.county_code == user.county_code)
    if len(user.area_code) >= 9:
        stmt = stmt.where(Area.code == user.area_code[:9])
    return list(session.scalars(stmt.order_by(Area.code)))


def villages_by_township(
    session: Session, county_code: str
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The county's villages grouped by township (for the desk's village picker)."""
    rows = session.execute(
        text(
            """
            SELECT t.name AS township, v.code, v.name
            FROM areas v JOIN areas t ON t.code = v.township_code
            WHERE v.level = 'village' AND v.county_code = :c
            ORDER BY t.code, v.code
            """
        ),
        {"c": county_code},
    ).all()
    groups: dict[str, list[tuple[str, str]]] = {}
    for township, code, name in rows:
        groups.setdefault(township, []).append((code, name))
    return list(groups.items())


def county_outline(session: Session, county_code: str) -> dict:
    """The county's townships as a light GeoJSON FeatureCollection (simplified, in SQL)."""
    return area_features(session, AreaLevel.TOWNSHIP, county_code, 0.0003)
