"""Cookies behind HTTPS, the proxy setting, password hashing, the sign-in limit, headers.

tests/test_auth.py already covers sign-in, CSRF on logout, session expiry and the
basic flags; this module covers the deployment settings (GRIDCASE_SECURE_COOKIES,
GRIDCASE_PROXY_COUNT) and checks the headers on every kind of answer.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import CSRF, TEST_PASSWORD
from webapp import create_app
from webapp.db import database


@pytest.fixture
def app_with(db_url, monkeypatch):
    """create_app() with the given GRIDCASE_* environment, on the test database."""
    made = []

    def make(**env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        app = create_app(
            {
                "DATABASE_URL": db_url,
                "EMBEDDED_DB": False,
                "AUTO_MIGRATE": False,
                "TESTING": True,
                "SECRET_KEY": "s",
            }
        )
        made.append(app)
        return app

    yield make
    for app in made:
        database(app).engine.dispose()


def _sign_in(client, username, password=TEST_PASSWORD, **headers):
    client.get("/login", headers=headers)
    with client.session_transaction() as s:
        token = s["csrf"]
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=headers,
    )


@pytest.fixture
def committed_user(db_url):
    """An account committed in the test database (another app instance must see it)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from webapp.auth.accounts import create_user

    engine = create_engine(db_url)
    names = []

    def make(role="county_staff", area="410726"):
        import uuid

        with Session(engine) as s:
            user = create_user(s, f"https_{uuid.uuid4().hex[:8]}", role, area, TEST_PASSWORD)
            s.commit()
            names.append(user.username)
            return user

    yield make
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM login_attempts WHERE username = ANY(:n)"), {"n": names})
        conn.execute(text("DELETE FROM users WHERE username = ANY(:n)"), {"n": names})
    engine.dispose()


def test_secure_cookie_and_hsts_behind_https(app_with, committed_user):
    user = committed_user()
    app = app_with(GRIDCASE_SECURE_COOKIES="1", GRIDCASE_PROXY_COUNT="1")
    client = app.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    response = _sign_in(client, user.username, **https)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    # Links the app makes are https, and the address logged is the client's, not the proxy's.
    doc = client.get("/api/v1/openapi.json", headers=https).get_json()
    assert doc["servers"][0]["url"].startswith("https://")
    engine = database(app).engine
    with engine.connect() as conn:
        ips = (
            conn.execute(
                text("SELECT host(ip) FROM audit_log WHERE username = :u AND action = 'sign_in'"),
                {"u": user.username},
            )
            .scalars()
            .all()
        )
    assert ips == ["203.0.113.9"]


def test_forwarded_headers_are_ignored_without_a_proxy(app_with, committed_user):
    """Without GRIDCASE_PROXY_COUNT a client cannot forge its address to dodge the sign-in limit."""
    user = committed_user()
    app = app_with(GRIDCASE_PROXY_COUNT="0")
    client = app.test_client()
    for i in range(5):
        r = _sign_in(
            client, user.username, "wrong-password", **{"X-Forwarded-For": f"198.51.100.{i}"}
        )
        assert r.status_code == 401
    r = _sign_in(client, user.username, **{"X-Forwarded-For": "198.51.100.77"})
    assert r.status_code == 429
    with database(app).engine.connect() as conn:
        ips = set(
            conn.execute(
                text("SELECT host(ip) FROM login_attempts WHERE username = :u"),
                {"u": user.username},
            ).scalars()
        )
    assert ips == {"127.0.0.1"}
    assert "Strict-Transport-Security" not in r.headers
    assert "Secure" not in _sign_in(app.test_client(), user.username).headers.get("Set-Cookie", "")


def test_sign_in_limit_per_address(client, make_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "SIGN_IN_LIMITS", {"per_address": 6, "per_account": 100})
    users = [make_user("county_staff") for _ in range(2)]
    for i in range(6):
        assert _sign_in(client, users[i % 2].username, "wrong-password").status_code == 401
    r = _sign_in(client, users[0].username)
    assert r.status_code == 429 and "次数过多" in r.get_data(as_text=True)


def test_passwords_are_hashed_with_scrypt_and_salted(session, make_user):
    a, b = make_user("planner"), make_user("planner")
    for user in (a, b):
        method, salt, digest = user.password_hash.split("$")
        assert method.startswith("scrypt:") and int(method.split(":")[1]) >= 2**15
        assert TEST_PASSWORD not in user.password_hash
    assert a.password_hash != b.password_hash  # same password, different salts


PAGES = [
    "/login",
    "/",
    "/cases/",
    "/stats",
    "/exchange/",
    "/field/report",
    "/api/v1/categories",
    "/nowhere",
]


@pytest.mark.parametrize("path", PAGES)
def test_security_headers_on_every_kind_of_answer(client, login, path):
    login("county_staff")
    r = client.get(path)
    csp = dict(
        part.strip().split(" ", 1)
        for part in r.headers["Content-Security-Policy"].split(";")
        if part.strip()
    )
    assert csp["default-src"] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'self'" and csp["form-action"] == "'self'"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_what_a_signed_in_account_sees_is_never_cached(client, login):
    """No cache keeps pages or data of a signed-in account (nor the back button after
    signing out on a shared computer); public files and the sign-in page may be cached."""
    login("county_staff")
    for path in ("/", "/cases/", "/stats", "/api/v1/categories", "/nowhere"):
        assert client.get(path).headers.get("Cache-Control") == "no-store", path
    assert (
        client.get("/api/v1/categories", headers={"Authorization": "Bearer x"}).status_code == 401
    )
    client.post("/logout", data={"csrf_token": CSRF})
    for path in ("/login", "/static/css/app.css", "/vendor/leaflet/dist/leaflet.js"):
        r = client.get(path)
        assert r.headers.get("Cache-Control") != "no-store", path
        r.close()


def test_a_form_part_without_a_readable_name_is_a_clear_400():
    """Werkzeug can hand back a part it could not read as None: refused, not a 500."""
    from webapp.errors import AppError
    from webapp.security import _check

    for field, value in ((None, "x"), ("name", None)):
        with pytest.raises(AppError) as err:
            _check(field, value)
        assert err.value.status == 400 and err.value.code == "invalid_form"
