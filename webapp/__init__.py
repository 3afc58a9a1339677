"""GridCase: a web map for grid-based petition and dispute work."""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask

# Feature packages, each with a ``views.py`` (pages), ``api.py`` (JSON under /api/v1)
# and ``cli.py`` (flask commands) where it has them. Order only matters for the nav.
FEATURES = [
    "auth",
    "grid",
    "cases",
    "field",
    "maps",
    "stats",
    "visits",
    "api",
    "open311",
    "exchange",
    "demo",
]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: configuration, database, blueprints and CLI; nothing else."""
    app = Flask(__name__)

    from webapp import config, db, errors

    config.load_config(app, test_config)
    db.init_app(app)
    errors.init_app(app)

    from webapp import assets, cli, health, security, templating
    from webapp.auth import identity

    identity.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(assets.bp)
    cli.init_app(app)
    for feature in FEATURES:
        for module in ("views", "api", "cli"):
            try:
                mod = importlib.import_module(f"webapp.{feature}.{module}")
            except ModuleNotFoundError as exc:
                if exc.name != f"webapp.{feature}.{module}" and exc.name != f"webapp.{feature}":
                    raise
                continue
            if hasattr(mod, "bp"):
                app.register_blueprint(mod.bp)
            if hasattr(mod, "init_app"):
                mod.init_app(app)
    return app
