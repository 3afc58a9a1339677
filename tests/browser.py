"""Browser tests: the app served on loopback, driven by Debian's chromium through Playwright.

tests/conftest.py loads this module as a plugin, so its fixtures are available in every
test module: do not import them (a module-level copy of the session ``browser`` would
start a second Playwright); import only the helpers (``sign_in_page``, ``PHONE`` ...).
``live_server`` serves a copy of the demo database
(``live_db_url``), so data a browser test creates is committed and seen by the server.
``page`` is a fresh browser context per test in which every request to another
origin is blocked and recorded (``page.blocked``), as is every failed request
(``page.failed``), so a test can assert that a page needs nothing from outside.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import TEST_PASSWORD
from webapp import create_app
from webapp.db import database

CHROMIUM = os.environ.get("GRIDCASE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture(scope="session")
def live_app(live_db_url):
    app = create_app(
        {
            "DATABASE_URL": live_db_url,
            "EMBEDDED_DB": False,
            "AUTO_MIGRATE": False,
            "SECRET_KEY": "live-test-secret",
        }
    )
    yield app
    database(app).engine.dispose()


@pytest.fixture(scope="session")
def live_server(live_app):
    """The app on http://127.0.0.1:<port>, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_page(browser, base_url: str, **options):
    """A new context and page on ``base_url``; other origins are blocked and recorded.

    The page carries ``blocked`` (requests to other origins), ``failed`` (failed
    requests), ``aborted`` (requests the browser itself cancelled, ``net::ERR_ABORTED``:
    a fetch still in flight when the page navigates away, as a look-up typed into a
    form when the form is sent) and ``console_errors`` lists. Close it with
    ``page.context.close()``.
    """
    context = browser.new_context(
        base_url=base_url, **{"locale": "zh-CN", "timezone_id": "Asia/Shanghai", **options}
    )
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg.blocked = []
    pg.failed = []
    pg.aborted = []
    pg.console_errors = []

    def route(r):
        if r.request.url.startswith(base_url) or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            pg.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)

    def failed(req):
        cancelled = req.failure == "net::ERR_ABORTED"
        (pg.aborted if cancelled else pg.failed).append((req.url, req.failure))

    pg.on("requestfailed", failed)
    pg.on(
        "console", lambda msg: pg.console_errors.append(msg.text) if msg.type == "error" else None
    )
    pg.on("pageerror", lambda exc: pg.console_errors.append(str(exc)))
    return pg


@pytest.fixture
def page(browser, live_server, request):
    """A fresh page (phone-sized with ``@pytest.mark.phone(**context_options)``)."""
    options = {}
    marker = request.node.get_closest_marker("phone")
    if marker is not None:
        options.update(PHONE)
        options.update(marker.kwargs)
    pg = open_page(browser, live_server, **options)
    yield pg
    pg.context.close()


@pytest.fixture
def live_user(live_app, demo_areas):
    """Create a committed account in the live database: live_user(role, area=None, **kw)."""
    from webapp.auth.accounts import create_user

    made = []

    def make(role: str = "county_staff", area: str | None = None, **kw):
        with live_app.app_context():
            session = database(live_app).sessions()
            user = create_user(
                session,
                f"live_{role}_{uuid.uuid4().hex[:6]}",
                role,
                area or demo_areas[role],
                TEST_PASSWORD,
                **kw,
            )
            session.commit()
            session.close()
        made.append(user)
        return user

    return make


def signed_in_http(live_server: str, user, password: str = TEST_PASSWORD):
    """A ``requests`` session signed in as ``user`` through the real form (no browser)."""
    import requests

    http = requests.Session()
    csrf = page_csrf(http.get(f"{live_server}/login").text)
    signed_in = http.post(
        f"{live_server}/login",
        data={"username": user.username, "password": password, "csrf_token": csrf},
    )
    assert signed_in.ok
    return http


def page_csrf(page: str) -> str:
    """The CSRF token a page of the app carries in its head."""
    import re

    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def post_at_once(http, url: str, data: dict, copies: int = 3, timeout: float = 60) -> list:
    """POST ``data`` to ``url`` from ``copies`` threads released together, each on its
    own connection with ``http``'s cookies (a double click, a retrying browser)."""
    import requests

    barrier, answers = threading.Barrier(copies), [None] * copies

    def send(i):
        other = requests.Session()
        other.cookies.update(http.cookies.get_dict())
        barrier.wait()
        answers[i] = other.post(url, data=data, allow_redirects=False, timeout=timeout)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def sign_in_page(page, user, password: str = TEST_PASSWORD) -> None:
    """Sign in through the real form."""
    page.goto("/login")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
