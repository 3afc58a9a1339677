"""The JSON shapes the API answers with: a case, a case as a GeoJSON Feature, a case with its events.

Built on ``cases.presenting``: the petitioner's data is masked unless the user
handles the case. Pure functions of the rows they are given.
"""

from __future__ import annotations

from webapp.cases.presenting import case_summary, personal_view

# The fields of a case a list item carries besides its location.
PERSONAL = ("petitioner_name", "petitioner_phone", "petitioner_id_number", "personal_masked")


def case_item(row, user) -> dict:
    """One case of a list: summary, category, location and (masked) petitioner."""
    case = row.Case
    item = case_summary(case)
    item["category_code"] = row.category_code
    item["category_name"] = row.category_name
    item["lon"] = round(row.lon, 6)
    item["lat"] = round(row.lat, 6)
    personal = personal_view(case, user)
    for key in PERSONAL:
        item[key] = personal[key]
    return item


def case_feature(row, user) -> dict:
    """One case as an RFC 7946 Feature (the same properties as :func:`case_item`)."""
    props = case_item(row, user)
    return {
        "type": "Feature",
        "id": props["id"],
        "geometry": {"type": "Point", "coordinates": [props.pop("lon"), props.pop("lat")]},
        "properties": props,
    }


def case_detail(row, events, user) -> dict:
    """One case with its description and the file of everything done on it (一案一册)."""
    case = row.Case
    item = case_item(row, user)
    item["description"] = case.description
    item["case_class"] = case.case_class
    item["batch_count"] = case.batch_count
    item["is_first"] = case.is_first
    item["repeat_of_id"] = case.repeat_of_id
    item["accepted_at"] = case.accepted_at.isoformat() if case.accepted_at else None
    item["concluded_at"] = case.concluded_at.isoformat() if case.concluded_at else None
    item["updated_at"] = case.updated_at.isoformat() if case.updated_at else None
    item["events"] = [
        {
            "id": e.id,
            "action": e.action,
            "at": e.at.isoformat(),
            "actor_name": e.actor_name,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "note": e.note,
        }
        for e in events
    ]
    return item
