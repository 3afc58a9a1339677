"""Heat tally keyed by township; a bulk load's tallies in one pass over the cases

Two changes to the tallies of t01, x01 and w01:

* ``heat_tallies`` is keyed by the township as well as the county (village and grid
  stay ''): a cell that crosses a township border is two rows, the county view sums
  them, and a township's view (and a township leader's scope) reads its own rows. The
  cells stay w01's coarse ones (5 by 5 fine cells, about 500 m): at a million cases
  keyed so they are 148,000 rows against 141,000 keyed by the county alone, where
  cells of 3 by 3 (290 m, the township view's old lattice) were 322,000 rows, and
  writing them cost a load more than the township view's finer cells are worth. The
  three trigger functions' heat statement keys the rows so.
* ``case_tallies_add_cases(ids)`` (bulk loads and rebuilds) reads the cases once:
  one hashed ``GROUP BY GROUPING SETS`` gives the grid tallies, the category tallies
  and the heat tally, inserted by three data-modifying CTEs of one statement. Before,
  ``case_grid_tallies_add_cases``, ``case_category_tallies_add_cases`` and
  ``heat_tallies_add_cases`` each read the wide ``cases`` table (and the first two
  each looked up every repeat link); they are dropped. The cases outside a load that a
  loaded repeat points at are re-counted, both tally tables in one statement, as
  before.

The heat tally is rebuilt here from the cases.

Revision ID: m01
Revises: s01
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "m01"
down_revision = "s01"
branch_labels = None
depends_on = None

PER_DEGREE_X = 900
PER_DEGREE_Y = 1200
COARSE = 5  # w01's


def _migration(name: str, filename: str):
    """An earlier migration's module (frozen once applied): its SQL builders are reused here."""
    spec = importlib.util.spec_from_file_location(
        f"gridcase_migration_{name}", Path(__file__).with_name(filename)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


t01 = _migration("t01", "t01_case_tallies.py")
x01 = _migration("x01", "x01_case_category_tallies.py")
w01 = _migration("w01", "w01_heat_tallies.py")

HEAT_KEY = w01.KEY
HEAT_COLUMNS = w01.COLUMNS


def _cells(x: str, coarse: int) -> tuple[str, str]:
    return (
        f"heat_cell(ST_X({x}.location), {PER_DEGREE_X}, {coarse})",
        f"heat_cell(ST_Y({x}.location), {PER_DEGREE_Y}, {coarse})",
    )


def _heat_keys(x: str) -> str:
    """The heat key of each row of ``x`` (w01's KEY): its county, township, month and cell."""
    month = f"(date_trunc('month', {x}.reported_at AT TIME ZONE 'Asia/Shanghai'))::date"
    cx, cy = _cells(x, COARSE)
    coarse = f"{COARSE}, {x}.county_code, {x}.township_code, {month}, '', '', {cx}, {cy}"
    return f"CROSS JOIN LATERAL (VALUES ({coarse})) k({', '.join(HEAT_KEY)})"


def _heat_statement(old: str, new: str) -> str:
    """PL/pgSQL: w01's heat statement (the same rows by month and cell), keyed by township."""
    group = ", ".join(f"k.{k}" for k in HEAT_KEY)
    return f"""
    -- The heat tally (migrations w01, m01): the same rows, by township, month and cell.
    WITH heat AS (
        SELECT {group}, sum(x.sign)::integer AS cases,
               sum(x.sign * x.people_count)::integer AS people
        FROM (
            SELECT {w01._COLUMNS_READ}, -1 AS sign FROM ({old}) o
            UNION ALL
            SELECT {w01._COLUMNS_READ}, 1 FROM ({new}) n
        ) x
        {_heat_keys("x")}
        GROUP BY {group}
        HAVING sum(x.sign) <> 0 OR sum(x.sign * x.people_count) <> 0
    ),
    up AS ({w01._UPSERT.format(source="heat")}
        RETURNING ctid, cases)
    SELECT array_agg(ctid) INTO emptied FROM up WHERE cases = 0;
    IF emptied IS NOT NULL THEN
        DELETE FROM heat_tallies WHERE ctid = ANY (emptied) AND cases = 0;
    END IF;
"""


def _trigger_functions() -> list[str]:
    """x01's three trigger functions with this migration's heat statement."""
    out = []
    for name, (old, new) in w01._TRIGGERS.items():
        sql = x01._trigger_function(name, old, new)
        if sql.count(w01._END) != 1:  # pragma: no cover - x01 is frozen
            raise RuntimeError(f"x01's {name} is not shaped as expected")
        out.append(sql.replace(w01._END, _heat_statement(old, new) + w01._END))
    return out


def _upsert(table: str, key: tuple[str, ...], sums: tuple[str, ...], extra: str = "") -> str:
    return (
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET\n        "
        + ",\n        ".join(f"{s} = {table}.{s} + EXCLUDED.{s}" for s in sums)
        + extra
    )


# GROUPING(x.grid_code, x.category_id, k.cx) of each grouping set: a bit is set for an
# argument the set does not group by.
GRID_SET, CATEGORY_SET, HEAT_SET = 3, 5, 6


def _one_pass() -> str:
    """The statement adding the cases of ``%s`` (a WHERE clause or '') to the three tallies.

    One scan of ``cases`` (its columns the facts read, the repeat looked up in one hash
    of every repeat link), hashed into three sets of groups; each set's groups (tens of
    thousands) are sorted for the upsert's lock order, the order the triggers lock in.
    """
    columns = ", ".join(f"c.{col}" for col in (*t01.READ, "category_id", "location"))
    facts = ", ".join(t01.FACTS)
    grid_key = ", ".join(t01.KEY)
    category_key = ", ".join(x01.KEY)
    cx, cy = _cells("x", COARSE)
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
                CASE WHEN {t01._needs_repeat("c")} THEN c.id IN (
                    SELECT repeat_of_id FROM cases WHERE repeat_of_id IS NOT NULL
                    AND reported_at < 'infinity') END AS repeated
            FROM cases c %s
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
        SELECT {grid_key}, {facts}, ahead_at FROM g WHERE kind = {GRID_SET}
        ORDER BY {grid_key}
        {upsert_grids}
    ),
    categories AS (
        INSERT INTO case_category_tallies ({category_key}, {facts})
        SELECT {category_key}, {facts} FROM g WHERE kind = {CATEGORY_SET}
        ORDER BY {category_key}
        {_upsert("case_category_tallies", x01.KEY, t01.FACTS)}
    )
    INSERT INTO heat_tallies ({", ".join(HEAT_COLUMNS)})
    SELECT {COARSE}::smallint, county_code, township_code, month, '', '', cx, cy, cases, people
    FROM g WHERE kind = {HEAT_SET}
    ORDER BY county_code, township_code, month, cx, cy  -- the key's order (the rest is fixed)
    {_upsert("heat_tallies", HEAT_KEY, ("cases", "people"))}
    """


def _recount() -> str:
    """Re-count, in both case tally tables, the cases outside ``%s`` a loaded repeat points at.

    t01's and x01's re-count (the same signed rows: before the load's repeats, -1, and
    after, +1), both upserts in one statement over rows computed once.
    """
    repeated = (
        "{c}.id IN (SELECT repeat_of_id FROM cases WHERE repeat_of_id IS NOT NULL"
        " AND reported_at < 'infinity'{extra})"
    )
    need = t01._needs_repeat("c")
    before = repeated.format(c="c", extra=" AND id NOT IN (SELECT id FROM loaded)")
    rows = f"""
    SELECT c.*, CASE WHEN {need} THEN {before} END AS repeated, -1 AS sign
    FROM cases c WHERE c.id IN (SELECT id FROM touched)
    UNION ALL
    SELECT c.*, CASE WHEN {need} THEN {repeated.format(c="c", extra="")} END, 1
    FROM cases c WHERE c.id IN (SELECT id FROM touched)
    """
    return f"""
    WITH loaded AS MATERIALIZED (SELECT id FROM %s),
    touched AS (
        SELECT DISTINCT c.repeat_of_id AS id FROM cases c JOIN loaded l ON l.id = c.id
        WHERE c.repeat_of_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM loaded o WHERE o.id = c.repeat_of_id)
    ),
    written AS MATERIALIZED ({rows}),
    {t01._summed("SELECT * FROM written")},
    {x01._summed("SELECT * FROM written")},
    categories AS ({x01._UPSERT})
    {t01._UPSERT}
    """


def _quoted(sql: str) -> str:
    return sql.replace("'", "''")


def _add_cases() -> str:
    return f"""
CREATE FUNCTION case_tallies_add_cases(ids regclass) RETURNS void LANGUAGE plpgsql
-- Hash the cases into their groups: the planner cannot tell how many groups there are
-- and would sort a million wide rows on each set's keys instead.
SET enable_sort = off
-- The three hash tables of a million cases (some 390,000 groups of 23 sums, 400 MB)
-- must fit: the planner, which over-estimates the groups, would otherwise sort the
-- million wide rows once per set (17 s instead of 8 at a million).
SET work_mem = '1GB'
AS $fn$
BEGIN
    -- Every tally table adds the cases of ``ids`` (a bulk load's new ids, or ``cases``),
    -- read once (migration m01).
    IF ids = 'cases'::regclass THEN
        EXECUTE format('{_quoted(_one_pass())}', '');
        RETURN;  -- every case: no repeat points outside
    END IF;
    EXECUTE format('{_quoted(_one_pass())}', format('WHERE c.id IN (SELECT id FROM %s)', ids));
    EXECUTE format('{_quoted(_recount())}', ids);
END
$fn$
"""


def upgrade() -> None:
    for sql in _trigger_functions():
        op.execute(sql)
    op.execute("DROP FUNCTION case_tallies_add_cases(regclass)")
    op.execute("DROP FUNCTION case_grid_tallies_add_cases(regclass)")
    op.execute("DROP FUNCTION case_category_tallies_add_cases(regclass)")
    op.execute("DROP FUNCTION heat_tallies_add_cases(regclass)")
    op.execute(_add_cases())
    # The heat tally again, from the cases, keyed by township (rows of cells of COARSE).
    op.execute("LOCK TABLE cases IN SHARE MODE")
    op.execute("DELETE FROM heat_tallies")
    cx, cy = _cells("c", COARSE)
    op.execute(
        f"""
        INSERT INTO heat_tallies ({", ".join(HEAT_COLUMNS)})
        SELECT {COARSE}, county_code, township_code, month, '', '', cx, cy,
               count(*), sum(people_count)
        FROM (SELECT c.county_code, c.township_code, c.people_count, {cx} AS cx, {cy} AS cy,
                     (date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date
                     AS month
              FROM cases c) c
        GROUP BY county_code, township_code, month, cx, cy
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION case_tallies_add_cases(regclass)")
    op.execute(w01._add_cases())
    op.execute(x01._add_category_cases())
    grid = t01._add_cases().replace(
        "CREATE FUNCTION case_tallies_add_cases(", "CREATE FUNCTION case_grid_tallies_add_cases(", 1
    )
    op.execute(grid)
    op.execute(x01._ADD_BOTH)
    for sql in w01._trigger_functions(with_heat=True):
        op.execute(sql)
    op.execute("DELETE FROM heat_tallies")
    op.execute("SELECT heat_tallies_add_cases('cases')")
