"""Tallies of inserted cases in one statement, without the signed-row machinery

The insert trigger (t01, x01, w01, m01) ran the general path of the update trigger on
an insert: a materialised ``written`` set built from an empty ``o``, the repeats it
touched (a UNION/EXCEPT of four sets), two signed aggregations of 23 sums with a
23-term HAVING each, an upsert per tally table, a look for rows left at zero, and the
heat tally as a second statement. A field report is one row; that was about half of
its database time (0.5-0.6 ms of about 1.1 ms of execution).

An insert only adds: no group can end at zero and no row can be emptied. So when no
inserted case is a repeat (a repeat changes the first petition it points at, which is
not among the inserted rows: the general path handles that), the three tallies get
the new rows' sums by one statement: the rows hashed into three sets of groups
(``GROUPING SETS``, as the bulk load's ``case_tallies_add_cases``) and upserted in the
order every trigger locks in (grid tally, category tally, heat tally, each in its key
order), so concurrent reports and edits cannot deadlock.

Revision ID: q01
Revises: p01
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "q01"
down_revision = "p01"
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
_upsert = m01._upsert

FUNCTION = "case_tallies_after_insert"
# Where m01's insert function has decided it is not a deferred bulk load.
_AFTER_DEFER = (
    "        RETURN NULL;  -- a bulk load adds its cases itself (case_tallies_add_cases)\n"
    "    END IF;\n"
)


def _added() -> str:
    """One statement adding the rows of ``new_rows`` (no repeats among them) to every tally.

    ``repeated`` (whether a resolved first petition has a repeat) is looked up per row,
    and only for such a row (an import of closed cases), as the general path does.
    """
    columns = ", ".join(f"n.{col}" for col in (*t01.READ, "category_id", "location"))
    grid_key = ", ".join(t01.KEY)
    category_key = ", ".join(x01.KEY)
    facts = ", ".join(t01.FACTS)
    cx, cy = m01._cells("x", m01.COARSE)
    upsert_grids = _upsert(
        "case_tallies",
        t01.KEY,
        t01.FACTS,
        ",\n        ahead_at = greatest(case_tallies.ahead_at, EXCLUDED.ahead_at)",
    )
    return f"""
    WITH g AS (
        SELECT GROUPING(x.grid_code, x.category_id, k.cx) AS kind,
            x.county_code, x.township_code, x.village_code, x.grid_code, x.category_id,
            k.month, k.cx, k.cy,
            {t01._unsigned_sums()},
            max({t01._AHEAD}) AS ahead_at
        FROM (
            SELECT {columns},
                CASE WHEN {t01._needs_repeat("n")} THEN EXISTS (
                    SELECT 1 FROM cases r WHERE r.repeat_of_id = n.id
                    AND r.repeat_of_id IS NOT NULL AND r.reported_at < 'infinity') END
                AS repeated
            FROM new_rows n
        ) x
        CROSS JOIN LATERAL (SELECT
            (date_trunc('month', x.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month,
            {cx} AS cx, {cy} AS cy) k
        GROUP BY GROUPING SETS (
            (x.county_code, x.township_code, x.village_code, x.grid_code, k.month),
            (x.county_code, x.township_code, x.village_code, x.category_id, k.month),
            (x.county_code, x.township_code, k.month, k.cx, k.cy)
        )
    ),
    grids AS (
        INSERT INTO case_tallies ({grid_key}, {facts}, ahead_at)
        SELECT {grid_key}, {facts}, ahead_at FROM g WHERE kind = {m01.GRID_SET}
        ORDER BY {grid_key}
        {upsert_grids}
        RETURNING 1
    ),
    categories AS (
        INSERT INTO case_category_tallies ({category_key}, {facts})
        SELECT {category_key}, {facts} FROM g WHERE kind = {m01.CATEGORY_SET}
        ORDER BY {category_key}
        {_upsert("case_category_tallies", x01.KEY, t01.FACTS)}
        RETURNING 1
    ),
    heat AS (
        INSERT INTO heat_tallies ({", ".join(m01.HEAT_COLUMNS)})
        SELECT {m01.COARSE}::smallint, county_code, township_code, month, '', '', cx, cy,
               cases, people
        FROM g WHERE kind = {m01.HEAT_SET}
        ORDER BY county_code, township_code, month, cx, cy  -- the key's order (the rest is fixed)
        {_upsert("heat_tallies", m01.HEAT_KEY, ("cases", "people"))}
        RETURNING 1
    )
    -- Evaluated in this order: the grid tally's rows are locked first, then the
    -- category tally's, then the heat tally's (the order of the general path).
    SELECT ARRAY[(SELECT count(*) FROM grids), (SELECT count(*) FROM categories),
                 (SELECT count(*) FROM heat)]
    INTO added;
"""


def _insert_function() -> str:
    """m01's insert trigger function with the one-statement path first."""
    general = _m01_insert_function()
    if general.count(_AFTER_DEFER) != 1 or "DECLARE\n" not in general:  # pragma: no cover
        raise RuntimeError("m01's insert trigger function is not shaped as expected")
    fast = (
        "    -- Nothing to subtract and no repeat among the rows: one statement (q01).\n"
        "    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE repeat_of_id IS NOT NULL) THEN\n"
        f"{_added()}"
        "        RETURN NULL;\n"
        "    END IF;\n"
    )
    return general.replace(_AFTER_DEFER, _AFTER_DEFER + fast).replace(
        "DECLARE\n", "DECLARE\n    added bigint[];\n", 1
    )


def _m01_insert_function() -> str:
    """The insert trigger function as m01 made it."""
    (sql,) = [s for s in m01._trigger_functions() if f"FUNCTION {FUNCTION}()" in s]
    return sql


def upgrade() -> None:
    op.execute(_insert_function())


def downgrade() -> None:
    op.execute(_m01_insert_function())
