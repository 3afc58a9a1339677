"""The tally pass into empty tallies: both case tallies from one hash of the cases (k02).

u01 computed each tally's groups apart, with parallel workers; k02 hashes the cases into
both case tallies' groups at once (GROUPING SETS), their conditions evaluated once a case,
which PostgreSQL runs on one core. The rebuilds and loads below run with the parallel
thresholds lowered (the plans a million cases get) and must still equal a fresh GROUP BY.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from sqlalchemy import text

from tests.test_heat_tallies import digests, empty_the_cases
from webapp.cases import tallies_beside
from webapp.cases.bulk import bulk_insert_cases
from webapp.demo import synthetic
from webapp.stats import tallies

MIGRATION = (
    Path(__file__).resolve().parent.parent / "migrations/versions/k02_tally_pass_conditions_once.py"
)


def _k02():
    spec = importlib.util.spec_from_file_location("gridcase_migration_k02_test", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_at_scale(session) -> None:
    """The planner's parallel thresholds lowered, so a small table gets a parallel plan."""
    for setting in (
        "min_parallel_table_scan_size = 0",
        "parallel_setup_cost = 0",
        "parallel_tuple_cost = 0",
        "max_parallel_workers_per_gather = 1",
    ):
        session.execute(text(f"SET LOCAL {setting}"))


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def test_both_case_tallies_are_hashed_from_one_scan_with_the_conditions_once(session):
    session.execute(text("SET LOCAL enable_sort = off"))  # as the function runs it
    query = _k02().grouped_query().replace("$1", "CAST('{}' AS bigint[])")
    plan = session.execute(text(f"EXPLAIN (VERBOSE, FORMAT JSON) {query}")).scalar()
    plan = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    nodes = list(_nodes(plan))
    (aggregate,) = [n for n in nodes if n["Node Type"] == "Aggregate"]
    assert aggregate["Strategy"] == "Hashed", aggregate
    assert len(aggregate["Grouping Sets"]) == 2  # grid x month, village x category x month
    scans = [n for n in nodes if n.get("Relation Name") == "cases"]
    assert len(scans) == 1, scans  # the repeated ids come as an array, not a scan
    # The shared conditions are computed once a case, below the aggregate: the rows it
    # reads carry them ("resolved" among them), where rows pulled up into the aggregate
    # would carry the raw columns and each filter would spell them again.
    (below,) = aggregate["Plans"]
    assert any("{closed,resolved}" in column for column in below["Output"]), below["Output"]


def test_the_function_names_only_the_columns_a_load_copies_beside(session):
    """The loader copies the columns the function's text names (tallies_beside): no more."""
    assert tallies_beside.read_columns(session) == {
        "id", "county_code", "township_code", "village_code", "grid_code", "category_id",
        "reported_at", "concluded_at", "resolved_at", "due_at", "status", "satisfaction",
        "is_first", "people_count", "batch_count", "channel", "skip_level",
        "resolved_level", "location", "repeat_of_id",
    }  # fmt: skip


def test_a_rebuild_with_parallel_workers_gives_the_same_tallies(session):
    before = digests(session)
    session.execute(
        text(
            "UPDATE case_tallies SET cases = cases + 1"
            " WHERE month = (SELECT max(month) FROM case_tallies)"
        )
    )
    session.execute(text("DELETE FROM heat_tallies WHERE cx = (SELECT min(cx) FROM heat_tallies)"))
    assert tallies.differences(session)
    _as_at_scale(session)
    tallies.rebuild(session)
    assert tallies.differences(session) == []
    assert digests(session) == before
    # the pass's temporary tables are gone
    assert session.execute(text("SELECT to_regclass('pg_temp.tally_pass_grids')")).scalar() is None


def test_a_load_into_an_empty_table_with_parallel_workers_keeps_every_tally(session):
    empty_the_cases(session)
    _as_at_scale(session)
    rows, _ = synthetic.generate(session, 400, seed=41)
    result = bulk_insert_cases(session, rows, rebuild_indexes=True)
    assert result.inserted > 300
    assert tallies.differences(session) == []
    loaded = digests(session)
    tallies.rebuild(session)
    assert digests(session) == loaded


def _the_pass_equals_u01s(session) -> None:
    """The pass into emptied tallies gives every row and column u01's pass gave (ahead_at
    too), and a fresh GROUP BY's facts."""
    assert tallies.differences(session) == []
    _as_at_scale(session)
    u01 = (
        _k02()
        .u01._add_cases()
        .replace(
            "CREATE FUNCTION case_tallies_add_cases(", "CREATE FUNCTION pg_temp.u01_add_cases("
        )
    )
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:  # psycopg2 itself: the function's text holds % signs
        cur.execute(u01)
        for table in tallies.ALL_TABLES:
            cur.execute(f"DELETE FROM {table}")
        cur.execute("SELECT pg_temp.u01_add_cases('cases')")
    before = digests(session)
    tallies.rebuild(session)  # k02's pass
    assert tallies.differences(session) == []
    assert digests(session) == before
    # inserted in key order: the tables' rows, as stored, are in key order
    for table, key in (
        ("case_tallies", tallies.KEY),
        ("case_category_tallies", tallies.CATEGORY_KEY),
        ("heat_tallies", ("county_code", "township_code", "month", "cx", "cy")),
    ):
        rows = session.execute(text(f"SELECT {', '.join(key)} FROM {table} ORDER BY ctid")).all()
        assert len(rows) > 10 and rows == sorted(rows), table


def test_a_rebuild_counts_repeats_deadlines_and_month_edges_as_the_triggers_do(session):
    """Many repeats (chains, several repeats of one case), unusual deadlines and
    conclusions, times on a local month's first instant and just before it, and one ahead
    of the clock: written by UPDATEs (the triggers keep the tallies), then rebuilt."""
    statements = (
        # every 5th case repeats the one before it; every 11th one of a few cases
        "UPDATE cases SET is_first = false, repeat_of_id = id - 1"
        " WHERE id % 5 = 0 AND EXISTS (SELECT 1 FROM cases p WHERE p.id = cases.id - 1)",
        "UPDATE cases SET is_first = false, repeat_of_id = (SELECT min(id) FROM cases)"
        " WHERE id % 11 = 0 AND id > (SELECT min(id) FROM cases)",
        # resolved (and so counted "resolved once" unless repeated) with each level
        "UPDATE cases SET status = 'resolved', resolved_at = reported_at + interval '3 days',"
        " resolved_level = (ARRAY['village','township','county','above'])[1 + id % 4]"
        " WHERE id % 3 = 0",
        "UPDATE cases SET status = 'closed', resolved_at = 'infinity' WHERE id % 13 = 1",
        # deadlines: none, never, met on the instant, missed, open
        "UPDATE cases SET due_at = NULL WHERE id % 17 = 2",
        "UPDATE cases SET due_at = 'infinity' WHERE id % 17 = 3",
        "UPDATE cases SET due_at = reported_at + interval '5 days',"
        " concluded_at = reported_at + interval '5 days' WHERE id % 17 = 4",
        "UPDATE cases SET due_at = reported_at + interval '1 day',"
        " concluded_at = reported_at + interval '9 days' WHERE id % 17 = 5",
        "UPDATE cases SET status = 'in_progress', concluded_at = NULL, resolved_at = NULL,"
        " due_at = reported_at + interval '2 days' WHERE id % 17 = 6",
        "UPDATE cases SET concluded_at = reported_at + interval '1 day', satisfaction = 'basically'"
        " WHERE id % 19 = 7",
        "UPDATE cases SET satisfaction = NULL WHERE id % 19 = 8",
        "UPDATE cases SET channel = 'visit', people_count = 7, batch_count = 3 WHERE id % 23 = 9",
        # the first instant of a local month (Asia/Shanghai), and the one before it
        "UPDATE cases SET reported_at = '2025-03-31 16:00:00+00' WHERE id % 29 = 10",
        "UPDATE cases SET reported_at = '2025-03-31 15:59:59.999999+00' WHERE id % 29 = 11",
        "UPDATE cases SET reported_at = '2024-12-31 16:00:00+00' WHERE id % 29 = 12",
        # a time ahead of the clock (ahead_at)
        "UPDATE cases SET reported_at = now() + interval '40 days'"
        " WHERE id = (SELECT max(id) FROM cases)",
    )
    for statement in statements:
        assert session.execute(text(statement)).rowcount > 0, statement
    repeated = session.execute(
        text("SELECT count(DISTINCT repeat_of_id), count(repeat_of_id) FROM cases")
    ).one()
    assert repeated[0] > 20 and repeated[1] > repeated[0]
    months = session.execute(text("SELECT count(DISTINCT month) FROM case_tallies")).scalar()
    assert months > 6
    assert session.execute(
        text("SELECT count(*) FROM case_tallies WHERE ahead_at IS NOT NULL")
    ).scalar()
    _the_pass_equals_u01s(session)


def test_a_rebuild_without_any_repeat(session):
    """No case repeats another: the pass's array of repeated ids is empty, not NULL."""
    session.execute(text("UPDATE cases SET repeat_of_id = NULL, is_first = true"))
    assert session.execute(text("SELECT count(repeat_of_id) FROM cases")).scalar() == 0
    _the_pass_equals_u01s(session)


def test_a_rebuild_of_two_counties(session):
    """Cases of two counties: the tallies' sorts compare the county too (k02 leaves it out
    where there is one)."""
    session.execute(text("UPDATE cases SET county_code = '419999' WHERE id % 4 = 1"))
    counties = session.execute(text("SELECT count(DISTINCT county_code) FROM cases")).scalar()
    assert counties == 2
    _the_pass_equals_u01s(session)
    assert (
        session.execute(
            text("SELECT count(DISTINCT county_code) FROM case_category_tallies")
        ).scalar()
        == 2
    )
