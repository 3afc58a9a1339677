"""A case as the people allowed to see it see it: personal data masked unless they handle it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.auth.masking import personal_fields
from webapp.auth.permissions import may_reveal_personal_data, sees_personal_data
from webapp.cases.vocab import (
    CaseClass,
    Channel,
    Opinion,
    ResolvedLevel,
    ReviewStage,
    Satisfaction,
    Status,
    Supervision,
)
from webapp.templating import local_time

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


def repeat_candidate(candidate, url: str) -> dict:
    """A possible earlier case as the desk form shows it (no personal data)."""
    return {
        "id": candidate.id,
        "number": candidate.number,
        "title": candidate.title,
        "status_label": Status(candidate.status).label,
        "reported_at": local_time(candidate.reported_at, "%Y-%m-%d"),
        "same_person": candidate.same_person,
        "distance_m": None if candidate.distance_m is None else round(candidate.distance_m),
        "url": url,
    }


def case_file(case: Case) -> dict:
    """Labels of the coded fields of a case, for the case file."""

    def label(enum_type, value):
        return enum_type(value).label if value else None

    return {
        "status": Status(case.status).label,
        "channel": Channel(case.channel).label,
        "case_class": CaseClass(case.case_class).label,
        "opinion": label(Opinion, case.opinion),
        "satisfaction": label(Satisfaction, case.satisfaction),
        "resolved_level": label(ResolvedLevel, case.resolved_level),
        "assigned_level": label(ResolvedLevel, case.assigned_level),
        "supervision": label(Supervision, case.supervision),
        "review_stage": label(ReviewStage, case.review_stage),
        "collective": case.people_count >= 5,
    }


_EVENT_DATA_LABELS = {
    "unit": "承办单位",
    "level": "层级",
    "mode": "方式",
    "kind": "督办方式",
    "days": "延长天数",
    "approver": "批准人",
    "petitioner_told": "已告知信访人",
    "parties": "当事各方",
    "opinion": "处理意见",
    "satisfaction": "满意度",
    "method": "回访方式",
    "to": "上报机关",
    "leader_name": "包案领导",
    "repeat_of_number": "重复件关联",
    "channel": "渠道",
    "people": "人数",
    "batches": "批次",
    "collective": "集体访",
}

_EVENT_VALUE_LABELS = {
    "mode": {"assign": "交办", "forward": "转送"},
    "method": {"phone": "电话回访", "visit": "上门回访"},
    "channel": {c.value: c.label for c in Channel},
    "opinion": {o.value: o.label for o in Opinion},
    "satisfaction": {s.value: s.label for s in Satisfaction},
    "level": {r.value: r.label for r in ResolvedLevel},
    "kind": {s.value: s.label for s in Supervision},
}


def event_view(event) -> dict:
    """An event of the case file with Chinese labels: action, statuses, data as pairs."""
    from webapp.cases.workflow import ACTION_LABELS, Action

    extra = {"link_repeat": "关联重复件", "start": "受理告知、开始办理"}
    try:
        action = ACTION_LABELS[Action(event.action)]
    except ValueError:
        action = extra.get(event.action, event.action)
    pairs = []
    for key, value in (event.data or {}).items():
        if key not in _EVENT_DATA_LABELS or value is None:
            continue
        if isinstance(value, bool):
            value = "是" if value else "否"
        value = _EVENT_VALUE_LABELS.get(key, {}).get(value, value)
        pairs.append((_EVENT_DATA_LABELS[key], value))
    return {
        "action": action,
        "from": Status(event.from_status).label if event.from_status else None,
        "to": Status(event.to_status).label if event.to_status else None,
        "pairs": pairs,
    }
