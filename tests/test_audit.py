"""The audit log: every reveal, state change and export writes its entry; nobody edits it.

Each row of ``PATHS`` does one thing through the app as a role allowed to, and must
leave exactly one new audit entry of its action, naming the account, the time and the
client's address. (Sign-in is checked in tests/test_auth.py, the ledger import job in
tests/test_exchange_page.py.)
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import CSRF, CSRF_HEADERS
from tests.field_fixtures import image_bytes
from tests.security_fixtures import *  # noqa: F403
from tests.security_fixtures import Targets, form


@dataclass(frozen=True)
class Path_:
    name: str
    role: str
    action: str
    do: Callable[[object, Targets], object]


def _report(client, t: Targets):
    lon, lat = _point(t)
    return client.post(
        "/api/v1/field/reports",
        json={
            "client_id": str(uuid.uuid4()),
            "category_id": 1,
            "description": "邻里纠纷",
            "lon": lon,
            "lat": lat,
        },
        headers=CSRF_HEADERS,
    )


def _point(t: Targets):
    from geoalchemy2.shape import to_shape

    p = to_shape(t.case_in.location)
    return p.x, p.y


PATHS = [
    Path_(
        "reveal personal data",
        "township_leader",
        "reveal_personal_data",
        lambda c, t: c.post(f"/cases/{t.case_in.id}/reveal", data=form()),
    ),
    Path_(
        "case action",
        "county_staff",
        "case_action",
        lambda c, t: c.post(
            f"/cases/{t.case_in.id}/actions/accept", data=form(version=str(t.case_in.version))
        ),
    ),
    Path_(
        "desk registration",
        "county_staff",
        "case_register",
        lambda c, t: c.post(
            "/cases/new",
            data=form(
                channel="visit",
                case_class="request",
                category_id="1",
                title="停车纠纷",
                description="车位被占",
                people_count="1",
                batch_count="1",
                lon=str(_point(t)[0]),
                lat=str(_point(t)[1]),
            ),
        ),
    ),
    Path_("field report", "grid_worker", "case_register", _report),
    Path_(
        "field photo",
        "grid_worker",
        "case_photo_add",
        lambda c, t: c.post(
            f"/api/v1/field/cases/{t.case_in.id}/photos",
            data={
                "client_photo_id": str(uuid.uuid4()),
                "photo": (io.BytesIO(image_bytes()), "p.jpg"),
            },
            headers=CSRF_HEADERS,
        ),
    ),
    Path_(
        "sweep",
        "grid_worker",
        "sweep_file",
        lambda c, t: c.post(
            "/api/v1/field/sweeps", json={"zero_report": True}, headers=CSRF_HEADERS
        ),
    ),
    Path_(
        "API case",
        "county_staff",
        "case_register",
        lambda c, t: c.post(
            "/api/v1/cases",
            json={"title": "路灯", "category": "other", "lon": _point(t)[0], "lat": _point(t)[1]},
            headers={"Authorization": f"Bearer {t.token}", "Idempotency-Key": uuid.uuid4().hex},
        ),
    ),
    Path_(
        "Open311 request",
        "county_staff",
        "case_register",
        lambda c, t: c.post(
            "/open311/v2/requests.json",
            data={
                "api_key": t.token,
                "service_code": "other",
                "description": "路灯",
                "lat": str(_point(t)[1]),
                "long": str(_point(t)[0]),
            },
        ),
    ),
    Path_(
        "link repeat",
        "county_staff",
        "case_link_repeat",
        lambda c, t: c.post(
            f"/cases/{t.case_in.id}/repeat",
            data=form(other_id=str(t.case_out.id), version=str(t.case_in.version)),
        ),
    ),
    Path_(
        "dismiss repeat",
        "county_staff",
        "case_dismiss_repeat",
        lambda c, t: c.post(f"/cases/{t.case_in.id}/repeat/{t.case_out.id}/dismiss", data=form()),
    ),
    Path_(
        "ledger upload",
        "county_staff",
        "ledger_upload",
        lambda c, t: c.post(
            "/exchange/imports",
            data={
                "csrf_token": CSRF,
                "file": (io.BytesIO("登记日期,问题类别,事由\n".encode()), "l.csv"),
            },
        ),
    ),
    *[
        Path_(
            f"export {what}.{fmt}",
            role,
            "export",
            (lambda u: lambda c, t: c.get(u))(f"/exchange/export/{what}.{fmt}?area={t_area}"),
        )
        for what, fmt, role, t_area in [
            ("cases", "csv", "county_staff", "410726100"),
            ("cases", "geojson", "planner", "410726100"),
            ("cases", "gpkg", "admin", "410726100"),
            ("areas", "csv", "planner", ""),
        ]
    ],
    Path_(
        "visit outcome",
        "grid_worker",
        "visit_outcome",
        lambda c, t: c.post(
            f"/api/v1/visits/stops/{t.stop_in}/outcomes",
            json={"client_id": str(uuid.uuid4()), "outcome": "nobody_home"},
            headers=CSRF_HEADERS,
        ),
    ),
    Path_(
        "visit plan: drop a stop",
        "planner",
        "visit_stop_drop",
        lambda c, t: c.post(f"/visits/plans/{t.plan_in}/stops/{t.stop_in}/drop", data=form()),
    ),
    Path_("ranking.csv", "planner", "export", lambda c, t: c.get("/stats/ranking.csv")),
    Path_("monthly report", "county_staff", "export", lambda c, t: c.get("/stats/monthly.xlsx")),
]


@pytest.fixture
def no_jobs(monkeypatch):
    """Ledger checks run in a background thread: here only the upload's own entry counts."""
    from webapp.exchange import jobs

    monkeypatch.setattr(jobs, "start", lambda import_id, kind: None)


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_each_path_writes_its_entry(client, session, targets, no_jobs, path: Path_):
    t = targets(path.role)
    if path.name in ("link repeat", "dismiss repeat"):  # within the county's own cases
        t.case_out = _another_case(session, t)

    def entries():
        return session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = :a AND user_id = :u"),
            {"a": path.action, "u": t.user.id},
        ).scalar_one()

    before = entries()
    response = path.do(client, t)
    assert response.status_code < 400, response.get_data(as_text=True)[:300]
    response.close()
    assert entries() == before + 1
    row = session.execute(
        text(
            "SELECT username, host(ip), now() - at < interval '1 minute' AS recent FROM audit_log "
            "WHERE action = :a AND user_id = :u ORDER BY id DESC LIMIT 1"
        ),
        {"a": path.action, "u": t.user.id},
    ).one()
    assert row.username == t.user.username and row.host == "127.0.0.1" and row.recent


def _another_case(session, t: Targets):
    from webapp.cases.models import Case

    other_id = session.execute(
        text("SELECT id FROM cases WHERE county_code = '410726' AND id <> :i ORDER BY id LIMIT 1"),
        {"i": t.case_in.id},
    ).scalar_one()
    return session.get(Case, other_id)


def test_the_log_cannot_be_edited(session):
    """No endpoint writes to it but by INSERT, and the database refuses UPDATE, DELETE, TRUNCATE."""
    from sqlalchemy.exc import DBAPIError

    from webapp.auth.audit import record

    source = Path(__file__).resolve().parent.parent / "webapp"
    for py in source.rglob("*.py"):
        code = py.read_text(encoding="utf-8").lower()
        for verb in (
            "update audit_log",
            "delete from audit_log",
            "truncate audit_log",
            "truncate table audit_log",
        ):
            assert verb not in code, f"{py} edits the audit log"
    entry = record(session, "test", username="x")
    for sql in (
        "UPDATE audit_log SET action = 'y' WHERE id = :i",
        "DELETE FROM audit_log WHERE id = :i",
        "TRUNCATE audit_log",
        "TRUNCATE case_events CASCADE",
    ):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(sql), {"i": entry.id})


def test_an_empty_log_may_be_truncated(session):
    """Nothing is lost by truncating an empty table (the bulk loader's first load does)."""
    session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
    session.execute(text("DELETE FROM audit_log"))
    session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    session.execute(text("TRUNCATE audit_log"))  # empty: allowed
    record_count = session.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    assert record_count == 0
