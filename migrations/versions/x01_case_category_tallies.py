"""Case tallies per village, category and local month; an index on the accused unit

``case_category_tallies`` holds the facts of ``case_tallies`` (t01) per (county,
local month, category, township, village): the statistics read it for whole months
when filtered or grouped by category (a grid × category key would hold about one case
a row at a million cases; this one about six). It is kept like ``case_tallies``, in
the same transaction as every write to ``cases``:

* the three statement-level trigger functions of t01 are replaced by the same ones
  that also group the statement's signed rows (computed once, ``written``) by this key
  and upsert them (``summed_categories``/``up_categories``), then delete the emptied
  rows of both tables; no trigger is added;
* ``case_tallies_add_cases(ids)`` (bulk loads, rebuilds) becomes a function calling
  t01's, renamed ``case_grid_tallies_add_cases``, and the new
  ``case_category_tallies_add_cases``;
* the truncate trigger empties both tables.

The partial index ``ix_cases_accused_unit`` finds the few cases that accuse a unit: the
statistics of a user whose unit hides them (回避) are the tallies less those cases.
``ix_cases_due_unconcluded`` also carries the category and the accused unit (the
deadlines ahead of as_of stay an index-only scan for those queries), and partial
indexes on both tally tables find the rows with open cases (summed over every month).

Revision ID: x01
Revises: v01
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "x01"
down_revision = "v01"
branch_labels = None
depends_on = None


def _t01():
    """Migration t01's module: its frozen facts, keys and upsert are reused here."""
    spec = importlib.util.spec_from_file_location(
        "gridcase_migration_t01", Path(__file__).with_name("t01_case_tallies.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


t01 = _t01()
FACTS = t01.FACTS
KEY = ("county_code", "month", "category_id", "township_code", "village_code")
# What t01 made ix_cases_due_unconcluded carry besides the deadline.
DUE_INCLUDE = (
    "reported_at",
    "status",
    "resolved_at",
    "county_code",
    "township_code",
    "village_code",
    "grid_code",
)


def _keyed(c: str) -> str:
    return (
        f"{c}.county_code, "
        f"(date_trunc('month', {c}.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month, "
        f"{c}.category_id, {c}.township_code, {c}.village_code"
    )


_UPSERT = (
    f"INSERT INTO case_category_tallies ({', '.join(KEY)}, {', '.join(FACTS)})\n"
    "SELECT * FROM summed_categories ORDER BY " + ", ".join(KEY) + "\n"
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET\n  "
    + ",\n  ".join(f"{f} = case_category_tallies.{f} + EXCLUDED.{f}" for f in FACTS)
)


def _summed(rows_sql: str) -> str:
    """``summed_categories``: the rows' signed facts per key, zero groups left out."""
    facts = {name: sql.split(t01.COND_MARK)[0] for name, sql in t01._facts("x").items()}
    sums = ",\n    ".join(
        f"sum(x.sign * ({sql}))::integer AS {name}" for name, sql in facts.items()
    )
    nonzero = " OR ".join(f"sum(x.sign * ({sql})) <> 0" for sql in facts.values())
    return f"""summed_categories AS (
  SELECT {", ".join(f"k.{k}" for k in KEY)},
    {sums}
  FROM ({rows_sql}) x
  CROSS JOIN LATERAL (SELECT {_keyed("x")}) k
  GROUP BY {", ".join(f"k.{k}" for k in KEY)}
  HAVING {nonzero}
)"""


def _written(old: str, new: str) -> str:
    """t01's signed rows of a statement (old ones -1, new ones +1, re-counted repeats both)."""
    need_o, need_n, need_c = t01._needs_repeat("o"), t01._needs_repeat("n"), t01._needs_repeat("c")
    before_repeat = (
        "({c}.id IN (SELECT repeat_of_id FROM o WHERE repeat_of_id IS NOT NULL) OR EXISTS ("
        "SELECT 1 FROM cases r WHERE r.repeat_of_id = {c}.id AND r.repeat_of_id IS NOT NULL"
        " AND r.reported_at < 'infinity' AND r.id NOT IN (SELECT id FROM n)))"
    )
    after_repeat = (
        "EXISTS (SELECT 1 FROM cases r WHERE r.repeat_of_id = {c}.id"
        " AND r.repeat_of_id IS NOT NULL AND r.reported_at < 'infinity')"
    )
    return f"""
    SELECT o.*, CASE WHEN {need_o} THEN {before_repeat.format(c="o")} END AS repeated, -1 AS sign FROM o
    UNION ALL
    SELECT c.*, CASE WHEN {need_c} THEN {before_repeat.format(c="c")} END, -1
    FROM cases c WHERE c.id IN (SELECT id FROM touched)
    UNION ALL
    SELECT n.*, CASE WHEN {need_n} THEN {after_repeat.format(c="n")} END, 1 FROM n
    UNION ALL
    SELECT c.*, CASE WHEN {need_c} THEN {after_repeat.format(c="c")} END, 1
    FROM cases c WHERE c.id IN (SELECT id FROM touched)
    """


def _trigger_function(name: str, old: str, new: str, categories: bool = True) -> str:
    """t01's trigger function; with ``categories``, also keeping ``case_category_tallies``."""
    # -- x01: the per-category part (the rest is t01's, with its rows computed once) --
    category_ctes = (
        f""",
    {_summed("SELECT * FROM written")},
    up_categories AS ({_UPSERT}
        RETURNING ctid, cases)"""
        if categories
        else ""
    )
    category_emptied = (
        ", (SELECT array_agg(ctid) FROM up_categories WHERE cases = 0)" if categories else ", NULL"
    )
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    emptied tid[];
    emptied_categories tid[];
BEGIN
    IF current_setting('gridcase.defer_case_tallies', true) = 'on' THEN
        RETURN NULL;  -- a bulk load adds its cases itself (case_tallies_add_cases)
    END IF;
    WITH o AS ({old}), n AS ({new}),
    -- Cases a written repeat points (or pointed) at, not written themselves: their
    -- "first petition resolved once" may change.
    touched AS (
        SELECT repeat_of_id AS id FROM o WHERE repeat_of_id IS NOT NULL
        UNION SELECT repeat_of_id FROM n WHERE repeat_of_id IS NOT NULL
        EXCEPT SELECT id FROM o
        EXCEPT SELECT id FROM n
    ),
    written AS MATERIALIZED ({_written(old, new)}),
    {t01._summed("SELECT * FROM written")},
    up AS ({t01._UPSERT}
        RETURNING ctid, cases){category_ctes}
    SELECT (SELECT array_agg(ctid) FROM up WHERE cases = 0){category_emptied}
    INTO emptied, emptied_categories;
    IF emptied IS NOT NULL THEN
        -- Rows left with no case (this transaction holds their locks since the upsert).
        DELETE FROM case_tallies WHERE ctid = ANY (emptied) AND cases = 0;
    END IF;
    IF emptied_categories IS NOT NULL THEN
        DELETE FROM case_category_tallies WHERE ctid = ANY (emptied_categories) AND cases = 0;
    END IF;
    RETURN NULL;
END
$fn$
"""


def _add_category_cases() -> str:
    """``case_category_tallies_add_cases(ids)``: t01's ``case_tallies_add_cases`` for this key."""
    # Grouped by village, category and month (a village's cases all carry its
    # township's and county's codes), by hashing: only the groups are sorted.
    added = f"""
    INSERT INTO case_category_tallies ({", ".join(KEY)}, {", ".join(FACTS)})
    SELECT * FROM (
    SELECT min(x.county_code), k.month, x.category_id, min(x.township_code), x.village_code,
        {t01._unsigned_sums()}
    FROM (
        SELECT {", ".join(f"c.{col}" for col in (*t01.READ, "category_id"))},
            CASE WHEN {t01._needs_repeat("c")} THEN c.id IN (
                SELECT repeat_of_id FROM cases WHERE repeat_of_id IS NOT NULL
                AND reported_at < 'infinity') END AS repeated
        FROM cases c %s
    ) x
    CROSS JOIN LATERAL (SELECT {_keyed("x")}) k
    GROUP BY x.village_code, x.category_id, k.month
    ) g
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({", ".join(KEY)}) DO UPDATE SET
    """ + ",\n    ".join(f"{f} = case_category_tallies.{f} + EXCLUDED.{f}" for f in FACTS)
    repeated = (
        "{c}.id IN (SELECT repeat_of_id FROM cases WHERE repeat_of_id IS NOT NULL"
        " AND reported_at < 'infinity'{extra})"
    )
    rows = f"""
    SELECT c.*, CASE WHEN {t01._needs_repeat("c")}
                THEN {repeated.format(c="c", extra=" AND id NOT IN (SELECT id FROM loaded)")} END AS repeated,
           -1 AS sign
    FROM cases c WHERE c.id IN (SELECT id FROM touched)
    UNION ALL
    SELECT c.*, CASE WHEN {t01._needs_repeat("c")} THEN {repeated.format(c="c", extra="")} END, 1
    FROM cases c WHERE c.id IN (SELECT id FROM touched)
    """
    recount = f"""
    WITH loaded AS MATERIALIZED (SELECT id FROM %s),
    touched AS (
        SELECT DISTINCT c.repeat_of_id AS id FROM cases c JOIN loaded l ON l.id = c.id
        WHERE c.repeat_of_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM loaded o WHERE o.id = c.repeat_of_id)
    ),
    {_summed(rows)}
    {_UPSERT}
    """
    return f"""
CREATE FUNCTION case_category_tallies_add_cases(ids regclass) RETURNS void LANGUAGE plpgsql
SET enable_sort = off
-- The hash of a million cases' groups (about 200,000 of 22 sums) spilled to disk with
-- the default work_mem and took twice as long.
SET work_mem = '256MB'
AS $fn$
BEGIN
    IF ids = 'cases'::regclass THEN
        EXECUTE format('{added.replace("'", "''")}', '');
        RETURN;
    END IF;
    EXECUTE format('{added.replace("'", "''")}', format('WHERE c.id IN (SELECT id FROM %s)', ids));
    EXECUTE format('{recount.replace("'", "''")}', ids);
END
$fn$
"""


_ADD_BOTH = """
CREATE FUNCTION case_tallies_add_cases(ids regclass) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    -- Every tally table adds the cases of ``ids`` (a bulk load's new ids, or ``cases``).
    PERFORM case_grid_tallies_add_cases(ids);
    PERFORM case_category_tallies_add_cases(ids);
END
$fn$
"""

_TRUNCATE = """
CREATE OR REPLACE FUNCTION case_tallies_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM case_tallies;
    DELETE FROM case_category_tallies;
    RETURN NULL;
END
$fn$
"""

_TRIGGERS = (
    ("case_tallies_after_insert", t01._NONE, "SELECT * FROM new_rows"),
    ("case_tallies_after_update", "SELECT * FROM old_rows", "SELECT * FROM new_rows"),
    ("case_tallies_after_delete", "SELECT * FROM old_rows", t01._NONE),
)


def upgrade() -> None:
    op.create_table(
        "case_category_tallies",
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in FACTS),
        sa.PrimaryKeyConstraint(*KEY, name="pk_case_category_tallies"),
    )
    op.create_index(
        "ix_case_category_tallies_open",
        "case_category_tallies",
        ["county_code", "category_id", "township_code"],
        postgresql_where="open <> 0",
    )
    op.create_index(
        "ix_case_tallies_open",
        "case_tallies",
        ["county_code", "township_code"],
        postgresql_where="open <> 0",
    )
    op.create_index(
        "ix_cases_accused_unit",
        "cases",
        ["accused_unit"],
        postgresql_where="accused_unit IS NOT NULL",
    )
    # The deadlines ahead are read by an index-only scan for a category filter and for a
    # scope hiding a unit's cases too.
    op.drop_index("ix_cases_due_unconcluded", table_name="cases")
    op.create_index(
        "ix_cases_due_unconcluded",
        "cases",
        ["due_at"],
        postgresql_include=[*DUE_INCLUDE, "category_id", "accused_unit"],
        postgresql_where="concluded_at IS NULL AND due_at IS NOT NULL",
    )
    for name, old, new in _TRIGGERS:
        op.execute(_trigger_function(name, old, new))
    op.execute(_TRUNCATE)
    op.execute(
        "ALTER FUNCTION case_tallies_add_cases(regclass) RENAME TO case_grid_tallies_add_cases"
    )
    op.execute(_add_category_cases())
    op.execute(_ADD_BOTH)
    # The cases already stored, in one statement.
    op.execute("SELECT case_category_tallies_add_cases('cases')")


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION case_tallies_add_cases(regclass);
        DROP FUNCTION case_category_tallies_add_cases(regclass);
        ALTER FUNCTION case_grid_tallies_add_cases(regclass) RENAME TO case_tallies_add_cases;
        CREATE OR REPLACE FUNCTION case_tallies_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            DELETE FROM case_tallies;
            RETURN NULL;
        END
        $fn$;
        """
    )
    for name, old, new in _TRIGGERS:
        op.execute(_trigger_function(name, old, new, categories=False))
    op.drop_index("ix_cases_due_unconcluded", table_name="cases")
    op.create_index(
        "ix_cases_due_unconcluded",
        "cases",
        ["due_at"],
        postgresql_include=list(DUE_INCLUDE),
        postgresql_where="concluded_at IS NULL AND due_at IS NOT NULL",
    )
    op.drop_index("ix_cases_accused_unit", table_name="cases")
    op.drop_index("ix_case_tallies_open", table_name="case_tallies")
    op.drop_table("case_category_tallies")
