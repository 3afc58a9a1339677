"""``/healthz``: is the database reachable, is PostGIS there (and pgRouting, optional)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.auth.identity import anonymous
from webapp.db import UnsafeDatabase, database
from webapp.pgcluster import ClusterError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@anonymous
def healthz():
    try:
        db = database()
        db.ensure_ready()
        with db.engine.connect() as conn:
            version, pgrouting = conn.execute(
                text(
                    "SELECT postgis_lib_version(), "
                    "(SELECT extversion FROM pg_extension WHERE extname = 'pgrouting')"
                )
            ).one()
    except (SQLAlchemyError, ClusterError, UnsafeDatabase, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        return jsonify({"db": "error", "reason": reason}), 503
    # pgRouting is optional: null means routes are straight lines (docs/visits.md).
    return jsonify({"db": "ok", "postgis": version, "pgrouting": pgrouting})
