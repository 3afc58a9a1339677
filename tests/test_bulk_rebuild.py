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
            text("EXPLAIN SELECT id FROM cases WHERE beijing_abnormal_at IS NOT NULL AND id >= :lo"),
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
            text("SELECT id FROM cases WHERE beijing_abnormal_at + interval '0 s' IS NOT NULL AND id >= :lo"),
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
