"""The embedded cluster: made with initdb, driven with pg_ctl, durable, socket only."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text

from webapp.db import create_database
from webapp.pgcluster import EmbeddedCluster


def test_embedded_cluster_lifecycle(tmp_path):
    cluster = EmbeddedCluster(tmp_path / "var")
    assert not cluster.is_running()
    assert cluster.start() is True
    try:
        assert cluster.is_running()
        assert cluster.start() is False  # already running: nothing to do
        url = cluster.url("lifecycle")
        assert create_database(url) is True
        assert create_database(url) is False
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION postgis"))
            assert conn.execute(text("SELECT postgis_lib_version()")).scalar().startswith("3.")
            settings = dict(
                conn.execute(
                    text(
                        "SELECT name, setting FROM pg_settings WHERE name IN "
                        "('fsync','synchronous_commit','listen_addresses','full_page_writes')"
                    )
                ).all()
            )
        engine.dispose()
        assert settings == {
            "fsync": "on",
            "synchronous_commit": "on",
            "listen_addresses": "",
            "full_page_writes": "on",
        }
        if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as an unprivileged user
            assert (cluster.data_dir.stat().st_uid) != 0
    finally:
        assert cluster.stop() is True
    assert not cluster.is_running()
    assert cluster.stop() is False
