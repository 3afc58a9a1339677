"""A case as the people allowed to see it see it: personal data masked unless they handle it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.auth.masking import personal_fields
from webapp.auth.permissions import may_reveal_personal_data, sees_personal_data
from webapp.cases.vocab import CaseClass, Channel, Status

if TYPE_CHECKING:
    from webapp.auth.models import User
    from webapp.cases.models import Case


def personal_view(case: Case, user: User, revealed: bool = False) -> dict:
    """The petitioner's fields as ``user`` may see them, and whether they are masked.

    ``revealed`` is True only right after an explicit, logged reveal by a user who
    may reveal (see ``auth.permissions.may_reveal_personal_data``).
    """
    unmasked = sees_personal_data(user, case) or (revealed and may_reveal_personal_data(user, case))
    fields = personal_fields(case, masked=not unmasked)
    fields["personal_masked"] = not unmasked
    fields["may_reveal"] = not unmasked and may_reveal_personal_data(user, case)
    return fields


def case_summary(case: Case) -> dict:
    """The fields of a case that carry no personal data (safe for any role in scope)."""
    return {
        "id": case.id,
        "number": case.number,
        "title": case.title,
        "category_id": case.category_id,
        "channel": case.channel,
        "channel_label": Channel(case.channel).label,
        "case_class": case.case_class,
        "case_class_label": CaseClass(case.case_class).label,
        "status": case.status,
        "status_label": Status(case.status).label,
        "people_count": case.people_count,
        "grid_code": case.grid_code,
        "village_code": case.village_code,
        "township_code": case.township_code,
        "county_code": case.county_code,
        "location_approx": case.location_approx,
        "reported_at": case.reported_at.isoformat() if case.reported_at else None,
        "due_at": case.due_at.isoformat() if case.due_at else None,
        "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
    }
