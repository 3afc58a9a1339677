"""A big load into ``cases`` that takes its indexes apart puts them back exactly, and the
partial indexes it kept (few loaded rows fill their column) hold the new rows."""

from __future__ import annotations

from sqlalchemy import text

from bench.load import schema_of_cases
from webapp.cases.bulk import bulk_insert_cases
from webapp.demo import synthetic


def test_rebuild_load_restores_every_index_and_keeps_the_sparse_ones_current(session):
    before = schema_of_cases(session)
    cols, _ = synthetic.generate(session, 4000, seed=7)
    result = bulk_insert_cases(session, cols, rebuild_indexes=True)
    assert result.rebuilt_indexes and result.inserted == 4000 - len(result.outside)
    assert schema_of_cases(session) == before
    # Read the new rows' 三无 events through the kept partial index alone.
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_bitmapscan = off"))
    plan = "\n".join(
        session.execute(
            text(
                "EXPLAIN SELECT id FROM cases WHERE beijing_abnormal_at IS NOT NULL AND id >= :lo"
            ),
            {"lo": result.first_id},
        ).scalars()
    )
    assert "ix_cases_beijing_abnormal_at" in plan
    through_index = set(
        session.execute(
            text("SELECT id FROM cases WHERE beijing_abnormal_at IS NOT NULL AND id >= :lo"),
            {"lo": result.first_id},
        ).scalars()
    )
    session.execute(text("SET LOCAL enable_indexscan = off"))
    session.execute(text("SET LOCAL enable_seqscan = on"))
    by_scan = set(
        session.execute(
            text(
                "SELECT id FROM cases WHERE beijing_abnormal_at + interval '0 s' IS NOT NULL AND id >= :lo"
            ),
            {"lo": result.first_id},
        ).scalars()
    )
    assert through_index and through_index == by_scan


def test_a_deferred_restore_waits_for_the_caller_and_puts_everything_back(session):
    from webapp.cases.bulk import put_back
    from webapp.demo.loader import synthesize_events

    before = schema_of_cases(session)
    cols, _ = synthetic.generate(session, 1500, seed=8)
    result = bulk_insert_cases(session, cols, rebuild_indexes=True, defer_restore=True)
    assert result.restore and schema_of_cases(session) != before  # still taken apart
    assert synthesize_events(session, result.first_id, result.last_id) > 0
    put_back(session, result)
    assert result.restore == [] and schema_of_cases(session) == before


TRIGGERS_SQL = """
SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger
WHERE tgrelid = 'cases'::regclass AND NOT tgisinternal ORDER BY tgname
"""


def test_a_rebuilding_load_gives_back_the_tally_trigger_as_it_was_and_it_tallies(session):
    """The insert trigger is dropped for the load's INSERT (a disabled one still copies
    every row for its transition table) and created again exactly, enabled."""
    triggers = session.execute(text(TRIGGERS_SQL)).all()
    assert "case_tallies_insert" in {name for name, _, _ in triggers}
    cols, _ = synthetic.generate(session, 3000, seed=11)
    result = bulk_insert_cases(session, cols, rebuild_indexes=True)
    assert result.rebuilt_indexes
    assert session.execute(text(TRIGGERS_SQL)).all() == triggers
    # The loaded cases were tallied once (by the load's pass, not the trigger as well),
    # and a case inserted afterwards is tallied by the trigger.
    total = "SELECT coalesce(sum(cases), 0) FROM case_tallies"
    assert (
        session.execute(text(total)).scalar_one()
        == session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    )
    session.execute(
        text(
            "INSERT INTO cases (title, description, category_id, channel, case_class,"
            " people_count, batch_count, location, location_approx, grid_id, grid_code,"
            " village_code, township_code, county_code, status, reported_at, is_first, skip_level)"
            " SELECT 't', 'd', category_id, channel, case_class, 1, 1, location, false,"
            " grid_id, grid_code, village_code, township_code, county_code, status, now(),"
            " true, false FROM cases WHERE id = :id"
        ),
        {"id": result.first_id},
    )
    assert (
        session.execute(text(total)).scalar_one()
        == session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    )
