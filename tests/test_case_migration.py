"""Migration a01 (case workflow) goes down and up again, and names its constraints as the models do."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from webapp.db import create_database, drop_database
from webapp.migrate import downgrade, upgrade

OURS = {
    "ck_cases_assigned_level",
    "ck_cases_supervision",
    "ck_cases_review_stage",
    "ck_cases_extension_days",
}


def test_a01_down_and_up(server_url):
    url = (
        make_url(server_url)
        .set(database=f"gridcase_a01_{uuid.uuid4().hex[:8]}")
        .render_as_string(hide_password=False)
    )
    create_database(url)
    engine = create_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            names = set(
                conn.execute(
                    text("SELECT conname FROM pg_constraint WHERE conrelid = 'cases'::regclass")
                ).scalars()
            )
            assert OURS <= names
            assert (
                conn.execute(text("SELECT to_regclass('case_repeat_dismissals')")).scalar()
                is not None
            )
        downgrade(engine, "a01")  # the merge revisions on top of the branches (g01) first
        downgrade(engine, "a01@-1")  # only this branch: others branch from 0002 too
        with engine.connect() as conn:
            names = set(
                conn.execute(
                    text("SELECT conname FROM pg_constraint WHERE conrelid = 'cases'::regclass")
                ).scalars()
            )
            assert not OURS & names
            assert (
                conn.execute(text("SELECT to_regclass('case_repeat_dismissals')")).scalar() is None
            )
            assert (
                conn.execute(
                    text(
                        "SELECT count(*) FROM information_schema.columns "
                        "WHERE table_name = 'cases' AND column_name = 'due_at'"
                    )
                ).scalar()
                == 1
            )
        upgrade(engine)
    finally:
        engine.dispose()
        drop_database(url)
