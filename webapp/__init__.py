"""GridCase: a web map for grid-based petition and dispute work."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the app: configuration, database, blueprints and CLI; nothing else."""
    app = Flask(__name__)

    from webapp import config, db, errors

    config.load_config(app, test_config)
    db.init_app(app)
    errors.init_app(app)

    from webapp import health, templating
    from webapp.grid import api as grid_api
    from webapp.grid import views as grid_views

    templating.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(grid_views.bp)
    app.register_blueprint(grid_api.bp)

    from webapp import cli
    from webapp.demo import cli as demo_cli
    from webapp.grid import cli as grid_cli

    cli.init_app(app)
    grid_cli.init_app(app)
    demo_cli.init_app(app)
    return app
