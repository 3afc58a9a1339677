"""A load into an empty ``cases`` tallies every case in one pass: a report committed while
the load runs must not be counted twice (by its own trigger and by that pass)."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tests.tallies_fixtures import new_case
from webapp.cases import bulk
from webapp.db import create_database, drop_database
from webapp.demo import loader, synthetic
from webapp.migrate import upgrade
from webapp.stats import tallies


def test_a_report_committed_during_a_load_into_an_empty_table_is_tallied_once(
    server_url, app, monkeypatch
):
    url = make_url(server_url).set(database=f"gridcase_race_{uuid.uuid4().hex[:8]}")
    url = url.render_as_string(hide_password=False)
    create_database(url)
    engine = create_engine(url)
    try:
        upgrade(engine)
        with Session(engine) as setup, app.app_context():
            loader.load_boundaries(setup)
            setup.commit()
        grid = None
        with Session(engine) as load, Session(engine) as report:
            cols, _ = synthetic.generate(load, 2000, seed=5)
            grid = report.execute(
                text("SELECT code FROM areas WHERE level = 'grid' ORDER BY code LIMIT 1")
            ).scalar_one()
            real = bulk._cases_empty
            calls = []

            def empty_then_a_report(session):
                answer = real(session)
                if not calls:  # the load found the table empty: a field report lands now
                    with app.app_context():
                        new_case(report, grid)
                    report.commit()
                calls.append(answer)
                return answer

            monkeypatch.setattr(bulk, "_cases_empty", empty_then_a_report)
            result = bulk.bulk_insert_cases(load, cols, rebuild_indexes=False)
            assert calls[0] is True and result.inserted > 1900
            assert not tallies.differences(load)
            load.commit()
        with Session(engine) as check:
            assert check.execute(text("SELECT count(*) FROM cases")).scalar_one() == (
                result.inserted + 1
            )
            assert not tallies.differences(check)
    finally:
        engine.dispose()
        drop_database(url)
