"""Durability settings, recovery after a database restart, backup and restore."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from webapp import create_app
from webapp.backup import backup, restore
from webapp.db import UnsafeDatabase, check_durability, create_database, database, drop_database
from webapp.migrate import upgrade
from webapp.pgcluster import EmbeddedCluster

TABLES = ["areas", "categories", "cases", "case_events", "settings"]


def fingerprint(url: str) -> dict[str, str]:
    """An order-independent digest of every row of the app's main tables."""
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for t in TABLES:
            out[t] = conn.execute(
                text(f"SELECT count(*) || ':' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM {t} x")
            ).scalar_one()
    engine.dispose()
    return out


def test_backup_and_restore_round_trip_exactly(template_url, server_url, tmp_path):
    from sqlalchemy.engine import make_url

    before = fingerprint(template_url)
    dump = backup(template_url, tmp_path / "gridcase.dump")
    assert dump.stat().st_size > 100_000
    target = make_url(server_url).set(database=f"{make_url(template_url).database}_restored").render_as_string(hide_password=False)
    create_database(target)
    try:
        restore(target, dump)
        assert fingerprint(target) == before
        assert int(before["cases"].split(":")[0]) > 0
        restore(target, dump)  # restoring over existing data replaces it
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
        app = create_app({"DATABASE_URL": url, "EMBEDDED_DB": False, "AUTO_MIGRATE": False, "SECRET_KEY": "x"})
        create_database(url)
        with pytest.raises(UnsafeDatabase, match="fsync"):
            database(app).ensure_ready()
        assert app.test_client().get("/healthz").status_code == 503
        database(app).engine.dispose()
    finally:
        cluster.stop("immediate")


def test_app_recovers_by_itself_after_a_database_restart(tmp_path):
    """During the outage: a clear 503. After it: requests succeed, no app restart."""
    cluster = EmbeddedCluster(tmp_path / "var")
    cluster.start()
    try:
        url = cluster.url("restart")
        create_database(url)
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app({"DATABASE_URL": url, "EMBEDDED_DB": False, "AUTO_MIGRATE": False, "SECRET_KEY": "x"})
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
        database(app).engine.dispose()
    finally:
        cluster.stop("immediate")


def test_backup_and_restore_commands_round_trip_the_demo_county(template_url, server_url, tmp_path):
    """`flask db backup` / `flask db restore --yes` (what `make backup` / `make restore` run), end to end."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sqlalchemy.engine import make_url

    flask = str(Path(sys.executable).with_name("flask"))
    before = fingerprint(template_url)
    dump = tmp_path / "nas" / "gridcase.dump"

    def run(url: str, *args: str) -> str:
        env = {**os.environ, "DATABASE_URL": url, "GRIDCASE_SECRET_KEY": "backup-test"}
        proc = subprocess.run(
            [flask, "--app", "webapp", "db", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    assert "已备份到" in run(template_url, "backup", str(dump))
    assert dump.exists() and not dump.with_suffix(".dump.partial").exists()
    target = make_url(server_url).set(database=f"{make_url(template_url).database}_cli").render_as_string(hide_password=False)
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
