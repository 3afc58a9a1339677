"""A first load's tally pass: each case's facts once, for both case tallies in one hash

u01's pass into empty tallies computed each tally's groups apart: three scans of
``cases`` (two more for the repeated ids where no index holds them: a load's second
session, a load that rebuilds the indexes), each case's conditions and the 23 facts'
filters evaluated once for the grid tally and again for the category tally, each
case's month with the zone looked up by name three times, and each tally's groups
written to a temporary table, read back and sorted. At a million cases (the demo's,
one core, ``EXPLAIN ANALYZE`` without timing) the grid and the category tally's
queries took 1.8 and 2.0 s, of which the 23 filtered aggregates about 1.0 s each, the
join with the repeated ids 0.45 s each and the month 0.2-0.3 s each.

Into empty tallies with ``ids = 'cases'`` the function now:

* hashes every case into both case tallies' groups by one aggregate with two grouping
  sets (grid × month; village × category × month): a case's conditions and filters are
  evaluated once, only the transitions twice (2.2 s for both where u01's two queries
  took 3.8 s on one core). GROUPING SETS run on one core in PostgreSQL 15; their
  240,000 groups go from the aggregate's CTE straight into the two tallies, grid first;
* takes ``repeated`` from the array of the repeated ids (one scan), passed to EXECUTE:
  a one-shot plan's parameter is a constant, and ``= ANY`` of a constant array probes a
  hash built once (0.1 s where the hash join took 0.45 s);
* takes a case's month in the function's own time zone (``SET TimeZone``, the zone of
  every tally month): ``reported_at::timestamp`` is the local wall-clock time that
  ``AT TIME ZONE 'Asia/Shanghai'`` gives, without looking the zone up per case (about
  0.13 µs a case where it took 0.23 µs);
* hashes the heat cells in a second scan, in a CTE of its own (planned together with
  the ORDER BY, the groups would be made by sorting a million rows);
* sorts the groups into key order cheaper: the rows are laid out with the key's
  fixed-width columns first (a sort finds a later key by its offset, not by walking the
  row), and with one county among the cases the (equal) county is left out of the sort
  keys: the same order (about 0.15 and 0.3 s).

Measured at a million cases (the demo data on the two-core machine, the function alone
on emptied tallies, rolled back, alternated with u01's 4+4, medians; other work on the
machine, load 1.4): on temporary tables of the 20 columns it reads, as a load's second
session runs it (``cases.tallies_beside``, no parallel worker), 6.25 -> 4.05 s; on an
ordinary table of those columns, 5.82 s wall and 7.28 s of CPU (u01 with a parallel
worker) -> 4.01 s on one core; on ``cases`` itself (tallies' indexes off, as a first
load has them; 2+2) 5.97 s wall, 7.38 s CPU -> 4.57 s.

The rows are those u01's pass gave, every column, stored in key order
(tests/test_tally_pass_parallel.py runs both passes after writes with many repeats,
deadlines, conclusions, month edges and two counties, and compares them with each other
and with a fresh GROUP BY). Tallies that hold rows and a load's own ids keep y01's
statement, as u01 left them. The function still reads no table but ``cases`` and the
tallies, by unqualified name, and creates no table.

Revision ID: k02
Revises: u03
Create Date: 2026-11-25
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "k02"
down_revision = "u03"
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


u01 = _migration("u01", "u01_tally_pass_in_parallel.py")
y01, t01, x01, m01 = u01.y01, u01.t01, u01.x01, u01.m01

ZONE = "Asia/Shanghai"
# Every tally's month, spelt by t01, x01 and m01: the local month of reported_at.
ZONE_MONTH = f"(date_trunc('month', c.reported_at AT TIME ZONE '{ZONE}'))::date"
# The same local wall-clock time, taken in the session's time zone: the function sets it
# to ZONE, so the zone is not looked up by name for every case.
MONTH = "(date_trunc('month', c.reported_at::timestamp))::date"


def _rows() -> str:
    """y01's rows of every case (its columns and conditions), ``repeated`` from ``$1``.

    ``$1`` is the array of ids a repeat points at, passed to EXECUTE: a parameter of a
    one-shot plan is a constant to the planner, which looks ``= ANY`` of a constant
    array up in a hash table built once.
    """
    columns = ", ".join(f"c.{col}" for col in (*t01.READ, "category_id"))
    conditions = ", ".join(f"{sql} AS {name}" for name, sql in y01._conditions("c").items())
    return f"""
        SELECT {columns}, {conditions},
            {MONTH} AS month,
            CASE WHEN {t01._needs_repeat("c")} THEN c.id = ANY ($1) END AS repeated
        FROM cases c"""


def _cases() -> str:
    """Every case's rows with ``ahead`` (t01's ahead_at value), kept a subquery (as u01's).

    The value calls clock_timestamp(): a subquery whose output is volatile is not pulled
    up into the aggregate, where each shared condition would be evaluated again in every
    aggregate that reads it.
    """
    ahead = t01._AHEAD.replace("x.", "r.")
    if "x." in ahead or "clock_timestamp()" not in ahead:  # pragma: no cover - t01 is frozen
        raise RuntimeError("t01's ahead_at is not spelt as expected")
    return f"SELECT r.*, {ahead} AS ahead FROM ({_rows()}) r"


def grouped_query() -> str:
    """Both case tallies' groups over every case: one hash aggregate, two grouping sets."""
    grid_key = ", ".join(f"x.{k}" for k in t01.KEY)
    category_key = ", ".join(f"x.{k}" for k in x01.KEY)
    return f"""SELECT GROUPING(x.grid_code, x.category_id) AS kind,
            x.county_code, x.township_code, x.village_code, x.grid_code, x.category_id, x.month,
            {y01._sums()},
            max(x.ahead) AS ahead_at
        FROM ({_cases()}) x
        GROUP BY GROUPING SETS (({grid_key}), ({category_key}))"""


def _laid_out(key: tuple[str, ...], rest: tuple[str, ...]) -> str:
    """The columns of a tally's rows as they are sorted: the key's fixed-width columns first.

    A sort compares its rows' later keys by finding them in the row: a column after a
    text one is found by walking the row from its start, one before by its offset.
    """
    fixed = [k for k in key if k in ("month", "category_id", "cx", "cy")]
    return ", ".join([*fixed, *(k for k in key if k not in fixed), *rest])


def _order(key: tuple[str, ...], one_county: bool) -> str:
    """ORDER BY a tally's key; with one county among the cases, its key less the county.

    Every tally key leads with the county: among the groups of one county the order of
    the rest is the same order, and the sort does not compare equal codes first (a
    county's own deployment; 0.3 s of the pass at a million cases).
    """
    if key[0] != "county_code":  # pragma: no cover - the keys are frozen
        raise RuntimeError("a tally key does not lead with the county")
    return ", ".join(key[1:] if one_county else key)


def _case_tallies(one_county: bool = False) -> str:
    """The statement inserting both case tallies' groups, grid tally first, each in key order."""
    grids = _laid_out(t01.KEY, (*t01.FACTS, "ahead_at"))
    categories = _laid_out(x01.KEY, t01.FACTS)
    return f"""
    WITH g AS ({grouped_query()}),
    grids AS (
        INSERT INTO case_tallies ({grids})
        SELECT {grids} FROM g WHERE kind = {y01.GRID_SET}
        ORDER BY {_order(t01.KEY, one_county)}
        RETURNING 1
    ),
    categories AS (
        INSERT INTO case_category_tallies ({categories})
        SELECT {categories} FROM g WHERE kind = {y01.CATEGORY_SET}
        ORDER BY {_order(x01.KEY, one_county)}
        RETURNING 1
    )
    -- Evaluated in this order, the order every trigger locks tally rows in.
    SELECT (SELECT count(*) FROM grids), (SELECT count(*) FROM categories)"""


def heat_query() -> str:
    """The heat tally's groups over every case (m01's key and cells)."""
    cx, cy = m01._cells("x", m01.COARSE)
    return f"""SELECT {m01.COARSE}::smallint AS scale, x.county_code, x.township_code, x.month,
            ''::text AS village_code, ''::text AS grid_code, {cx} AS cx, {cy} AS cy,
            count(*)::integer AS cases, sum(coalesce(x.people_count, 0))::integer AS people
        FROM (
            SELECT c.county_code, c.township_code, c.people_count, c.location, {MONTH} AS month
            FROM cases c
        ) x
        GROUP BY x.county_code, x.township_code, x.month, {cx}, {cy}"""


def _heat_tally(one_county: bool = False) -> str:
    """The statement inserting the heat tally's groups in key order.

    The groups are hashed in a CTE of their own: planned together with the ORDER BY, a
    million rows would be sorted to be grouped (the planner cannot tell how few cells
    there are).
    """
    columns = _laid_out(u01.HEAT_ORDER, ("scale", "village_code", "grid_code", "cases", "people"))
    if sorted(columns.split(", ")) != sorted(m01.HEAT_COLUMNS):  # pragma: no cover - frozen
        raise RuntimeError("the heat tally's columns are not m01's")
    return f"""
    WITH g AS MATERIALIZED ({heat_query()})
    INSERT INTO heat_tallies ({columns})
    SELECT {columns} FROM g
    ORDER BY {_order(u01.HEAT_ORDER, one_county)}"""


def _quoted(sql: str) -> str:
    return sql.replace("'", "''")


def _add_cases() -> str:
    one_pass = _quoted(y01._one_pass(upsert=True))
    return f"""
CREATE FUNCTION case_tallies_add_cases(ids regclass) RETURNS void LANGUAGE plpgsql
-- Hash the cases into their groups: the planner cannot tell how many groups there are
-- and would sort a million wide rows on each set's keys instead.
SET enable_sort = off
-- The hash tables of a million cases (some 400 MB) must fit.
SET work_mem = '1GB'
-- One worker beside the leader at most: with two, u01's pass used more CPU on two
-- cores and was no faster (u01's docstring).
SET max_parallel_workers_per_gather = 1
-- The month of a case is its local month in this zone (k02).
SET TimeZone = '{ZONE}'
AS $fn$
DECLARE
    lo bigint;
    hi bigint;
    repeats bigint[];
    one_county boolean;
BEGIN
    -- Every tally table adds the cases of ``ids`` (a bulk load's new ids, or ``cases``)
    -- (migrations m01, y01, u01, k02).
    IF ids = 'cases'::regclass THEN
        -- No report may tally a case between the check below and the inserts.
        LOCK TABLE cases IN SHARE MODE;
        IF NOT EXISTS (SELECT 1 FROM case_tallies)
           AND NOT EXISTS (SELECT 1 FROM case_category_tallies)
           AND NOT EXISTS (SELECT 1 FROM heat_tallies) THEN
            -- Empty tallies, every case: both case tallies from one hash of the cases
            -- (their conditions evaluated once a case), then the heat tally, inserted
            -- plainly in the triggers' lock order, each in key order (k02). First the
            -- ids a repeat points at, and whether one county holds every case (then
            -- the sorts leave the equal county out of their keys: the same order).
            SELECT coalesce(array_agg(repeat_of_id) FILTER (
                       WHERE repeat_of_id IS NOT NULL AND reported_at < 'infinity'), '{{}}'),
                   min(county_code) = max(county_code)
            INTO repeats, one_county FROM cases;
            IF one_county THEN
                EXECUTE '{_quoted(_case_tallies(one_county=True))}' USING repeats;
                EXECUTE '{_quoted(_heat_tally(one_county=True))}';
            ELSE
                EXECUTE '{_quoted(_case_tallies())}' USING repeats;
                EXECUTE '{_quoted(_heat_tally())}';
            END IF;
        ELSE
            EXECUTE format('{one_pass}', '');
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
    EXECUTE format('{one_pass}',
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
    op.execute(u01._add_cases())
