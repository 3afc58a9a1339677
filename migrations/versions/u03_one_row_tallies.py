"""Tallies of a one-row insert without aggregation: a field report's share of the trigger

A field report inserts one case; the insert trigger (q01) added it to the three tallies
by the bulk path's statement: the rows grouped by three ``GROUPING SETS`` with 23 sums
each (72 aggregate states), three sorts and a CTE between them. For one row every sum
is the row's own value, but the executor still set all of that up per report: in a
profile of reports at a million cases, the trigger was about 40 % of the database's CPU
per report, a third of it starting the executor (the aggregate and the sorts alone
about 9 % of the backend's CPU).

When the statement inserted exactly one row and it is not a repeat, the facts are now
the row's own values (``sum(e)`` of one row is ``e``, ``count(*) FILTER (WHERE c)`` is
``CASE WHEN c THEN 1 ELSE 0 END``, ``max(a)`` is ``a``: the same definitions, t01's
``_facts``, without the aggregates) and the three upserts read them from one
materialised row. Locking order is unchanged (grid tally, category tally, heat tally),
so concurrent reports and edits still cannot deadlock. Several rows (a bulk insert or
an import) go the q01 way, repeats the general way.

Revision ID: u03
Revises: k01
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "u03"
down_revision = "k01"
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


q01 = _migration("q01", "q01_insert_tallies_one_statement.py")
m01, t01, x01 = q01.m01, q01.t01, q01.x01

# Where q01's function takes its one-statement path (the one-row path goes before it).
_Q01_FAST = "    -- Nothing to subtract and no repeat among the rows: one statement (q01).\n"


def _one_row_facts() -> str:
    """Each fact of the one row ``x``: the value a sum over that row alone would give."""
    return ",\n            ".join(
        f"({sql.split(t01.COND_MARK)[0]})::integer AS {name}"
        for name, sql in t01._facts("x").items()
    )


def _one_row() -> str:
    """One statement adding the single row of ``new_rows`` (no repeat) to every tally."""
    columns = ", ".join(f"n.{col}" for col in (*t01.READ, "category_id", "location"))
    grid_key = ", ".join(t01.KEY)
    category_key = ", ".join(x01.KEY)
    facts = ", ".join(t01.FACTS)
    cx, cy = m01._cells("x", m01.COARSE)
    upsert_grids = m01._upsert(
        "case_tallies",
        t01.KEY,
        t01.FACTS,
        ",\n        ahead_at = greatest(case_tallies.ahead_at, EXCLUDED.ahead_at)",
    )
    return f"""
    WITH one AS MATERIALIZED (
        SELECT x.county_code, x.township_code, x.village_code, x.grid_code, x.category_id,
            (date_trunc('month', x.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month,
            {cx} AS cx, {cy} AS cy,
            {_one_row_facts()},
            {t01._AHEAD} AS ahead_at
        FROM (
            SELECT {columns},
                CASE WHEN {t01._needs_repeat("n")} THEN EXISTS (
                    SELECT 1 FROM cases r WHERE r.repeat_of_id = n.id
                    AND r.repeat_of_id IS NOT NULL AND r.reported_at < 'infinity') END
                AS repeated
            FROM new_rows n
        ) x
    ),
    grids AS (
        INSERT INTO case_tallies ({grid_key}, {facts}, ahead_at)
        SELECT {grid_key}, {facts}, ahead_at FROM one
        {upsert_grids}
        RETURNING 1
    ),
    categories AS (
        INSERT INTO case_category_tallies ({category_key}, {facts})
        SELECT {category_key}, {facts} FROM one
        {m01._upsert("case_category_tallies", x01.KEY, t01.FACTS)}
        RETURNING 1
    ),
    heat AS (
        INSERT INTO heat_tallies ({", ".join(m01.HEAT_COLUMNS)})
        SELECT {m01.COARSE}::smallint, county_code, township_code, month, '', '', cx, cy,
               cases, people
        FROM one
        {m01._upsert("heat_tallies", m01.HEAT_KEY, ("cases", "people"))}
        RETURNING 1
    )
    -- Evaluated in this order: the grid tally's row is locked first, then the
    -- category tally's, then the heat tally's (the order of every other path).
    SELECT ARRAY[(SELECT count(*) FROM grids), (SELECT count(*) FROM categories),
                 (SELECT count(*) FROM heat)]
    INTO added;
"""


def _insert_function() -> str:
    """q01's insert trigger function with the one-row path first."""
    general = q01._insert_function()
    if general.count(_Q01_FAST) != 1 or "DECLARE\n" not in general:  # pragma: no cover
        raise RuntimeError("q01's insert trigger function is not shaped as expected")
    one_row = (
        "    -- One row, not a repeat (a field report): its own facts, no aggregation (u03).\n"
        "    SELECT count(*), count(repeat_of_id) INTO n_rows, n_repeats FROM new_rows;\n"
        "    IF n_rows = 1 AND n_repeats = 0 THEN\n"
        f"{_one_row()}"
        "        RETURN NULL;\n"
        "    END IF;\n"
    )
    return general.replace(_Q01_FAST, one_row + _Q01_FAST).replace(
        "DECLARE\n", "DECLARE\n    n_rows bigint;\n    n_repeats bigint;\n", 1
    )


def upgrade() -> None:
    op.execute(_insert_function())


def downgrade() -> None:
    op.execute(q01._insert_function())
