"""Alembic, driven from the app: upgrade to head under a lock, and report the state."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any fixed number: serialises concurrent upgrades (several workers starting at once).
_LOCK_KEY = 7_261_947_001


def alembic_config() -> Config:
    if not MIGRATIONS_DIR.is_dir():
        raise RuntimeError(f"migrations directory not found at {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (all heads by default)."""
    cfg = alembic_config()
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        try:
            if is_current(conn, cfg):
                return
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            conn.commit()


def is_current(conn, cfg: Config | None = None) -> bool:
    """Return True when the database is at every head of the migration scripts."""
    script = ScriptDirectory.from_config(cfg or alembic_config())
    current = set(MigrationContext.configure(conn).get_current_heads())
    return current == set(script.get_heads())


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()
