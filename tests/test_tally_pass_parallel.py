"""The tally pass into empty tallies computes each tally's groups with parallel workers (u01).

At the test scale (3,000 cases) the planner keeps the pass on one core: the parallel
thresholds are lowered here so that it takes, at small scale, the plan it takes at a
million cases; the tallies must still equal a fresh GROUP BY.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.test_heat_tallies import digests
from webapp.cases.bulk import bulk_insert_cases
from webapp.demo import synthetic
from webapp.stats import tallies

MIGRATION = (
    Path(__file__).resolve().parent.parent / "migrations/versions/u01_tally_pass_in_parallel.py"
)


def _u01():
    spec = importlib.util.spec_from_file_location("gridcase_migration_u01_test", MIGRATION)
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


@pytest.mark.parametrize("table", ["case_tallies", "case_category_tallies"])
def test_each_tallys_groups_are_aggregated_in_parallel_with_the_conditions_once(session, table):
    _as_at_scale(session)
    session.execute(text("SET LOCAL enable_sort = off"))  # as the function runs them
    query = _u01().group_queries()[table]
    plan = session.execute(text(f"EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {query}")).scalar()
    plan = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
    nodes = list(_nodes(plan))
    partial = [n for n in nodes if n.get("Partial Mode") == "Partial"]
    gather = [n for n in nodes if n["Node Type"] == "Gather"]
    assert partial and gather and gather[0]["Workers Launched"] >= 1, plan
    assert plan.get("Partial Mode") == "Finalize"
    # The shared conditions are computed once a case, below the partial aggregate: the
    # rows it reads carry them ("resolved" among them), where rows pulled up into the
    # aggregate would carry the raw columns and each filter would spell them again.
    (below,) = partial[0]["Plans"]
    assert any("{closed,resolved}" in column for column in below["Output"]), below["Output"]


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
    from tests.test_heat_tallies import empty_the_cases

    empty_the_cases(session)
    _as_at_scale(session)
    rows, _ = synthetic.generate(session, 400, seed=41)
    result = bulk_insert_cases(session, rows, rebuild_indexes=True)
    assert result.inserted > 300
    assert tallies.differences(session) == []
    loaded = digests(session)
    tallies.rebuild(session)
    assert digests(session) == loaded
