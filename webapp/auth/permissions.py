"""Who sees what: the one place where role and area scoping is decided.

Every list or aggregate query over cases applies :func:`case_scope` (or its SQL
form :func:`case_scope_sql`); a case outside it answers 404 exactly like a case
that does not exist. Areas are scoped by code prefix: an account sees its own area
and everything below it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, and_, false, or_

from webapp.auth.roles import COUNTY_ROLES, Role
from webapp.cases.models import Case

if TYPE_CHECKING:
    from webapp.auth.models import User


def case_scope(user: User) -> ColumnElement[bool]:
    """Return the condition on ``Case`` that selects the cases ``user`` may see."""
    role = user.role_enum
    area = user.area_code
    if role in (Role.ADMIN, Role.COUNTY_STAFF):
        cond: ColumnElement[bool] = Case.county_code == user.county_code
    elif role is Role.PLANNER:
        cond = _within(area)
    elif role is Role.TOWNSHIP_LEADER:
        cond = Case.township_code == area
    elif role is Role.VILLAGE_INFORMANT:
        cond = or_(Case.village_code == area, Case.reporter_id == user.id)
    elif role is Role.GRID_WORKER:
        cond = or_(Case.grid_code == area, Case.reporter_id == user.id)
    elif role is Role.LEADER_IN_CHARGE:
        cond = Case.leader_id == user.id
    else:  # pragma: no cover - every role is listed above
        cond = false()
    if user.unit:
        # An accusation is never shown to the body it accuses (第30条).
        cond = and_(cond, or_(Case.accused_unit.is_(None), Case.accused_unit != user.unit))
    return cond


def _within(area_code: str) -> ColumnElement[bool]:
    column = {6: Case.county_code, 9: Case.township_code, 12: Case.village_code}.get(
        len(area_code), Case.grid_code
    )
    return column == area_code


def scope_cases(stmt: Select, user: User) -> Select:
    """Restrict a Select over ``Case`` to what ``user`` may see."""
    return stmt.where(case_scope(user))


_CODE_COLUMN = {6: "county_code", 9: "township_code", 12: "village_code"}


def case_scope_sql(user: User, alias: str = "c") -> tuple[str, dict]:
    """Return (SQL condition, parameters) equal to :func:`case_scope` for raw SQL queries.

    Parameter names start with ``scope_`` so they do not clash with the caller's.
    """
    role = user.role_enum
    a = alias
    params: dict = {
        "scope_area": user.area_code,
        "scope_user": user.id,
        "scope_county": user.county_code,
    }
    if role in (Role.ADMIN, Role.COUNTY_STAFF):
        cond = f"{a}.county_code = :scope_county"
    elif role is Role.PLANNER:
        cond = f"{a}.{_CODE_COLUMN.get(len(user.area_code), 'grid_code')} = :scope_area"
    elif role is Role.TOWNSHIP_LEADER:
        cond = f"{a}.township_code = :scope_area"
    elif role is Role.VILLAGE_INFORMANT:
        cond = f"({a}.village_code = :scope_area OR {a}.reporter_id = :scope_user)"
    elif role is Role.GRID_WORKER:
        cond = f"({a}.grid_code = :scope_area OR {a}.reporter_id = :scope_user)"
    elif role is Role.LEADER_IN_CHARGE:
        cond = f"{a}.leader_id = :scope_user"
    else:  # pragma: no cover
        cond = "false"
    if user.unit:
        params["scope_unit"] = user.unit
        cond = f"({cond} AND ({a}.accused_unit IS NULL OR {a}.accused_unit <> :scope_unit))"
    return cond, params


def area_root(user: User) -> str:
    """The code of the area ``user`` may see (with everything below it)."""
    return user.area_code


def may_see_area(user: User, code: str) -> bool:
    """Whether ``user`` may see the area coded ``code`` and its figures."""
    return code.startswith(user.area_code)


def may_see_single_cases(user: User) -> bool:
    """Whether ``user`` may see single cases where they are (markers, exact places).

    Planners (and any future display-only role) see aggregates only: counts per area
    and heat cells, never a case's own coordinates.
    """
    return user.role_enum is not Role.PLANNER


# -- personal data -------------------------------------------------------------


def sees_personal_data(user: User, case: Case) -> bool:
    """Whether ``user`` handles ``case`` and so sees the petitioner's data unmasked."""
    role = user.role_enum
    if role is Role.PLANNER:
        return False
    if role is Role.COUNTY_STAFF:
        return True
    return user.id in (case.leader_id, case.reporter_id)


def may_reveal_personal_data(user: User, case: Case) -> bool:
    """Whether ``user`` may explicitly reveal (and so have logged) the masked data."""
    if sees_personal_data(user, case):
        return True
    return user.role_enum in (Role.TOWNSHIP_LEADER, Role.ADMIN)


# -- what each role may use ------------------------------------------------------
# Views guard with these (``roles_required(*STATS_ROLES)``) or the functions below;
# the navigation shows an entry to the roles that may use it.

# Desk registration, ledger import, repeat links: the petition bureau's desk work.
REGISTER_ROLES = COUNTY_ROLES
# Field reports from a phone.
FIELD_REPORT_ROLES = frozenset(
    {Role.GRID_WORKER, Role.VILLAGE_INFORMANT, Role.TOWNSHIP_LEADER, Role.COUNTY_STAFF}
)
# Routine sweeps (排查): a grid worker for their grid, a village informant for each
# grid of their village.
SWEEP_FILER_ROLES = frozenset({Role.GRID_WORKER, Role.VILLAGE_INFORMANT})
# Sweep coverage: everyone who looks after more than one grid.
COVERAGE_ROLES = frozenset(
    {Role.VILLAGE_INFORMANT, Role.TOWNSHIP_LEADER, Role.COUNTY_STAFF, Role.PLANNER, Role.ADMIN}
)
# Statistics (dashboard, API, exports) and the maps: the people who read figures.
STATS_ROLES = frozenset(
    {Role.TOWNSHIP_LEADER, Role.COUNTY_STAFF, Role.LEADER_IN_CHARGE, Role.PLANNER, Role.ADMIN}
)
MAP_ROLES = STATS_ROLES
# Door-to-door visits: who plans them (township leaders for their township), who walks them.
VISIT_PLANNER_ROLES = frozenset({Role.PLANNER, Role.ADMIN, Role.COUNTY_STAFF, Role.TOWNSHIP_LEADER})
VISITOR_ROLES = frozenset(
    {Role.GRID_WORKER, Role.VILLAGE_INFORMANT, Role.TOWNSHIP_LEADER, Role.LEADER_IN_CHARGE}
)
# The data exchange page (exports); importing ledgers is desk work.
EXCHANGE_ROLES = frozenset({Role.COUNTY_STAFF, Role.PLANNER, Role.ADMIN})
IMPORT_ROLES = REGISTER_ROLES


def may_register_cases(user: User) -> bool:
    """Desk registration of visits, letters, online and hotline petitions."""
    return user.role_enum in REGISTER_ROLES


def may_report_from_field(user: User) -> bool:
    return user.role_enum in FIELD_REPORT_ROLES


def files_sweeps(user: User) -> bool:
    return user.role_enum in SWEEP_FILER_ROLES


def may_see_sweep_coverage(user: User) -> bool:
    return user.role_enum in COVERAGE_ROLES


def may_read_stats(user: User) -> bool:
    return user.role_enum in STATS_ROLES


def may_read_maps(user: User) -> bool:
    return user.role_enum in MAP_ROLES


def may_plan_visits(user: User) -> bool:
    """Whether ``user`` makes visit plans (for areas they may see: ``may_see_area``)."""
    return user.role_enum in VISIT_PLANNER_ROLES


def may_visit(user: User) -> bool:
    """Whether ``user`` walks visit plans (may be given stops)."""
    return user.role_enum in VISITOR_ROLES


def may_exchange(user: User) -> bool:
    return user.role_enum in EXCHANGE_ROLES


def may_import(user: User) -> bool:
    return user.role_enum in IMPORT_ROLES
