"""The cheap path of every request's identity: the user by one plain statement, no user for
anonymous views (health check, static files), and the prepared report statement.

These are what the field bench's throughput rests on (BENCHMARKS.md section 2); each test
checks the behaviour the shortcut must keep, not only that it is taken.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from webapp.auth.accounts import user_by_id
from webapp.auth.models import User
from webapp.db import Prepared


@pytest.fixture
def statements(connection):
    """The SQL the app sends on the test's connection during the test, in order."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection, "before_cursor_execute", record)


def _fresh(connection) -> Session:
    return Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


def test_user_by_id_is_the_orm_user(connection, make_user):
    made = make_user("grid_worker", phone="13800000000", unit="某镇政府")
    other = _fresh(connection)
    orm = other.get(User, made.id)
    s = _fresh(connection)
    user = user_by_id(s, made.id)
    assert isinstance(user, User) and user is not orm
    for column in User.__table__.columns:
        assert getattr(user, column.key) == getattr(orm, column.key), column.key
    state = inspect(user)
    assert state.persistent and state.session is s and not s.dirty and not s.is_modified(user)
    assert s.get(User, made.id) is user  # in the identity map: no second load
    assert user.county_code == orm.county_code and user.role_enum == orm.role_enum
    s.close()
    other.close()


def test_user_by_id_changes_are_flushed(connection, make_user, statements):
    made = make_user("grid_worker")
    s = _fresh(connection)
    user = user_by_id(s, made.id)
    s.flush()
    assert not any(st.lstrip().upper().startswith("UPDATE") for st in statements)
    user.display_name = "改过的名字"
    s.flush()
    assert any(st.lstrip().upper().startswith("UPDATE USERS") for st in statements)
    assert (
        connection.scalar(text("SELECT display_name FROM users WHERE id = :i"), {"i": made.id})
        == "改过的名字"
    )
    s.close()


def test_user_by_id_missing_and_known(connection, make_user, statements):
    made = make_user("county_staff")
    s = _fresh(connection)
    assert user_by_id(s, 2**31 - 1) is None
    known = s.get(User, made.id)
    before = len(statements)
    assert user_by_id(s, made.id) is known
    assert len(statements) == before  # already in the session: not read again
    s.close()


def test_user_by_id_is_prepared_once_per_connection(connection, make_user, statements):
    made = make_user("grid_worker")
    del statements[:]
    for _ in range(3):  # a session per request, the same pooled connection
        s = _fresh(connection)
        assert user_by_id(s, made.id).id == made.id
        s.close()
    assert sum(1 for st in statements if st.startswith("PREPARE gridcase_user_by_id")) <= 1
    assert _user_reads(statements) == 3
    assert not any("FROM users" in st for st in statements if not st.startswith("PREPARE"))
    s = _fresh(connection)
    assert user_by_id(s, 0) is None and user_by_id(s, 2**31) is None  # no such row, no error
    s.close()


def test_disabled_account_is_signed_out(client, login, session):
    user = login("grid_worker")
    assert client.get("/api/v1/field/session").status_code == 200
    session.execute(text("UPDATE users SET active = false WHERE id = :i"), {"i": user.id})
    session.flush()
    r = client.get("/api/v1/field/session")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "session_expired"


def _user_reads(statements) -> int:
    return sum(1 for st in statements if st.startswith("EXECUTE gridcase_user_by_id"))


def test_health_check_and_static_files_load_no_user(client, login, statements):
    login("grid_worker")
    del statements[:]
    assert client.get("/api/v1/field/session").status_code == 200
    assert _user_reads(statements) == 1  # a signed-in view reads its user once
    del statements[:]
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json()["db"] == "ok"
    for path in ("/vendor/leaflet/dist/leaflet.js", "/static/css/app.css"):
        with client.get(path) as asset:
            assert asset.status_code == 200
    assert _user_reads(statements) == 0
    # A token they do not look at is not checked either (it would be a round trip).
    assert client.get("/healthz", headers={"Authorization": "Bearer gc_forged"}).status_code == 200
    assert _user_reads(statements) == 0
    # The anonymous views still send the security headers.
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_anonymous_implies_public(app):
    from webapp.auth.identity import anonymous

    @anonymous
    def view():
        return "ok"

    assert view.public and view.anonymous
    assert app.view_functions["health.healthz"].anonymous
    assert app.view_functions["vendor.asset"].anonymous
    # Pages and APIs are never anonymous: they would see no user.
    assert not getattr(app.view_functions["field_api.create_report"], "anonymous", False)
    assert not getattr(app.view_functions["auth.login"], "anonymous", False)


def test_prepared_statement(connection, app_ctx, statements):
    stmt = Prepared(
        "gridcase_test_prepared",
        "SELECT CAST(:a AS integer) * 2 AS doubled, :label || '!' AS label, 10 / :a AS tenth",
        {"a": "integer", "label": "text"},
    )
    s = _fresh(connection)
    assert s.execute(select(1)).scalar() == 1
    row = stmt.execute(s, {"a": 21, "label": "网格"}).one()
    assert (row.doubled, row.label, row.tenth) == (42, "网格!", 0)
    assert stmt.execute(s, {"a": 5, "label": "x"}).one().doubled == 10
    assert sum(1 for st in statements if st.startswith("PREPARE gridcase_test_prepared")) <= 1
    with pytest.raises(ValueError):
        stmt.execute(s, {"a": 1})  # a parameter missing
    with pytest.raises(ValueError):
        stmt.execute(s, {"a": 1, "label": "x", "extra": 2})
    # A database error is SQLAlchemy's as for any statement (the app's 503/500 handling).
    s.begin_nested()
    with pytest.raises(DBAPIError):
        stmt.execute(s, {"a": 0, "label": "x"})
    s.rollback()
    s.close()


def test_a_grid_of_another_county_stores_nothing(session, make_user, app_ctx, demo_areas):
    """The report statement itself keeps a report in the worker's county (nothing to undo)."""
    from datetime import UTC, datetime

    from tests.field_fixtures import report_payload
    from webapp.cases.queries import OutsideCounty
    from webapp.field.queries import file_report
    from webapp.field.schemas import parse_report

    worker = make_user("grid_worker")
    body = report_payload(session, demo_areas["grid_worker"])
    now = datetime.now(UTC)
    elsewhere = User(**{c: getattr(worker, c) for c in ("id", "username", "display_name", "role")})
    elsewhere.area_code = "999999" + worker.area_code[6:]  # the same person, another county
    with pytest.raises(OutsideCounty):
        file_report(session, elsewhere, parse_report(body, now), now)
    assert (
        session.execute(
            text("SELECT count(*) FROM cases WHERE client_id = :c"), {"c": body["client_id"]}
        ).scalar_one()
        == 0
    )
    filed = file_report(session, worker, parse_report(body, now), now)
    assert filed.created and filed.grid_code == demo_areas["grid_worker"]


@pytest.fixture
def live_reporter(live_db_url, demo_areas):
    """An app on a database with real commits, a grid worker of it signed in, and its engine."""
    import time
    import uuid

    from tests.conftest import CSRF, TEST_PASSWORD
    from webapp import create_app
    from webapp.auth.accounts import create_user
    from webapp.db import database

    app = create_app(
        {
            "DATABASE_URL": live_db_url,
            "EMBEDDED_DB": False,
            "AUTO_MIGRATE": False,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
        }
    )
    engine = database(app).engine
    with app.app_context(), Session(engine, expire_on_commit=False) as s:
        user = create_user(
            s, f"ac_{uuid.uuid4().hex[:8]}", "grid_worker", demo_areas["grid_worker"], TEST_PASSWORD
        )
        s.commit()
    client = app.test_client()
    now = int(time.time())
    with client.session_transaction() as cookie:
        cookie.update(uid=user.id, sv=user.session_version, at=now, seen=now, csrf=CSRF)
    yield app, client, engine
    engine.dispose()


def test_a_report_runs_in_autocommit_and_commits_before_it_answers(live_reporter, demo_areas):
    from tests.conftest import CSRF_HEADERS
    from tests.field_fixtures import report_payload

    app, client, engine = live_reporter
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((conn.connection.dbapi_connection.autocommit, statement.split()[0]))

    with engine.connect() as look:
        body = report_payload(look, demo_areas["grid_worker"])
    assert client.get("/api/v1/field/session").status_code == 200  # the app's first use
    event.listen(engine, "before_cursor_execute", record)
    try:
        r = client.post("/api/v1/field/reports", json=body, headers=CSRF_HEADERS)
        assert r.status_code == 201, r.get_json()
        case_id = r.get_json()["report"]["case_id"]
        # The user's and the report's prepared statements (and their PREPAREs), all in
        # autocommit.
        assert seen and all(autocommit for autocommit, _ in seen), seen
        assert [st for _, st in seen if st != "PREPARE"] == ["EXECUTE", "EXECUTE"]
        # Committed when it answered: another connection sees the case, its event and audit.
        with engine.connect() as other:
            row = other.execute(
                text(
                    "SELECT (SELECT count(*) FROM cases WHERE client_id = :c), "
                    "(SELECT count(*) FROM case_events WHERE case_id = :i), "
                    "(SELECT count(*) FROM audit_log WHERE case_id = :i AND action = 'case_register')"
                ),
                {"c": body["client_id"], "i": case_id},
            ).one()
            assert tuple(row) == (1, 1, 1)
        # A resend is recognised; a report outside the county stores nothing.
        again = client.post("/api/v1/field/reports", json=body, headers=CSRF_HEADERS)
        assert again.status_code == 200 and again.get_json()["report"]["case_id"] == case_id
        away = dict(body, client_id=str(__import__("uuid").uuid4()), lon=116.39, lat=39.91)
        r = client.post("/api/v1/field/reports", json=away, headers=CSRF_HEADERS)
        assert r.status_code == 422
        with engine.connect() as other:
            assert (
                other.execute(
                    text("SELECT count(*) FROM cases WHERE client_id IN (:a, :b)"),
                    {"a": body["client_id"], "b": away["client_id"]},
                ).scalar_one()
                == 1
            )
        # Other views keep their transaction: the pooled connection is back out of autocommit.
        del seen[:]
        assert client.get("/api/v1/field/session").status_code == 200
        assert seen and not any(autocommit for autocommit, _ in seen)
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_the_session_cookie_is_flasks_own(app):
    """The cached signer makes and checks exactly Flask's signed cookie, and refuses forgeries."""
    from flask.sessions import SecureCookieSessionInterface

    from webapp.auth.identity import CookieSessionInterface

    ours, flasks = CookieSessionInterface(), SecureCookieSessionInterface()
    data = {"uid": 7, "sv": 1, "csrf": "abc"}
    made = ours.get_signing_serializer(app).dumps(data)
    assert flasks.get_signing_serializer(app).loads(made) == data
    assert (
        ours.get_signing_serializer(app).loads(flasks.get_signing_serializer(app).dumps(data))
        == data
    )
    assert ours.get_signing_serializer(app) is ours.get_signing_serializer(app)
    payload, _, sig = made.rpartition(".")
    from itsdangerous import BadSignature

    with pytest.raises(BadSignature):
        ours.get_signing_serializer(app).loads(
            payload + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
        )
    # Another secret: a new signer, and the old cookie no longer verifies.
    old = app.secret_key
    try:
        app.secret_key = "another-secret"
        with pytest.raises(BadSignature):
            ours.get_signing_serializer(app).loads(made)
    finally:
        app.secret_key = old
    assert isinstance(app.session_interface, CookieSessionInterface)


@pytest.mark.parametrize("char", ["\x00", "\x08", "\x0c", "\x1b", "\x7f", "\x85", "\x9f", "\ufffd"])
@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "raw"])
@pytest.mark.parametrize("where", ["value", "key", "nested"])
def test_the_json_fast_path_still_refuses_every_unsafe_character(
    client, login, char, ascii_only, where
):
    """The byte scan that spares most bodies the walk over their strings lets none through."""
    import json

    from tests.conftest import CSRF_HEADERS

    login("grid_worker")
    text_ = f"现场{char}情况"
    body = {
        "value": {"description": text_},
        "key": {text_: "x"},
        "nested": {"extra": [{"a": [text_]}]},
    }[where]
    raw = json.dumps(body, ensure_ascii=ascii_only).encode()
    r = client.post(
        "/api/v1/field/reports",
        data=raw,
        headers={**CSRF_HEADERS, "Content-Type": "application/json"},
    )
    code = r.get_json()["error"]["code"]
    assert r.status_code == 400
    assert code == ("invalid_encoding" if char == "\ufffd" else "control_characters")


def test_the_json_fast_path_skips_only_bodies_it_can_vouch_for():
    from webapp.security import _json_may_hold_unsafe_text

    assert not _json_may_hold_unsafe_text(
        '{"description": "现场\\n情况\\t", "lon": 114.2}'.encode()
    )
    assert _json_may_hold_unsafe_text(b'{"a": "C:\\\\bin"}')  # may be an escape: walked
    assert _json_may_hold_unsafe_text('{"a": "x"}'.encode("utf-16"))
    assert _json_may_hold_unsafe_text(b"[" * 33 + b"]" * 33)
    assert not _json_may_hold_unsafe_text(b"[" * 32 + b"]" * 32)


def test_driver_execute_errors_are_sqlalchemys_and_a_lost_connection_is_invalidated(engine):
    from sqlalchemy.exc import DBAPIError, OperationalError

    from webapp.db import driver_execute

    with engine.connect() as conn:
        rows = driver_execute(conn, "SELECT %(a)s::int AS a, 'x' AS b", {"a": 2}).all()
        assert [(r.a, r.b) for r in rows] == [(2, "x")] and tuple(rows[0]) == (2, "x")
        assert driver_execute(conn, "SELECT 1 WHERE false", {}).one_or_none() is None
        with pytest.raises(DBAPIError) as failed:
            driver_execute(conn, "SELECT 1 / %(z)s::int", {"z": 0})
        assert not failed.value.connection_invalidated
        conn.rollback()
        pid = driver_execute(conn, "SELECT pg_backend_pid() AS pid", {}).one().pid
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(OperationalError) as lost:
            driver_execute(conn, "SELECT 1", {})
        assert lost.value.connection_invalidated and conn.invalidated
