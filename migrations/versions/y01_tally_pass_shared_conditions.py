"""A bulk load's tallies: shared conditions once a case, heat apart, plain inserts when empty

``case_tallies_add_cases(ids)`` (m01) spent most of a million-case load's tally stage
(10-13 s of it) in three places, found with ``EXPLAIN ANALYZE`` and the backend's CPU
time on a loaded database:

* every fact's condition was evaluated from the raw columns, so "resolved" (two text
  comparisons and a time comparison) was evaluated in nine of the 23 aggregates and
  "open" in two: the shared conditions (resolved, open, followed up, with a deadline)
  are now computed once a case, in a materialised scan of the cases the facts read;
* the heat set was a third grouping set of the same aggregate, so each case paid the
  23 sums a third time for a table that keeps two: the heat tally is now its own
  ``GROUP BY`` (count and people) over the same materialised rows;
* into empty tallies (the first load of a county, a rebuild after its DELETEs) every
  group went through ``ON CONFLICT``'s speculative insertion (about 25 µs a row for
  390,000 rows): when all three tables are empty and ``ids`` is ``cases`` (the groups
  are then unique by construction) the rows are inserted plainly, in key order. The
  function locks ``cases`` against concurrent writes first (SHARE), so no report's
  trigger can add a tally row between the emptiness check and the insert.
* the three inserts are data-modifying CTEs read by one final SELECT in the order the
  triggers lock tally rows in (grid, category, heat), where m01's heat insert was the
  main statement and ran first, so a load's upserts could deadlock with a report's;
* a load into a table that holds cases (a ledger import) read every case to find the
  loaded ones (a hash semi join over a million rows for 100,000 loaded): the scan is
  bounded by the loaded ids' range, which the primary key finds.

The facts and keys are t01's, x01's and m01's (their frozen SQL is reused), so the tallies
a load writes stay those the triggers keep; tests compare them with a fresh GROUP BY.

Revision ID: y01
Revises: m01
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "y01"
down_revision = "m01"
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


m01 = _migration("m01", "m01_heat_by_township_one_tally_pass.py")
t01, x01 = m01.t01, m01.x01


def _conditions(c: str) -> dict[str, str]:
    """The conditions several facts share (t01's own strings over ``c``), by column name.

    Ordered so that a condition containing another is replaced first.
    """
    resolved = f"({c}.status IN ('closed','resolved') AND {c}.resolved_at < 'infinity')"
    return {
        "is_open": f"({c}.reported_at < 'infinity' AND {c}.status <> 'not_accepted' AND NOT {resolved})",
        "is_followed": f"({c}.satisfaction IS NOT NULL AND {c}.concluded_at < 'infinity')",
        "is_due": f"({c}.status <> 'not_accepted' AND {c}.due_at IS NOT NULL)",
        "is_resolved": resolved,
    }


def _sums() -> str:
    """t01's sums of the facts, the shared conditions read from ``x``'s columns."""
    sums = t01._unsigned_sums()
    for name, condition in _conditions("x").items():
        if condition not in sums:  # pragma: no cover - t01 is frozen
            raise RuntimeError(f"t01's facts no longer spell {name} as expected")
        sums = sums.replace(condition, f"x.{name}")
    return sums


def _rows() -> str:
    """The cases of ``%s`` (a WHERE clause or ''), the columns the facts read, each condition once."""
    columns = ", ".join(f"c.{col}" for col in (*t01.READ, "category_id", "location"))
    conditions = ", ".join(f"{sql} AS {name}" for name, sql in _conditions("c").items())
    return f"""
        SELECT {columns}, {conditions},
            (date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month,
            CASE WHEN {t01._needs_repeat("c")} THEN c.id IN (
                SELECT repeat_of_id FROM cases WHERE repeat_of_id IS NOT NULL
                AND reported_at < 'infinity') END AS repeated
        FROM cases c %s"""


def _insert(table: str, key: tuple[str, ...], columns: str, source: str, upsert: str) -> str:
    return f"""INSERT INTO {table} ({columns})
        {source}
        ORDER BY {", ".join(key)}
        {upsert}
        RETURNING 1"""


# GROUPING(x.grid_code, x.category_id): the bit of the argument a set does not group by.
GRID_SET, CATEGORY_SET = 1, 2


def _one_pass(upsert: bool) -> str:
    """The statement adding the cases of ``%s`` to the three tallies (``upsert``: ON CONFLICT)."""
    facts = ", ".join(t01.FACTS)
    grid_key, category_key = ", ".join(t01.KEY), ", ".join(x01.KEY)
    heat_columns = ", ".join(m01.HEAT_COLUMNS)
    cx, cy = m01._cells("x", m01.COARSE)
    grid_upsert = category_upsert = heat_upsert = ""
    if upsert:
        grid_upsert = m01._upsert(
            "case_tallies",
            t01.KEY,
            t01.FACTS,
            ",\n        ahead_at = greatest(case_tallies.ahead_at, EXCLUDED.ahead_at)",
        )
        category_upsert = m01._upsert("case_category_tallies", x01.KEY, t01.FACTS)
        heat_upsert = m01._upsert("heat_tallies", m01.HEAT_KEY, ("cases", "people"))
    heat_order = ("county_code", "township_code", "month", "cx", "cy")  # the key's order
    return f"""
    WITH x AS MATERIALIZED ({_rows()}),
    g AS (
        SELECT GROUPING(x.grid_code, x.category_id) AS kind,
            x.county_code, x.township_code, x.village_code, x.grid_code, x.category_id, x.month,
            {_sums()},
            max({t01._AHEAD}) AS ahead_at
        FROM x
        GROUP BY GROUPING SETS (
            (x.county_code, x.township_code, x.village_code, x.grid_code, x.month),
            (x.county_code, x.township_code, x.village_code, x.category_id, x.month)
        )
    ),
    grids AS ({
        _insert(
            "case_tallies",
            t01.KEY,
            f"{grid_key}, {facts}, ahead_at",
            f"SELECT {grid_key}, {facts}, ahead_at FROM g WHERE kind = {GRID_SET}",
            grid_upsert,
        )
    }),
    categories AS ({
        _insert(
            "case_category_tallies",
            x01.KEY,
            f"{category_key}, {facts}",
            f"SELECT {category_key}, {facts} FROM g WHERE kind = {CATEGORY_SET}",
            category_upsert,
        )
    }),
    heat AS ({
        _insert(
            "heat_tallies",
            heat_order,
            heat_columns,
            f"SELECT {m01.COARSE}::smallint, x.county_code, x.township_code, x.month, '', '',"
            f" {cx} AS cx, {cy} AS cy, count(*)::integer,"
            " sum(coalesce(x.people_count, 0))::integer FROM x"
            f" GROUP BY x.county_code, x.township_code, x.month, {cx}, {cy}",
            heat_upsert,
        )
    })
    -- Evaluated in this order, the order every trigger locks tally rows in (grid,
    -- category, heat): a load beside concurrent reports cannot deadlock with them.
    SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM categories),
           (SELECT count(*) FROM heat)
    """


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
AS $fn$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    -- Every tally table adds the cases of ``ids`` (a bulk load's new ids, or ``cases``),
    -- read once (migrations m01, y01).
    IF ids = 'cases'::regclass THEN
        -- No report may tally a case between the check below and the inserts.
        LOCK TABLE cases IN SHARE MODE;
        IF NOT EXISTS (SELECT 1 FROM case_tallies)
           AND NOT EXISTS (SELECT 1 FROM case_category_tallies)
           AND NOT EXISTS (SELECT 1 FROM heat_tallies) THEN
            -- Empty tallies, every case: each group is new, inserted plainly.
            EXECUTE format('{_quoted(_one_pass(upsert=False))}', '');
        ELSE
            EXECUTE format('{_quoted(_one_pass(upsert=True))}', '');
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
    EXECUTE format('{_quoted(_one_pass(upsert=True))}',
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
    op.execute(m01._add_cases())
