"""Configuration: defaults, then the environment, then the caller's overrides.

Everything that differs between counties or deployments lives here, read from
``GRIDCASE_*`` environment variables. Outside development and tests a missing
secret is an error, never a silent default.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from webapp.pgcluster import EmbeddedCluster, project_var_dir

DEFAULTS: dict[str, Any] = {
    # The county this deployment serves (statistical area code, 6 digits).
    "COUNTY_CODE": "410726",
    # Grid-assignment tolerance on import: the share of a child's area allowed outside
    # its parent before the import is refused.
    "IMPORT_OUTSIDE_TOLERANCE": 0.05,
    # Overlaps and gaps smaller than this (square metres) are float noise, not reported.
    "IMPORT_AREA_EPSILON_M2": 1.0,
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "JSON_AS_ASCII": False,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "gridcase_session",
    # Re-sign and re-send the session cookie only when the session changed: sign-in,
    # CSRF token, and "seen" (at most once a minute, auth.identity), which also slides
    # the cookie's expiry; the idle and absolute limits are checked server-side. Flask's
    # default re-signs it on every request (~0.3 ms of a field report's CPU).
    "SESSION_REFRESH_EACH_REQUEST": False,
    # The base map under the map overlays: none (boundaries only, works offline),
    # tianditu (with MAP_TIANDITU_KEY) or xyz (MAP_TILE_URL ...). See docs/maps.md.
    "MAP_BASEMAP": "none",
}

# Base-map settings read from GRIDCASE_<name> (see webapp/maps/basemap.py).
MAP_SETTINGS = (
    "MAP_BASEMAP",
    "MAP_TIANDITU_KEY",
    "MAP_TIANDITU_STYLE",
    "MAP_TILE_URL",
    "MAP_TILE_ATTRIBUTION",
    "MAP_TILE_SUBDOMAINS",
    "MAP_TILE_CRS",
    "MAP_TILE_MAX_ZOOM",
)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_config(app, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, environment and ``test_config``."""
    app.config.from_mapping(DEFAULTS)
    env = os.environ
    var_dir = project_var_dir()
    app.config["VAR_DIR"] = str(var_dir)
    app.config["ENV_NAME"] = env.get("GRIDCASE_ENV", "development")

    url = env.get("DATABASE_URL")
    if url:
        # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants the driver too.
        if url.startswith("postgres://"):
            url = "postgresql+psycopg2://" + url[len("postgres://") :]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg2://" + url[len("postgresql://") :]
        app.config["DATABASE_URL"] = url
        app.config["EMBEDDED_DB"] = False
    else:
        app.config["DATABASE_URL"] = EmbeddedCluster(var_dir).url(
            env.get("GRIDCASE_DB_NAME", "gridcase")
        )
        app.config["EMBEDDED_DB"] = True
    app.config["AUTO_MIGRATE"] = _env_bool("GRIDCASE_AUTO_MIGRATE", app.config["EMBEDDED_DB"])

    app.config["ALLOW_UNSAFE_DB"] = _env_bool("GRIDCASE_ALLOW_UNSAFE_DB", False)
    if "GRIDCASE_COUNTY_CODE" in env:
        app.config["COUNTY_CODE"] = env["GRIDCASE_COUNTY_CODE"]
    if "GRIDCASE_SECURE_COOKIES" in env:
        app.config["SESSION_COOKIE_SECURE"] = _env_bool("GRIDCASE_SECURE_COOKIES", False)
    # Behind a TLS-terminating proxy: how many proxies' X-Forwarded-For/-Proto/-Host to
    # trust (0: none, so a client cannot forge its address or scheme).
    app.config["PROXY_COUNT"] = int(env.get("GRIDCASE_PROXY_COUNT", "0") or 0)

    for key in MAP_SETTINGS:
        if f"GRIDCASE_{key}" in env:
            app.config[key] = env[f"GRIDCASE_{key}"]

    if test_config:
        app.config.update(test_config)

    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = env.get("GRIDCASE_SECRET_KEY") or _dev_secret(app, var_dir)


def _dev_secret(app, var_dir: Path) -> str:
    """Return a per-checkout secret kept in var/, refusing to invent one in production."""
    if app.config["ENV_NAME"] == "production":
        raise RuntimeError(
            "生产环境必须设置 GRIDCASE_SECRET_KEY。"
            " GRIDCASE_SECRET_KEY must be set when GRIDCASE_ENV=production."
        )
    path = var_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key
