"""Queries behind the API: areas as GeoJSON made in SQL, scoped case lists, one case, idempotency.

Every query over cases applies ``auth.permissions.case_scope``; areas are limited
to the user's own area and what lies below it (``may_see_area``, a code prefix).
Queries flush but never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Select, and_, func, literal, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from webapp.api.models import IdempotencyKey
from webapp.api.params import CaseFilter
from webapp.auth.permissions import case_scope
from webapp.cases.models import Case, CaseEvent, Category
from webapp.errors import AppError
from webapp.grid.models import AreaLevel

# Metres per degree of latitude: tolerances are given in metres, PostGIS works in degrees.
M_PER_DEGREE = 111_320.0
COORD_DIGITS = 6  # ~0.1 m: enough for a case, small enough for a map


# -- areas ----------------------------------------------------------------------------


def areas_geojson(
    session: Session,
    root: str,
    level: AreaLevel | None = None,
    parent: str | None = None,
    code: str | None = None,
    tolerance_m: float = 0.0,
    with_geometry: bool = True,
) -> list[dict]:
    """Return GeoJSON Features of the areas under ``root`` (the user's area), made in SQL.

    ``tolerance_m`` simplifies the boundaries (topology preserved per polygon) by
    that many metres; 0 keeps them exact.
    """
    conds = ["a.code LIKE :root || '%'"]
    params: dict = {"root": root, "tol": tolerance_m / M_PER_DEGREE, "digits": COORD_DIGITS}
    if level is not None:
        conds.append("a.level = :level")
        params["level"] = level.value
    if parent is not None:
        conds.append("p.code = :parent")
        params["parent"] = parent
    if code is not None:
        conds.append("a.code = :code")
        params["code"] = code
    geometry = (
        "CASE WHEN :tol > 0 THEN ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), :digits)"
        " ELSE ST_AsGeoJSON(a.geom, :digits) END"
        if with_geometry
        else "NULL"
    )
    rows = session.execute(
        text(
            f"""
            SELECT a.code, a.name, a.level, p.code AS parent_code, a.population, a.households,
                   round(a.area_m2::numeric, 1)::float AS area_m2,
                   ST_X(a.label_point) AS label_lon, ST_Y(a.label_point) AS label_lat,
                   ST_XMin(a.geom) AS w, ST_YMin(a.geom) AS s, ST_XMax(a.geom) AS e, ST_YMax(a.geom) AS n,
                   {geometry} AS geometry
            FROM areas a LEFT JOIN areas p ON p.id = a.parent_id
            WHERE {" AND ".join(conds)}
            ORDER BY a.code
            """
        ),
        params,
    ).mappings()
    return [
        {
            "type": "Feature",
            "id": r["code"],
            "bbox": [r["w"], r["s"], r["e"], r["n"]],
            "geometry": json.loads(r["geometry"]) if r["geometry"] else None,
            "properties": {
                "code": r["code"],
                "name": r["name"],
                "level": r["level"],
                "parent_code": r["parent_code"],
                "population": r["population"],
                "households": r["households"],
                "area_m2": r["area_m2"],
                "label_point": [
                    round(r["label_lon"], COORD_DIGITS),
                    round(r["label_lat"], COORD_DIGITS),
                ],
            },
        }
        for r in rows
    ]


# -- cases ------------------------------------------------------------------------------

_CODE_COLUMN = {6: Case.county_code, 9: Case.township_code, 12: Case.village_code}


def filtered_cases(user, flt: CaseFilter) -> Select:
    """Return a Select of (Case, category code, category name, lon, lat) in scope and filter."""
    stmt = (
        select(
            Case,
            Category.code.label("category_code"),
            Category.name.label("category_name"),
            func.ST_X(Case.location).label("lon"),
            func.ST_Y(Case.location).label("lat"),
        )
        .join(Category, Category.id == Case.category_id)
        .where(case_scope(user))
    )
    if flt.bbox:
        w, s, e, n = flt.bbox
        stmt = stmt.where(func.ST_Intersects(Case.location, func.ST_MakeEnvelope(w, s, e, n, 4326)))
    if flt.area:
        column = _CODE_COLUMN.get(len(flt.area), Case.grid_code)
        stmt = stmt.where(column == flt.area)
    if flt.since:
        stmt = stmt.where(Case.reported_at >= flt.since)
    if flt.until:
        stmt = stmt.where(Case.reported_at < flt.until)
    if flt.categories:
        stmt = stmt.where(Category.code.in_(flt.categories))
    if flt.statuses:
        stmt = stmt.where(Case.status.in_(flt.statuses))
    if flt.channels:
        stmt = stmt.where(Case.channel.in_(flt.channels))
    return stmt


def case_page(
    session: Session, user, flt: CaseFilter, limit: int, after: tuple[datetime, int] | None
):
    """Return up to ``limit`` rows, newest first, after the keyset ``after``; and whether more follow.

    The order (reported_at DESC, id DESC) is total, so pages never overlap or skip
    a case even while new cases arrive.
    """
    stmt = (
        filtered_cases(user, flt).order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit + 1)
    )
    if after is not None:
        key = tuple_(literal(after[0], DateTime(timezone=True)), literal(after[1], BigInteger))
        stmt = stmt.where(tuple_(Case.reported_at, Case.id) < key)
    rows = session.execute(stmt).all()
    return rows[:limit], len(rows) > limit


def case_in_scope(session: Session, user, case_ref: str):
    """Return (Case, category code, category name, lon, lat) for an id or number in scope, or None."""
    stmt = filtered_cases(user, CaseFilter())
    if case_ref.isascii() and case_ref.isdigit():
        if len(case_ref) > 18:
            return None
        stmt = stmt.where(Case.id == int(case_ref))
    else:
        if len(case_ref) > 32:
            return None
        stmt = stmt.where(Case.number == case_ref)
    return session.execute(stmt).first()


def case_events(session: Session, case_id: int) -> list[CaseEvent]:
    return list(
        session.scalars(
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.at, CaseEvent.id)
        )
    )


def category_by_code(session: Session, code: str) -> Category | None:
    return session.scalar(select(Category).where(Category.code == code, Category.active.is_(True)))


def categories(session: Session) -> list[Category]:
    return list(
        session.scalars(
            select(Category)
            .where(Category.active.is_(True))
            .order_by(Category.sort_order, Category.id)
        )
    )


def add_event(
    session: Session,
    case_id: int,
    user,
    action: str,
    to_status: str,
    note: str,
    data: dict | None = None,
) -> None:
    session.add(
        CaseEvent(
            case_id=case_id,
            action=action,
            actor_id=user.id if user else None,
            actor_name=user.display_name if user else None,
            to_status=to_status,
            note=note,
            data=data,
        )
    )
    session.flush()


# -- idempotency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


class KeyReused(AppError):
    """The key was used before with a different request (422, both interfaces)."""

    def __init__(self) -> None:
        super().__init__(
            "idempotency_key_reused",
            "该 Idempotency-Key 已用于另一个不同的请求",
            422,
            "this Idempotency-Key was used with a different request",
        )


def claim_key(session: Session, user_id: int, key: str, request_hash: str) -> Replay | None:
    """Claim ``key`` for this request, or return the stored answer of its first use.

    The claim is a row inserted with a placeholder answer: a concurrent request with
    the same key waits on the unique index until this transaction ends, then finds
    the stored answer (or, if this one rolled back, claims the key itself).
    Raises :class:`KeyReused` when the key came with a different request.
    """
    inserted = session.execute(
        pg_insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=request_hash, status=0, response={})
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.key)
    ).first()
    if inserted is not None:
        return None
    row = session.execute(
        select(IdempotencyKey.request_hash, IdempotencyKey.status, IdempotencyKey.response).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
    ).one()
    if row.request_hash != request_hash:
        raise KeyReused()
    return Replay(row.status, row.response)


def store_answer(session: Session, user_id: int, key: str, status: int, body: dict) -> None:
    session.execute(
        IdempotencyKey.__table__.update()
        .where(and_(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
        .values(status=status, response=body)
    )


def forget_old_keys(session: Session, days: int = 30) -> int:
    """Delete keys older than ``days`` (a retry after a month is a new request)."""
    result = session.execute(
        text(
            "DELETE FROM api_idempotency_keys WHERE created_at < now() - make_interval(days => :d)"
        ),
        {"d": days},
    )
    return result.rowcount or 0


def register_case(session: Session, user, new, note: str, data: dict) -> int:
    """Store a case filed by ``user`` through an interface: grid by PostGIS, reporter, first event.

    Refuses (422) a case outside the user's county, as the desk and the phone do (a grid
    worker sees what they reported anywhere, but files in their own county only), and
    one the user could not see afterwards (a township leader filing in another
    township), so nobody creates what they cannot follow.
    """
    from webapp.cases.queries import OutsideCounty, insert_case

    new.reporter_id = user.id
    stored = insert_case(session, new)
    if stored.created and stored.county_code != user.county_code:
        raise OutsideCounty()
    add_event(session, stored.id, user, "register", "registered", note, data)
    visible = session.scalar(select(Case.id).where(Case.id == stored.id, case_scope(user)))
    if visible is None:
        raise AppError(
            "outside_your_area",
            "该位置不在您的辖区内，无法登记",
            422,
            "the location is outside your area",
        )
    from webapp.auth import audit

    audit.record(
        session, "case_register", user, case_id=stored.id, detail={"number": stored.number, **data}
    )
    return stored.id
