"""A load's tally pass into empty tallies on every core: one parallel GROUP BY per tally

y01's pass (one scan of the cases, their shared conditions computed once in a
MATERIALIZED CTE, hashed into GROUPING SETS, three data-modifying CTEs inserting) runs
on one core whatever the machine has: PostgreSQL plans no parallel scan under a
data-modifying statement, nor GROUPING SETS, and a MATERIALIZED CTE's scan is
parallel-restricted. At a million cases it took 9-12 s of a 48 s demo load, one core
of two busy.

Into empty tallies (a county's first load, ``stats.tallies.rebuild``), each tally's
groups are now computed by a ``CREATE TEMP TABLE ... AS SELECT ... GROUP BY`` straight
from ``cases`` (CREATE TABLE AS may use a parallel plan; ``cases`` is an ordinary
table whose uncommitted rows the workers see): a parallel scan, a partial hash
aggregate per process, a final one over the partial groups (``EXPLAIN`` shows them;
tests/test_tally_pass_parallel.py checks the plan and the result at small scale with the
parallel thresholds lowered). The small results (40,000 + 200,000 + 150,000 rows at a
million cases) are then inserted in the order the triggers lock tally rows in (grid,
category, heat), each in its key order.

The shared conditions stay computed once a case: the cases' rows (y01's, the same
SQL) are read through a subquery that also computes ``ahead_at``'s per-case value,
which calls ``clock_timestamp()``: a volatile (parallel-safe) expression keeps the
planner from pulling the subquery up into the aggregate, where each condition would be
evaluated again in every aggregate that reads it (measured: about twice the CPU for
the grid tally). The heat tally reads only keys and people, so its rows are pulled up.

``repeated`` (does a later case repeat this one) comes from a hash join with the
repeated ids rather than y01's hashed subplan: during a load the repeat index is away,
and each parallel process built its own subplan hash by a scan of every case.

Measured at a million cases on the two-core machine, bulk loads of the same synthetic
cases (``bulk_insert_cases``) from one template database, alternated 4+4 with y01
(other helpers' tests on the machine, load 0.6-2.8): tally stage median 10.4 s -> 8.8 s
(0.85x), bulk load 47.9 s -> 45.2 s (0.94x). The first form (y01's subplan, two
workers) used about 1.5x y01's CPU (leader + workers) and was no faster there
(tallies 10.5 -> 11.9 s): on two shared cores a second worker only adds another
process and another scan.

A load beside existing cases (a ledger import: ``ids`` is the loaded ids, upserts)
and a pass into tallies that hold rows keep y01's statement: their groups meet rows
that exist (ON CONFLICT), which only a data-modifying statement can do.

Revision ID: u01
Revises: q01
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "u01"
down_revision = "q01"
branch_labels = None
depends_on = None


def _migration(name: str, filename: str):
    """An earlier migration's module (frozen once applied): its SQL builders are reused here."""
    spec = importlib.util.spec_from_file_location(
        f"gridcase_migration_{name}", Path(__file__).with_name(filename)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


y01 = _migration("y01", "y01_tally_pass_shared_conditions.py")
t01, x01, m01 = y01.t01, y01.x01, y01.m01

# The temporary tables the groups are computed into, and the tallies they go to, in
# the order the triggers lock tally rows in.
GROUPS = {
    "case_tallies": "tally_pass_grids",
    "case_category_tallies": "tally_pass_categories",
    "heat_tallies": "tally_pass_heat",
}
HEAT_ORDER = ("county_code", "township_code", "month", "cx", "cy")  # the key's order


def _rows() -> str:
    """y01's rows of every case (the same columns and conditions), ``repeated`` by a join.

    y01 asks ``c.id IN (SELECT repeat_of_id ...)``, a hashed subplan: each parallel
    process would build its own hash, by a scan of every case during a load (the
    repeat index is away then). A hash join's build is shared by the processes.
    """
    columns = ", ".join(f"c.{col}" for col in (*t01.READ, "category_id", "location"))
    conditions = ", ".join(f"{sql} AS {name}" for name, sql in y01._conditions("c").items())
    return f"""
        SELECT {columns}, {conditions},
            (date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month,
            CASE WHEN {t01._needs_repeat("c")} THEN r.id IS NOT NULL END AS repeated
        FROM cases c LEFT JOIN (
            SELECT DISTINCT repeat_of_id AS id FROM cases
            WHERE repeat_of_id IS NOT NULL AND reported_at < 'infinity'
        ) r ON r.id = c.id"""


def _cases() -> str:
    """Every case's rows (conditions once), with ``ahead``: kept a subquery.

    ``ahead`` is t01's per-case ``ahead_at`` value; it calls clock_timestamp(), and a
    subquery whose output is volatile is not pulled up into the query reading it.
    """
    ahead = t01._AHEAD.replace("x.", "r.")
    if "x." in ahead or "clock_timestamp()" not in ahead:  # pragma: no cover - t01 is frozen
        raise RuntimeError("t01's ahead_at is not spelt as expected")
    return f"SELECT r.*, {ahead} AS ahead FROM ({_rows()}) r"


def group_queries() -> dict[str, str]:
    """Per tally table, the SELECT computing its groups over every case (parallel-capable)."""
    grid_key = ", ".join(f"x.{k}" for k in t01.KEY)
    category_key = ", ".join(f"x.{k}" for k in x01.KEY)
    cx, cy = m01._cells("x", m01.COARSE)
    return {
        "case_tallies": f"""SELECT {grid_key}, {y01._sums()},
            max(x.ahead) AS ahead_at
        FROM ({_cases()}) x
        GROUP BY {grid_key}""",
        "case_category_tallies": f"""SELECT {category_key}, {y01._sums()}
        FROM ({_cases()}) x
        GROUP BY {category_key}""",
        "heat_tallies": f"""SELECT {m01.COARSE}::smallint AS scale, x.county_code,
            x.township_code, x.month, ''::text AS village_code, ''::text AS grid_code,
            {cx} AS cx, {cy} AS cy, count(*)::integer AS cases,
            sum(coalesce(x.people_count, 0))::integer AS people
        FROM ({_rows()}) x
        GROUP BY x.county_code, x.township_code, x.month, {cx}, {cy}""",
    }


def _parallel_pass() -> str:
    """PL/pgSQL: every case into the three empty tallies, each tally's groups computed apart."""
    facts = ", ".join(t01.FACTS)
    columns = {
        "case_tallies": (t01.KEY, f"{', '.join(t01.KEY)}, {facts}, ahead_at"),
        "case_category_tallies": (x01.KEY, f"{', '.join(x01.KEY)}, {facts}"),
        "heat_tallies": (HEAT_ORDER, ", ".join(m01.HEAT_COLUMNS)),
    }
    queries = group_queries()
    out = []
    for table, temp in GROUPS.items():
        out.append(f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS {queries[table]};")
    for table, temp in GROUPS.items():
        key, cols = columns[table]
        out.append(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM pg_temp.{temp} "
            f"ORDER BY {', '.join(key)};"
        )
        out.append(f"DROP TABLE pg_temp.{temp};")
    return "\n            ".join(out)


def _quoted(sql: str) -> str:
    return sql.replace("'", "''")


def _add_cases() -> str:
    return f"""
CREATE FUNCTION case_tallies_add_cases(ids regclass) RETURNS void LANGUAGE plpgsql
-- Hash the cases into their groups: the planner cannot tell how many groups there are
-- and would sort a million wide rows on each set's keys instead.
SET enable_sort = off
-- The hash tables and the materialised cases of a million (some 400 MB each) must fit.
SET work_mem = '1GB'
-- One worker beside the leader: with two, the pass used more CPU on two cores and
-- was no faster (u01's docstring).
SET max_parallel_workers_per_gather = 1
AS $fn$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    -- Every tally table adds the cases of ``ids`` (a bulk load's new ids, or ``cases``)
    -- (migrations m01, y01, u01).
    IF ids = 'cases'::regclass THEN
        -- No report may tally a case between the check below and the inserts.
        LOCK TABLE cases IN SHARE MODE;
        IF NOT EXISTS (SELECT 1 FROM case_tallies)
           AND NOT EXISTS (SELECT 1 FROM case_category_tallies)
           AND NOT EXISTS (SELECT 1 FROM heat_tallies) THEN
            -- Empty tallies, every case: each tally's groups by a parallel-capable
            -- CREATE TABLE AS, then inserted plainly in the triggers' lock order.
            {_parallel_pass()}
        ELSE
            EXECUTE format('{_quoted(y01._one_pass(upsert=True))}', '');
        END IF;
        RETURN;  -- every case: no repeat points outside
    END IF;
    -- The loaded ids are one range, or nearly (a report may take an id in between):
    -- bounding the scan by it lets the primary key find them instead of a scan of
    -- every case.
    EXECUTE format('SELECT min(id), max(id) FROM %s', ids) INTO lo, hi;
    IF lo IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('{_quoted(y01._one_pass(upsert=True))}',
                   format('WHERE c.id BETWEEN %s AND %s AND c.id IN (SELECT id FROM %s)',
                          lo, hi, ids));
    EXECUTE format('{_quoted(m01._recount())}', ids);
END
$fn$
"""


def upgrade() -> None:
    op.execute("DROP FUNCTION case_tallies_add_cases(regclass)")
    op.execute(_add_cases())


def downgrade() -> None:
    op.execute("DROP FUNCTION case_tallies_add_cases(regclass)")
    op.execute(y01._add_cases())
