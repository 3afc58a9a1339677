"""Queries of field work: storing a report, its photos, grid outlines, sweeps and coverage.

Functions take the session first, flush but never commit: the view commits. Every
query that reads cases goes through ``auth.permissions`` scoping.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, DATE
from sqlalchemy.orm import Session

from webapp.auth import audit
from webapp.auth.models import User
from webapp.auth.permissions import case_scope, case_scope_sql, files_sweeps
from webapp.auth.roles import Role
from webapp.cases.models import Case, Category
from webapp.cases.queries import (
    INSERT_CASE_COLUMNS,
    INSERT_CASE_CTES,
    INSERT_CASE_VALUES,
    OutsideCounty,
    initial_due_for,
)
from webapp.cases.vocab import CaseClass, Channel, Status
from webapp.db import Prepared
from webapp.errors import AppError, NotFound
from webapp.field.models import CasePhoto, Sweep, SweepCase
from webapp.field.periods import Period
from webapp.field.photos import StoredPhoto
from webapp.field.schemas import ReportInput, SweepInput, title_tail
from webapp.grid.models import Area, AreaLevel

# -- reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class FiledReport:
    """The answer to a phone: the case number and where the case went."""

    case_id: int
    number: str
    created: bool
    grid_code: str
    grid_name: str
    village_name: str
    township_name: str
    in_own_area: bool

    def to_dict(self) -> dict:
        return {
            "case_id": self.case_id,
            "number": self.number,
            "created": self.created,
            "grid": {"code": self.grid_code, "name": self.grid_name},
            "village": {"name": self.village_name},
            "township": {"name": self.township_name},
            "in_own_area": self.in_own_area,
        }


def active_category(session: Session, category_id: int) -> Category:
    category = session.get(Category, category_id) if 0 < category_id < 2**31 else None
    if category is None or not category.active:
        raise _unknown_category()
    return category


def _unknown_category() -> AppError:
    return AppError(
        "unknown_category",
        "类别不存在或已停用，请重新选择",
        400,
        "unknown or inactive category",
        details=[
            {
                "field": "category_id",
                "code": "unknown_category",
                "message": "类别不存在或已停用",
            }
        ],
    )


# A field report in one statement, committed on its own: the category must be active,
# PostGIS picks the grid (cases.queries.INSERT_CASE_SQL's rule), the case, its register
# event and its audit entry are written together, and the answer's names come back.
# No row: a resend, an inactive category or a point outside every grid of the worker's
# county (file_report tells which). One round trip instead of six: on two cores a
# report's time was mostly round trips and the Python around each. Nothing is decided
# after it, so it may commit on its own (the report view runs in autocommit).
FILE_REPORT_SQL = f"""
    WITH cat AS (SELECT id, name FROM categories WHERE id = :category_id AND active),
    {INSERT_CASE_CTES},
    ins AS (
        INSERT INTO cases ({INSERT_CASE_COLUMNS})
        SELECT {
    INSERT_CASE_VALUES.replace(
        ":title",
        "coalesce(:title, CASE WHEN :tail = '' THEN cat.name ELSE cat.name || '：' || :tail END)",
    )
}
        FROM g, n, p, cat
        WHERE g.county_code = :county
        ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
        RETURNING id, number, grid_id, grid_code, village_code, township_code, county_code
    ),
    ev AS (
        INSERT INTO case_events (case_id, action, actor_id, actor_name, from_status, to_status,
                                 note, data)
        SELECT id, 'register', :reporter_id, :actor_name, NULL, :status, :note,
               CAST(:event_data AS jsonb)
        FROM ins
    ),
    au AS (
        INSERT INTO audit_log (action, user_id, username, case_id, ip, detail)
        SELECT :audit_action, :reporter_id, :audit_username, id, CAST(:audit_ip AS inet),
               jsonb_build_object('number', number, 'channel', :channel,
                                  'client_id', CAST(:client_id AS text))
        FROM ins
    )
    SELECT ins.id, ins.number, ins.county_code, ins.grid_code, gr.name AS grid_name,
           v.name AS village_name, t.name AS township_name
    FROM ins
    JOIN areas gr ON gr.id = ins.grid_id
    JOIN areas v ON v.code = ins.village_code
    JOIN areas t ON t.code = ins.township_code
"""
# Prepared once per connection: planning this statement cost about half its execution.
_FILE_REPORT = Prepared(
    "gridcase_file_report",
    FILE_REPORT_SQL,
    {
        "category_id": "integer",
        "title": "text",
        "tail": "text",
        "lon": "double precision",
        "lat": "double precision",
        "client_id": "uuid",
        "description": "text",
        "channel": "text",
        "case_class": "text",
        "people_count": "integer",
        "batch_count": "integer",
        "location_approx": "boolean",
        "accuracy": "double precision",
        "status": "text",
        "reported_at": "timestamptz",
        "due_at": "timestamptz",
        "reporter_id": "integer",
        "petitioner_name": "text",
        "petitioner_phone": "text",
        "petitioner_id_number": "text",
        "actor_name": "text",
        "note": "text",
        "event_data": "jsonb",
        "audit_action": "text",
        "audit_username": "text",
        "audit_ip": "inet",
        "county": "text",
    },
)


def file_report(
    session: Session, user: User, report: ReportInput, now: datetime | None = None
) -> FiledReport:
    """Store a field report as a case in the grid its point is in, with its register event.

    The client id makes this idempotent: a resend (also a concurrent one: the unique
    index makes the second INSERT wait for the first) finds the first case and adds
    nothing. A client id already used by someone else is refused. A point outside
    the worker's county raises :class:`OutsideCounty` (nothing was written: the
    statement only inserts into a grid of the worker's county).
    ``now`` (the app's clock, as ``parse_report`` judged the phone's time by) is the
    report's time unless the phone gave a plausible one.
    """
    reported_at = report.reported_at or now or datetime.now(UTC)
    audit_fields = audit.entry_fields("case_register", user)
    row = _FILE_REPORT.execute(
        session,
        {
            "category_id": report.category_id if 0 < report.category_id < 2**31 else None,
            "title": report.title,
            "tail": title_tail(report.description),
            "lon": report.lon,
            "lat": report.lat,
            "client_id": report.client_id,
            "description": report.description,
            "channel": Channel.GRID_SWEEP.value,
            "case_class": CaseClass.REQUEST.value,
            "people_count": report.people_count,
            "batch_count": 1,
            "location_approx": False,
            "accuracy": report.accuracy_m,
            "status": Status.REGISTERED.value,
            "reported_at": reported_at,
            "due_at": initial_due_for(user.county_code, reported_at),
            "reporter_id": user.id,
            "petitioner_name": report.petitioner_name,
            "petitioner_phone": report.petitioner_phone,
            "petitioner_id_number": None,
            "actor_name": user.display_name,
            "note": "网格员现场上报",
            "event_data": json.dumps(
                {
                    "client_id": str(report.client_id),
                    "channel": Channel.GRID_SWEEP.value,
                    "accuracy_m": report.accuracy_m,
                    "location_adjusted": report.location_adjusted,
                }
            ),
            "audit_action": audit_fields["action"],
            "audit_username": audit_fields["username"],
            "audit_ip": audit_fields["ip"],
            "county": user.county_code,
        },
    ).one_or_none()
    if row is None:
        existing = _case_by_client_id(session, report.client_id)
        if existing is not None:  # a resend (also of a report filed before its category closed)
            return _answer(session, user, existing, created=False)
        active_category(session, report.category_id)  # or: unknown category
        raise OutsideCounty()
    return _filed(row, user, created=True)


def _case_by_client_id(session: Session, client_id: uuid.UUID) -> int | None:
    return session.scalar(select(Case.id).where(Case.client_id == client_id))


def _answer(session: Session, user: User, case_id: int, created: bool) -> FiledReport:
    row = session.execute(
        text(
            """
            SELECT c.id, c.number, c.reporter_id, c.grid_code, g.name AS grid_name,
                   v.name AS village_name, t.name AS township_name
            FROM cases c
            JOIN areas g ON g.id = c.grid_id
            JOIN areas v ON v.code = c.village_code
            JOIN areas t ON t.code = c.township_code
            WHERE c.id = :id
            """
        ),
        {"id": case_id},
    ).one()
    if row.reporter_id != user.id:
        # Someone else's client id: answering with that case would leak it.
        raise AppError(
            "client_id_conflict",
            "上报编号已被占用，请重新填写上报",
            409,
            "client id used by another report",
        )
    return _filed(row, user, created)


def _filed(row, user: User, created: bool) -> FiledReport:
    """The answer to a report from its stored row (id, number, grid code and area names)."""
    return FiledReport(
        case_id=row.id,
        number=row.number,
        created=created,
        grid_code=row.grid_code,
        grid_name=row.grid_name,
        village_name=row.village_name,
        township_name=row.township_name,
        in_own_area=row.grid_code.startswith(user.area_code),
    )


# -- photos -----------------------------------------------------------------------


def case_in_scope(session: Session, user: User, case_id: int) -> Case:
    """The case, if ``user`` may see it; else 404 exactly as for a missing case."""
    case = session.scalar(select(Case).where(Case.id == case_id, case_scope(user)))
    if case is None:
        raise NotFound("案件")
    return case


def case_for_photos(session: Session, user: User, case_id: int) -> Case:
    """A case ``user`` may add photos to: one in scope, or one they reported themselves.

    A township leader may report a point in another township; the photos of that
    report must still go with it. Anything else answers 404 as a missing case.
    """
    case = session.scalar(
        select(Case).where(Case.id == case_id, or_(case_scope(user), Case.reporter_id == user.id))
    )
    if case is None:
        raise NotFound("案件")
    return case


def photo_by_client_id(session: Session, client_photo_id: uuid.UUID) -> CasePhoto | None:
    return session.scalar(select(CasePhoto).where(CasePhoto.client_photo_id == client_photo_id))


def check_photo_resend(photo: CasePhoto | None, case_id: int) -> CasePhoto | None:
    """A photo id already stored for this case is a resend; for another case, a conflict."""
    if photo is not None and photo.case_id != case_id:
        raise AppError(
            "client_photo_id_conflict",
            "照片编号已被其他案件使用",
            409,
            "client photo id used by another case",
        )
    return photo


def add_photo(
    session: Session, user: User, case_id: int, client_photo_id: uuid.UUID, stored: StoredPhoto
) -> tuple[CasePhoto, bool]:
    """Record a stored photo of a case; a concurrent resend finds the first row."""
    new_id = session.execute(
        text(
            """
            INSERT INTO case_photos (case_id, client_photo_id, uploader_id, sha256, size_bytes,
                                     width, height, original_format, original_bytes)
            VALUES (:case_id, :cpid, :uid, :sha, :size, :w, :h, :fmt, :orig)
            ON CONFLICT (client_photo_id) DO NOTHING
            RETURNING id
            """
        ),
        {
            "case_id": case_id,
            "cpid": client_photo_id,
            "uid": user.id,
            "sha": stored.sha256,
            "size": stored.size_bytes,
            "w": stored.width,
            "h": stored.height,
            "fmt": stored.original_format,
            "orig": stored.original_bytes,
        },
    ).scalar()
    photo = check_photo_resend(photo_by_client_id(session, client_photo_id), case_id)
    assert photo is not None
    if new_id is not None:
        audit.record(
            session,
            "case_photo_add",
            user,
            case_id=case_id,
            detail={"photo_id": new_id, "sha256": stored.sha256},
        )
    return photo, new_id is not None


def case_photos(session: Session, user: User, case_id: int) -> list[CasePhoto]:
    """The photos of a case ``user`` may see (none when the case is out of scope)."""
    stmt = (
        select(CasePhoto)
        .join(Case, Case.id == CasePhoto.case_id)
        .where(CasePhoto.case_id == case_id, case_scope(user))
        .order_by(CasePhoto.created_at, CasePhoto.id)
    )
    return list(session.scalars(stmt))


def photo_in_scope(session: Session, user: User, photo_id: int) -> CasePhoto:
    photo = session.scalar(
        select(CasePhoto)
        .join(Case, Case.id == CasePhoto.case_id)
        .where(CasePhoto.id == photo_id, case_scope(user))
    )
    if photo is None:
        raise NotFound("照片")
    return photo


# -- grid outlines for the report map -----------------------------------------------

GRID_OUTLINES_SQL = """
    WITH own AS (
        SELECT g.id, g.geom FROM areas g
        WHERE g.level = 'grid' AND (g.code = :area OR g.village_code = :area)
    ),
    picked AS (
        SELECT id FROM own
        UNION
        -- neighbours of the worker's own grid(s)
        SELECT n.id FROM areas n JOIN own o
          ON n.geom && ST_Expand(o.geom, :deg)
         AND ST_DWithin(n.geom::geography, o.geom::geography, :near_m)
        WHERE n.level = 'grid'
        UNION
        -- grids around where the phone is now (the worker may be outside their grid)
        SELECT g.id FROM areas g
        WHERE :lon IS NOT NULL AND g.level = 'grid'
          AND g.geom && ST_Expand(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :deg)
          AND ST_DWithin(g.geom::geography,
                         ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :near_m)
    ),
    chosen AS (
        SELECT g.id, g.code, g.name, g.geom, v.name AS village, t.name AS township,
               g.id IN (SELECT id FROM own) AS own
        FROM areas g
        JOIN picked p ON p.id = g.id
        JOIN areas v ON v.code = g.village_code
        JOIN areas t ON t.code = g.township_code
        WHERE g.county_code = :county
        ORDER BY (g.id IN (SELECT id FROM own)) DESC, g.code
        LIMIT :max_features
    )
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'features', coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :simplify), 6)::json,
            'properties', json_build_object(
                'code', code, 'name', name, 'village', village, 'township', township, 'own', own)
        ) ORDER BY code), '[]'::json)
    )
    FROM chosen
"""


def grid_outlines(
    session: Session,
    user: User,
    lon: float | None = None,
    lat: float | None = None,
    near_m: float = 800,
) -> dict:
    """GeoJSON of the user's own grids, their neighbours and the grids near a point.

    Made in SQL; geometry simplified to about 2 m, coordinates to 6 decimals (0.1 m).
    Only grids of the user's county; at most 300 features.
    """
    area = user.area_code if len(user.area_code) > 9 else ""  # a grid or a village: own grids
    return session.execute(
        text(GRID_OUTLINES_SQL),
        {
            "area": area,
            "lon": lon,
            "lat": lat if lon is not None else None,
            "near_m": near_m,
            # degrees of latitude or longitude that surely contain near_m at this county's latitude
            "deg": near_m / 80_000,
            "county": user.county_code,
            "simplify": 0.00002,
            "max_features": 300,
        },
    ).scalar_one()


# -- sweeps -------------------------------------------------------------------------


def sweep_grids(session: Session, user: User) -> list[Area]:
    """The grids ``user`` files sweeps for."""
    if not files_sweeps(user):
        return []
    stmt = select(Area).where(Area.level == AreaLevel.GRID.value)
    if user.role_enum is Role.GRID_WORKER:
        stmt = stmt.where(Area.code == user.area_code)
    else:
        stmt = stmt.where(Area.village_code == user.area_code)
    return list(session.scalars(stmt.order_by(Area.code)))


@dataclass(frozen=True)
class Candidate:
    """A case a sweep may list: found in the grid (or by this worker) during the period."""

    id: int
    number: str
    title: str
    category: str
    reported_at: datetime
    mine: bool
    grid_code: str


def sweep_candidates(session: Session, user: User, grid: Area, period: Period) -> list[Candidate]:
    """Field-reported cases of the period in the grid, or reported by ``user``, within scope."""
    scope_sql, scope_params = case_scope_sql(user)
    start, end = period.bounds()
    rows = session.execute(
        text(
            f"""
            SELECT c.id, c.number, c.title, k.name AS category, c.reported_at,
                   c.reporter_id = :uid AS mine, c.grid_code
            FROM cases c JOIN categories k ON k.id = c.category_id
            WHERE c.channel = 'grid_sweep'
              AND (c.grid_id = :grid_id OR c.reporter_id = :uid)
              AND c.reported_at >= :start AND c.reported_at < :end
              AND {scope_sql}
            ORDER BY c.reported_at DESC, c.id DESC
            LIMIT 500
            """
        ),
        {"uid": user.id, "grid_id": grid.id, "start": start, "end": end, **scope_params},
    ).all()
    return [Candidate(*r) for r in rows]


def get_sweep(session: Session, grid_id: int, period: Period) -> Sweep | None:
    return session.scalar(
        select(Sweep).where(
            Sweep.grid_id == grid_id,
            Sweep.period_kind == period.kind.value,
            Sweep.period_start == period.start,
        )
    )


def sweep_case_ids(session: Session, sweep_id: int) -> set[int]:
    return set(session.scalars(select(SweepCase.case_id).where(SweepCase.sweep_id == sweep_id)))


@dataclass(frozen=True)
class FiledSweep:
    sweep: Sweep
    created: bool
    changed: bool

    def to_dict(self, case_ids: set[int]) -> dict:
        s = self.sweep
        return {
            "id": s.id,
            "grid_code": s.grid_code,
            "period": {"kind": s.period_kind, "start": s.period_start.isoformat()},
            "zero_report": s.zero_report,
            "case_ids": sorted(case_ids),
            "note": s.note,
            "revision": s.revision,
            "created": self.created,
            "changed": self.changed,
        }


def file_sweep(
    session: Session, user: User, grid: Area, period: Period, data: SweepInput
) -> FiledSweep:
    """File (or amend) the sweep of ``grid`` for ``period``: one per grid and period.

    Filing the same content again changes nothing; different content replaces the
    list and bumps ``revision``. Concurrent filings serialise on the row lock.
    Every listed case must be one of :func:`sweep_candidates`.
    """
    allowed = {c.id for c in sweep_candidates(session, user, grid, period)}
    unknown = sorted(set(data.case_ids) - allowed)
    if unknown:
        raise AppError(
            "sweep_case_not_allowed",
            "所选案件不在本期本网格的可选范围内，请刷新页面后重新选择",
            400,
            "listed cases are not field reports of this grid and period",
            details={"case_ids": unknown},
        )
    new_id = session.execute(
        text(
            """
            INSERT INTO sweeps (grid_id, grid_code, village_code, township_code, county_code,
                                period_kind, period_start, zero_report, note, reporter_id)
            VALUES (:grid_id, :code, :village, :township, :county,
                    :kind, :start, :zero, :note, :uid)
            ON CONFLICT ON CONSTRAINT uq_sweeps_grid_period DO NOTHING
            RETURNING id
            """
        ),
        {
            "grid_id": grid.id,
            "code": grid.code,
            "village": grid.village_code,
            "township": grid.township_code,
            "county": grid.county_code,
            "kind": period.kind.value,
            "start": period.start,
            "zero": data.zero_report,
            "note": data.note,
            "uid": user.id,
        },
    ).scalar()
    if new_id is not None:
        _set_sweep_cases(session, new_id, data.case_ids)
        _audit_sweep(session, user, "sweep_file", new_id, grid, period, data)
        return FiledSweep(session.get(Sweep, new_id), created=True, changed=True)
    sweep = session.scalar(
        select(Sweep)
        .where(
            Sweep.grid_id == grid.id,
            Sweep.period_kind == period.kind.value,
            Sweep.period_start == period.start,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    same = (
        sweep.zero_report == data.zero_report
        and sweep.note == data.note
        and sweep_case_ids(session, sweep.id) == set(data.case_ids)
    )
    if same:
        return FiledSweep(sweep, created=False, changed=False)
    session.execute(
        text(
            """
            UPDATE sweeps SET zero_report = :zero, note = :note, updated_at = now(),
                   revision = revision + 1
            WHERE id = :id
            """
        ),
        {"zero": data.zero_report, "note": data.note, "id": sweep.id},
    )
    session.execute(text("DELETE FROM sweep_cases WHERE sweep_id = :id"), {"id": sweep.id})
    _set_sweep_cases(session, sweep.id, data.case_ids)
    session.refresh(sweep)
    _audit_sweep(session, user, "sweep_amend", sweep.id, grid, period, data)
    return FiledSweep(sweep, created=False, changed=True)


def _audit_sweep(session, user, action, sweep_id, grid, period, data) -> None:
    audit.record(
        session,
        action,
        user,
        detail={
            "sweep_id": sweep_id,
            "grid": grid.code,
            "period": period.start.isoformat(),
            "zero_report": data.zero_report,
            "cases": list(data.case_ids),
        },
    )


def _set_sweep_cases(session: Session, sweep_id: int, case_ids: tuple[int, ...]) -> None:
    if case_ids:
        session.execute(
            text("INSERT INTO sweep_cases (sweep_id, case_id) SELECT :s, unnest(:ids)").bindparams(
                bindparam("ids", type_=ARRAY(Case.__table__.c.id.type))
            ),
            {"s": sweep_id, "ids": list(case_ids)},
        )
    session.flush()


@dataclass(frozen=True)
class PeriodState:
    period: Period
    sweep: Sweep | None
    cases: int


def grid_history(session: Session, grid: Area, periods: list[Period]) -> list[PeriodState]:
    """The grid's sweep (or None) in each of ``periods``, newest first."""
    if not periods:
        return []
    listed = (
        select(func.count())
        .select_from(SweepCase)
        .where(SweepCase.sweep_id == Sweep.id)
        .correlate(Sweep)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Sweep, listed).where(
            Sweep.grid_id == grid.id,
            Sweep.period_kind == periods[0].kind.value,
            Sweep.period_start.in_([p.start for p in periods]),
        )
    ).all()
    by_start = {s.period_start: (s, n) for s, n in rows}
    out = []
    for p in sorted(periods, reverse=True):
        sweep, n = by_start.get(p.start, (None, 0))
        out.append(PeriodState(p, sweep, n))
    return out


# -- coverage -----------------------------------------------------------------------


@dataclass(frozen=True)
class GridCoverage:
    code: str
    name: str
    village_code: str
    village: str
    township_code: str
    township: str
    reported: bool
    zero_report: bool | None
    cases: int
    submitted_at: datetime | None


def coverage(session: Session, area: Area, period: Period) -> list[GridCoverage]:
    """Every grid within ``area`` with its sweep for ``period`` (or none: a blind spot)."""
    rows = session.execute(
        text(
            """
            SELECT g.code, g.name, v.code, v.name, t.code, t.name,
                   s.id IS NOT NULL, s.zero_report, coalesce(n.cases, 0), s.submitted_at
            FROM areas g
            JOIN areas v ON v.code = g.village_code
            JOIN areas t ON t.code = g.township_code
            LEFT JOIN sweeps s
              ON s.grid_id = g.id AND s.period_kind = :kind AND s.period_start = :start
            LEFT JOIN LATERAL (
                SELECT count(*) AS cases FROM sweep_cases sc WHERE sc.sweep_id = s.id
            ) n ON true
            WHERE g.level = 'grid' AND g.code LIKE :prefix
            ORDER BY g.code
            """
        ),
        {"kind": period.kind.value, "start": period.start, "prefix": _prefix(area.code)},
    ).all()
    return [GridCoverage(*r) for r in rows]


@dataclass(frozen=True)
class CoverageRow:
    """Reported grids out of all grids of one child area, per period (oldest first)."""

    code: str
    name: str
    grids: int
    reported: list[int]


def coverage_history(session: Session, area: Area, periods: list[Period]) -> list[CoverageRow]:
    """For each area one level below ``area``, how many of its grids reported in each period."""
    level = AreaLevel(area.level)
    child = {AreaLevel.COUNTY: "township_code", AreaLevel.TOWNSHIP: "village_code"}.get(
        level, "code"
    )
    stmt = text(
        f"""
        WITH g AS (
            SELECT id, {child} AS child FROM areas WHERE level = 'grid' AND code LIKE :prefix
        ),
        per AS (
            SELECT g.child, p.start, count(s.id) AS reported
            FROM g CROSS JOIN unnest(:starts) AS p(start)
            LEFT JOIN sweeps s
              ON s.grid_id = g.id AND s.period_kind = :kind AND s.period_start = p.start
            GROUP BY g.child, p.start
        )
        SELECT a.code, a.name, (SELECT count(*) FROM g WHERE g.child = a.code) AS grids,
               array_agg(per.reported ORDER BY per.start) AS reported
        FROM per JOIN areas a ON a.code = per.child
        GROUP BY a.code, a.name
        ORDER BY a.code
        """
    ).bindparams(bindparam("starts", type_=ARRAY(DATE)))
    rows = session.execute(
        stmt,
        {
            "starts": [p.start for p in periods],
            "kind": periods[0].kind.value,
            "prefix": _prefix(area.code),
        },
    ).all()
    return [CoverageRow(code, name, grids, list(reported)) for code, name, grids, reported in rows]


def _prefix(code: str) -> str:
    return code.replace("\\", "").replace("%", "").replace("_", "") + "%"
