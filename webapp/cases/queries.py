"""Queries on cases: storing a case in its grid, finding cases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.cases.models import Case, Category
from webapp.cases.vocab import CaseClass, Channel, Status
from webapp.errors import AppError

# One statement stores the case and decides its grid: the grids covering the point,
# lowest code first (the same rule as ``grid.queries.locate``). No grid, no row.
INSERT_CASE_SQL = """
    WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom),
    g AS (
        SELECT g.id, g.code, g.village_code, g.township_code, g.county_code
        FROM areas g, p
        WHERE g.level = 'grid' AND ST_Covers(g.geom, p.geom)
        ORDER BY g.code
        LIMIT 1
    ),
    n AS (SELECT nextval(pg_get_serial_sequence('cases', 'id')) AS id)
    INSERT INTO cases (
        id, number, client_id, title, description, category_id, channel, case_class,
        people_count, batch_count, location, location_approx, location_accuracy_m,
        grid_id, grid_code, village_code, township_code, county_code,
        status, reported_at, petitioner_name, petitioner_phone, petitioner_id_number
    )
    SELECT n.id,
           g.county_code || '-' || to_char(:reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY')
               || '-' || lpad(n.id::text, 7, '0'),
           :client_id, :title, :description, :category_id, :channel, :case_class,
           :people_count, :batch_count, p.geom, :location_approx, :accuracy,
           g.id, g.code, g.village_code, g.township_code, g.county_code,
           :status, :reported_at, :petitioner_name, :petitioner_phone, :petitioner_id_number
    FROM g, n, p
    ON CONFLICT (client_id) WHERE client_id IS NOT NULL DO NOTHING
    RETURNING id, number
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
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoredCase:
    id: int
    number: str
    created: bool  # False when a resend with the same client id found the first one


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

    Raises :class:`OutsideCounty` when no grid covers the point. Flushes, never commits.
    """
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
        "reported_at": new.reported_at or now or _db_now(session),
        "petitioner_name": new.petitioner_name,
        "petitioner_phone": new.petitioner_phone,
        "petitioner_id_number": new.petitioner_id_number,
    }
    row = session.execute(text(INSERT_CASE_SQL), params).first()
    if row is not None:
        return StoredCase(row.id, row.number, True)
    if new.client_id is not None:
        existing = session.execute(
            select(Case.id, Case.number).where(Case.client_id == new.client_id)
        ).first()
        if existing is not None:
            return StoredCase(existing.id, existing.number, False)
    raise OutsideCounty()


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
