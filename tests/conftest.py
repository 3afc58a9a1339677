"""Test harness: a real PostGIS, throwaway databases, and a transaction per test.

The server is the one ``DATABASE_URL`` names, or else the project's embedded
cluster (started if needed, stopped again at the end if we started it). Once per
session a template database is built by running the migrations and loading the demo
county with its synthetic cases; every database the tests use is a copy of it
(``CREATE DATABASE ... TEMPLATE``), dropped at the end.

Each test runs inside a transaction that is rolled back; the app's sessions join it
through savepoints, so code under test may commit (the warehouse pattern). Tests that
need committed data seen by another process (a live server, a browser) use
``live_db_url``, a separate copy.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from webapp import create_app
from webapp.db import create_database, database, drop_database
from webapp.migrate import upgrade
from webapp.pgcluster import EmbeddedCluster, project_var_dir

# The browser-test fixtures (live_server, browser, page, live_user) are shared by every
# module through this plugin; test modules import only its helpers (sign_in_page ...).
pytest_plugins = ["tests.browser"]

DEMO_CASES = int(os.environ.get("GRIDCASE_TEST_CASES", "3000"))
DEMO_SEED = 7
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server database to create test databases from."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield (
            make_url(url)
            .set(drivername="postgresql+psycopg2")
            .render_as_string(hide_password=False)
        )
        return
    cluster = EmbeddedCluster(project_var_dir())
    started = cluster.start()
    yield cluster.url("postgres")
    if started:
        cluster.stop()


def _url_for(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_url(server_url: str) -> Iterator[str]:
    """A migrated database holding the demo county and its cases, to copy from."""
    url = _url_for(server_url, f"gridcase_test_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    create_database(url)
    try:
        engine = create_engine(url)
        upgrade(engine)
        app = create_app(
            {"DATABASE_URL": url, "EMBEDDED_DB": False, "AUTO_MIGRATE": False, "TESTING": True}
        )
        with app.app_context():
            from webapp.demo import loader

            session = database(app).sessions()
            loader.load_boundaries(session)
            loader.load_cases(session, DEMO_CASES, DEMO_SEED)
            session.commit()
            session.close()
            database(app).engine.dispose()
        engine.dispose()
        yield url
    finally:
        drop_database(url)


def _copy(server_url: str, template_url: str, suffix: str) -> str:
    name = f"{make_url(template_url).database}_{suffix}"
    url = _url_for(server_url, name)
    admin = create_engine(_url_for(server_url, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template_url).database}"'))
    admin.dispose()
    return url


@pytest.fixture(scope="session")
def db_url(server_url: str, template_url: str) -> Iterator[str]:
    """The database the transactional tests share (a copy of the template)."""
    url = _copy(server_url, template_url, "tx")
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def live_db_url(server_url: str, template_url: str) -> Iterator[str]:
    """A database for tests whose data must be committed and seen by other processes."""
    url = _copy(server_url, template_url, "live")
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def engine(db_url: str):
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def app(db_url: str):
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "EMBEDDED_DB": False,
            "AUTO_MIGRATE": False,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
        }
    )
    yield app
    database(app).engine.dispose()


@pytest.fixture
def connection(engine, app) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back after the test; the app joins it."""
    conn = engine.connect()
    trans = conn.begin()
    db = database(app)
    saved = db.sessions, db._ready
    db.sessions = sessionmaker(
        bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    db._ready = True
    try:
        yield conn
    finally:
        db.sessions, db._ready = saved
        if trans.is_active:
            trans.rollback()
        conn.close()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """An ORM session inside the test's transaction."""
    s = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield s
    s.close()


@pytest.fixture
def client(app, connection):
    return app.test_client()


@pytest.fixture
def app_ctx(app, connection):
    with app.app_context():
        yield app


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- people -----------------------------------------------------------------------

TEST_PASSWORD = "test-password-123"
CSRF = "test-csrf-token"
CSRF_HEADERS = {"X-CSRF-Token": CSRF}


@pytest.fixture(scope="session")
def demo_areas(template_url) -> dict[str, str]:
    """A grid in the county seat and its village, township and county, by role."""
    engine = create_engine(template_url)
    with engine.connect() as conn:
        grid = conn.execute(
            text(
                "SELECT code FROM areas WHERE level = 'grid' AND code LIKE '410726100%' ORDER BY code LIMIT 1"
            )
        ).scalar_one()
    engine.dispose()
    return {
        "grid_worker": grid,
        "village_informant": grid[:12],
        "township_leader": grid[:9],
        "county_staff": "410726",
        "leader_in_charge": "410726",
        "planner": "410726",
        "admin": "410726",
    }


@pytest.fixture
def make_user(session, demo_areas):
    """Create an account in the test's transaction: make_user(role, area=None, **fields)."""
    from webapp.auth.accounts import create_user

    def make(
        role: str = "county_staff", area: str | None = None, username: str | None = None, **kw
    ):
        name = username or f"t_{role}_{uuid.uuid4().hex[:8]}"
        return create_user(session, name, role, area or demo_areas[role], TEST_PASSWORD, **kw)

    return make


@pytest.fixture
def login(client, make_user):
    """Sign the test client in: login(role, area=None, user=None, **fields) -> User."""
    import time

    def do(role: str = "county_staff", area: str | None = None, user=None, **kw):
        user = user or make_user(role, area, **kw)
        now = int(time.time())
        with client.session_transaction() as s:
            s.clear()
            s.update(uid=user.id, sv=user.session_version, at=now, seen=now, csrf=CSRF)
        return user

    return do
