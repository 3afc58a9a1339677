"""Durability settings, recovery after a database restart, backup and restore."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from webapp import create_app
from webapp.backup import backup, restore
from webapp.db import UnsafeDatabase, check_durability, create_database, database, drop_database
from webapp.migrate import upgrade
from webapp.pgcluster import EmbeddedCluster

# Rows for the tables the demo county leaves empty, written as the app would write them,
# so that the round trip is checked on data in every table. A new table without a row
# here fails test_backup_and_restore_round_trip_exactly: add one.
FILL = [
    """INSERT INTO users (username, display_name, role, area_code, unit, phone, password_hash, last_login_at)
       SELECT 'backup_worker', '备份测试网格员', 'grid_worker', min(code), '城关镇', '13800001111',
              'scrypt:32768:8:1$salt$hash', now() FROM areas WHERE level = 'grid'""",
    """INSERT INTO api_tokens (user_id, token_hash, label, last_used_at)
       SELECT id, repeat('ab', 32), '备份测试', now() FROM users WHERE username = 'backup_worker'""",
    """INSERT INTO login_attempts (username, ip, success) VALUES ('backup_worker', '127.0.0.1', true)""",
    """INSERT INTO audit_log (user_id, username, action, case_id, ip, detail)
       SELECT u.id, u.username, 'reveal_personal_data', (SELECT min(id) FROM cases), '127.0.0.1', '{"why": "备份"}'
       FROM users u WHERE username = 'backup_worker'""",
    """INSERT INTO case_photos (case_id, client_photo_id, uploader_id, sha256, size_bytes, width, height,
                                original_format, original_bytes)
       SELECT (SELECT min(id) FROM cases), '1b0e3a7c-0f5c-4d7e-9b1e-3c7a2d9e4f10', id, repeat('cd', 32),
              1234, 640, 480, 'JPEG', 2345 FROM users WHERE username = 'backup_worker'""",
    """INSERT INTO case_repeat_dismissals (case_id, other_id, user_id)
       SELECT (SELECT min(id) FROM cases), (SELECT max(id) FROM cases), id
       FROM users WHERE username = 'backup_worker'""",
    """INSERT INTO sweeps (grid_id, grid_code, village_code, township_code, county_code, period_kind, period_start,
                           zero_report, note, reporter_id)
       SELECT a.id, a.code, a.village_code, a.township_code, a.county_code, 'monthly', DATE '2026-03-01', false,
              '排查发现一起纠纷', u.id
       FROM areas a JOIN users u ON u.area_code = a.code WHERE u.username = 'backup_worker'""",
    """INSERT INTO sweep_cases (sweep_id, case_id) SELECT max(s.id), (SELECT min(id) FROM cases) FROM sweeps s""",
    """INSERT INTO visit_plans (title, area_code, date_from, date_to, status, weights, start_point, created_by,
                                published_at)
       SELECT '备份测试走访计划', left(area_code, 9), DATE '2026-03-02', DATE '2026-03-06', 'published',
              '{"overdue": 3}', ST_SetSRID(ST_MakePoint(114.2, 35.2), 4326), id, now()
       FROM users WHERE username = 'backup_worker'""",
    """INSERT INTO visit_plan_people (plan_id, user_id, daily_capacity, start_point, start_label)
       SELECT p.id, u.id, 6, ST_SetSRID(ST_MakePoint(114.2, 35.2), 4326), '村委会'
       FROM visit_plans p, users u WHERE u.username = 'backup_worker'""",
    """INSERT INTO visit_stops (plan_id, kind, case_id, grid_code, location, score, reasons, user_id, day, seq, leg_m)
       SELECT p.id, 'case', c.id, c.grid_code, c.location, 0.75, '[{"why": "逾期"}]', u.id, DATE '2026-03-02', 1, 812.5
       FROM visit_plans p, users u, cases c
       WHERE u.username = 'backup_worker' AND c.id = (SELECT min(id) FROM cases)""",
    """INSERT INTO visit_records (client_id, stop_id, plan_id, case_id, grid_code, user_id, outcome, satisfaction,
                                  note, location, visited_at)
       SELECT '2b7e1f0c-1d2e-4f3a-8b9c-0d1e2f3a4b5c', s.id, s.plan_id, s.case_id, s.grid_code, s.user_id, 'done',
              'satisfied', '当事人表示满意', s.location, now()
       FROM visit_stops s""",
    """INSERT INTO road_vertices (county_code, geom)
       SELECT min(code), ST_SetSRID(ST_MakePoint(114.2, 35.2), 4326) FROM areas WHERE level = 'county'""",
    """INSERT INTO roads (county_code, name, kind, length_m, source, target, geom)
       SELECT county_code, '备份测试路', 'residential', 91.2, id, id,
              ST_SetSRID(ST_MakeLine(ST_MakePoint(114.2, 35.2), ST_MakePoint(114.201, 35.2)), 4326)
       FROM road_vertices""",
    """INSERT INTO ledger_imports (user_id, filename, sha256, state, summary, imported)
       SELECT id, '台账.xlsx', repeat('ef', 32), 'done', '{"rows": 10}', 4
       FROM users WHERE username = 'backup_worker'""",
    """INSERT INTO api_idempotency_keys (user_id, key, request_hash, status, response)
       SELECT id, 'k-1', repeat('01', 32), 201, '{"id": 1}' FROM users WHERE username = 'backup_worker'""",
    # A case in a month of its own: the trigger adds its case_tallies row.
    """INSERT INTO cases (title, category_id, channel, location, grid_id, grid_code, village_code,
                          township_code, county_code, reported_at)
       SELECT '备份测试案件', (SELECT min(id) FROM categories), 'visit', label_point, id, code,
              village_code, township_code, county_code, TIMESTAMPTZ '2001-03-05 10:00:00+08'
       FROM areas WHERE level = 'grid' ORDER BY code LIMIT 1""",
]


def app_tables(conn) -> list[str]:
    """Every table of the database's public schema but those of extensions (PostGIS's)."""
    return (
        conn.execute(
            text(
                """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
            ORDER BY 1
            """
            )
        )
        .scalars()
        .all()
    )


def fingerprint(url: str) -> dict[str, str]:
    """An order-independent digest of every row of every table, and each sequence's position."""
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for t in app_tables(conn):
            out[t] = conn.execute(
                text(
                    "SELECT count(*) || ':' || "
                    "coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') "
                    f"FROM {t} x"
                )
            ).scalar_one()
        for name, last in conn.execute(
            text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
        ):
            out[f"sequence {name}"] = str(last)
    engine.dispose()
    return out


@pytest.fixture
def filled_url(server_url, template_url):
    """A copy of the demo county with a row in every table."""
    from sqlalchemy.engine import make_url

    name = f"{make_url(template_url).database}_backup_src"
    admin = create_engine(
        make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(template_url).database}"'))
    admin.dispose()
    url = make_url(template_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in FILL:
            assert conn.execute(text(statement)).rowcount == 1, statement
    engine.dispose()
    yield url
    drop_database(url)


def test_backup_and_restore_round_trip_exactly(filled_url, server_url, tmp_path):
    from sqlalchemy.engine import make_url

    before = fingerprint(filled_url)
    empty = sorted(t for t, digest in before.items() if digest.startswith("0:"))
    assert not empty, f"tables without a row to round-trip (add one to FILL): {empty}"
    assert {
        "users",
        "audit_log",
        "visit_plans",
        "visit_stops",
        "visit_records",
        "case_photos",
        "sweeps",
        "case_tallies",
    } <= set(before)
    dump = backup(filled_url, tmp_path / "gridcase.dump")
    assert dump.stat().st_size > 100_000
    target = (
        make_url(server_url)
        .set(database=f"{make_url(filled_url).database}_restored")
        .render_as_string(hide_password=False)
    )
    create_database(target)
    try:
        restore(target, dump)
        assert fingerprint(target) == before
        assert int(before["cases"].split(":")[0]) > 0
        restored = create_engine(target)  # the tallies came back, and so did their triggers
        with restored.connect() as conn:
            tallied = conn.execute(
                text("SELECT cases FROM case_tallies WHERE month = DATE '2001-03-01'")
            ).scalar_one()
            triggers = conn.execute(
                text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'case_tallies_%'")
            ).scalar_one()
        restored.dispose()
        assert tallied == 1 and triggers == 4
        changed = create_engine(target)
        with changed.begin() as conn:  # a change the fingerprint must see ...
            conn.execute(text("UPDATE visit_records SET note = note || '（改）'"))
        changed.dispose()
        assert fingerprint(target) != before
        restore(target, dump)  # ... and restoring over existing data replaces it
        assert fingerprint(target) == before
    finally:
        drop_database(target)


def test_durability_settings_are_checked(engine):
    settings = check_durability(engine)
    assert settings == {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


def test_synchronous_commit_is_forced_per_connection(db_url):
    from webapp.db import make_engine

    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
    engine.dispose()


def test_unsafe_server_is_refused(tmp_path):
    cluster = EmbeddedCluster(tmp_path / "var")
    cluster.initialize()
    with open(cluster.data_dir / "postgresql.auto.conf", "a") as fh:
        fh.write("fsync = off\n")
    cluster.start()
    try:
        url = cluster.url("unsafe")
        app = create_app(
            {"DATABASE_URL": url, "EMBEDDED_DB": False, "AUTO_MIGRATE": False, "SECRET_KEY": "x"}
        )
        create_database(url)
        with pytest.raises(UnsafeDatabase, match="fsync"):
            database(app).ensure_ready()
        assert app.test_client().get("/healthz").status_code == 503
        database(app).engine.dispose()
    finally:
        cluster.stop("immediate")


@pytest.fixture
def restartable(tmp_path):
    """An app on a migrated database of its own cluster, which the test may stop and start."""
    cluster = EmbeddedCluster(tmp_path / "var")
    cluster.start()
    try:
        url = cluster.url("restart")
        create_database(url)
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app(
            {"DATABASE_URL": url, "EMBEDDED_DB": False, "AUTO_MIGRATE": False, "SECRET_KEY": "x"}
        )
        yield cluster, app
        database(app).engine.dispose()
    finally:
        cluster.stop("immediate")


def test_app_recovers_by_itself_after_a_database_restart(restartable):
    """During the outage: a clear 503. After it: requests succeed, no app restart."""
    cluster, app = restartable
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200
    cluster.stop("immediate")
    r = client.get("/healthz")
    assert r.status_code == 503 and r.get_json()["db"] == "error"
    r = client.post("/login", data={"username": "x", "password": "y"})
    assert r.status_code in (400, 503)  # CSRF refuses first; never a 500
    r = client.get("/api/v1/locate?lon=114&lat=35", headers={"Authorization": "Bearer gc_x"})
    assert r.status_code == 503 and r.get_json()["error"]["code"] == "db_unavailable"
    cluster.start()
    assert client.get("/healthz").status_code == 200
    r = client.get("/api/v1/locate?lon=114&lat=35", headers={"Authorization": "Bearer gc_x"})
    assert r.status_code == 401  # the database answers again: the token is simply unknown


def test_a_restart_nobody_noticed_costs_no_failed_request_and_busy_checkouts_no_ping(restartable):
    """The pool is checked at checkout by asking the socket, not by a round trip.

    A connection in use (returned to the pool a moment ago) is taken out without a
    ping; after a restart during which no request came (so no error invalidated the
    pool), the dead connections are noticed at checkout and the very first request
    succeeds.
    """
    cluster, app = restartable
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    db = database(app)
    pings = []
    real_ping = db.engine.dialect.do_ping
    db.engine.dialect.do_ping = lambda conn: pings.append(conn) or real_ping(conn)
    try:
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
        assert pings == []  # busy connections: no round trip to check them
        with db.engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        cluster.stop("fast")
        cluster.start()
        r = client.get("/healthz")
        assert r.status_code == 200, r.get_json()
        assert pings, "the dead connection was not checked"
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
        r = client.get("/api/v1/locate?lon=114&lat=35", headers={"Authorization": "Bearer gc_x"})
        assert r.status_code == 401
    finally:
        db.engine.dialect.do_ping = real_ping


def test_backup_and_restore_commands_round_trip_the_demo_county(filled_url, server_url, tmp_path):
    """`flask db backup` / `flask db restore --yes` (what `make backup` / `make restore` run), end to end."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sqlalchemy.engine import make_url

    flask = str(Path(sys.executable).with_name("flask"))
    before = fingerprint(filled_url)
    dump = tmp_path / "nas" / "gridcase.dump"

    def run(url: str, *args: str) -> str:
        env = {**os.environ, "DATABASE_URL": url, "GRIDCASE_SECRET_KEY": "backup-test"}
        proc = subprocess.run(
            [flask, "--app", "webapp", "db", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    assert "已备份到" in run(filled_url, "backup", str(dump))
    assert dump.exists() and not dump.with_suffix(".dump.partial").exists()
    target = (
        make_url(server_url)
        .set(database=f"{make_url(filled_url).database}_cli")
        .render_as_string(hide_password=False)
    )
    create_database(target)
    try:
        engine = create_engine(target)
        upgrade(engine)  # a live database with other content: restore replaces all of it
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO settings (key, value) VALUES ('stray', '\"x\"')"))
        engine.dispose()
        assert "已从" in run(target, "restore", "--yes", str(dump))
        after = fingerprint(target)
        assert after == before
        assert int(after["cases"].split(":")[0]) >= 3000
    finally:
        drop_database(target)
