"""Service requests as GeoReport v2 sees them: scoped cases with their places' names."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session, aliased

from webapp.api.params import CaseFilter
from webapp.api.queries import filtered_cases
from webapp.cases.models import Case, CaseEvent, Category
from webapp.grid.models import Area

Grid = aliased(Area)
Village = aliased(Area)
Township = aliased(Area)


def service_requests(
    user, flt: CaseFilter, numbers: list[str] | None = None, token: uuid.UUID | None = None
) -> Select:
    """Return a Select of cases in scope with the grid, village and township names.

    ``numbers`` (case numbers) or ``token`` (the client id given when the request
    was filed) narrow it further.
    """
    stmt = (
        filtered_cases(user, flt)
        .add_columns(
            Grid.name.label("grid_name"),
            Village.name.label("village_name"),
            Township.name.label("township_name"),
        )
        .join(Grid, Grid.id == Case.grid_id)
        .join(Village, Village.code == Case.village_code)
        .join(Township, Township.code == Case.township_code)
    )
    if numbers is not None:
        stmt = stmt.where(Case.number.in_(numbers))
    if token is not None:
        stmt = stmt.where(Case.client_id == token)
    return stmt


def filed_through_open311():
    """A condition: the case was filed through Open311 (its register event says so)."""
    return exists().where(
        CaseEvent.case_id == Case.id,
        CaseEvent.action == "register",
        CaseEvent.data["source"].astext == "open311",
    )


def public_request(session: Session, number: str | None = None, token: uuid.UUID | None = None):
    """Return (Case, category code, category name) of a request filed through Open311, or None.

    The keyless view of GeoReport v2: a client follows the requests it filed, by their
    number or token, without an API key. Cases that came any other way (the desk,
    the phone, a ledger, the REST API) are not there: they answer only to a key.
    """
    stmt = (
        select(Case, Category.code.label("category_code"), Category.name.label("category_name"))
        .join(Category, Category.id == Case.category_id)
        .where(filed_through_open311())
    )
    if number is not None:
        stmt = stmt.where(Case.number == number)
    elif token is not None:
        stmt = stmt.where(Case.client_id == token)
    else:
        return None
    return session.execute(stmt.limit(1)).first()


def page_of_requests(session: Session, stmt: Select, limit: int, offset: int = 0) -> list:
    """Newest first, ties broken by id: a deterministic order for pages."""
    return session.execute(
        stmt.order_by(Case.reported_at.desc(), Case.id.desc()).limit(limit).offset(offset)
    ).all()


def changeset(session: Session) -> datetime:
    """When the service list last changed (the categories have no timestamp: the newest area update)."""
    from sqlalchemy import func, select

    return session.scalar(select(func.max(Area.updated_at))) or datetime(2026, 1, 1)
