"""Heat tallies per local month and fixed cell, kept by the case tallies' triggers

``heat_tallies`` holds, per local month of reported_at and fixed cell of the case's
location, the cases and the people involved: what the heat map sums. Cells are fixed
in degrees, so that any view's lattice made of whole cells re-bins them exactly. The
cells are coarse: 5 by 5 fine cells of 1/900 degree of longitude by 1/1200 degree of
latitude (about 500 metres at 35 degrees north; a county view), keyed by the county
code alone (township, village and grid are '', ``scale`` is 5), so a county's month
holds one row per cell however many grids it crosses (at a million cases, 0.14 rows
per case). A fine level keyed by every area code was tried and left out: it held 0.73
rows per case (a copy of the cases rather than an aggregate) and cost a million-case
load some 30 seconds; village and township views read their cases (29 and 91 ms at
a million).

A point's cell index is ``heat_cell(coordinate, cells per degree, scale)``, the
floor of its fine index divided by the scale; the map's raw path computes the same
function, so both give the same cells.

The three trigger functions of the case tallies (t01, as x01 left them) each gain
one statement for the heat tally, over the same transition tables: one trigger per
statement still (a field report pays one more upsert, not one more trigger).
TRUNCATE empties it. A bulk load, which defers those triggers, adds its cases with
``heat_tallies_add_cases`` as it does with ``case_tallies_add_cases``. The cases
already stored are tallied here.

Revision ID: w01
Revises: x01
Create Date: 2026-11-24
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "w01"
down_revision = "x01"
branch_labels = None
depends_on = None

PER_DEGREE_X = 900
PER_DEGREE_Y = 1200
COARSE = 5
KEY = (
    "scale",
    "county_code",
    "township_code",
    "month",
    "village_code",
    "grid_code",
    "cx",
    "cy",
)
COLUMNS = (*KEY, "cases", "people")


def _x01():
    """Migration x01's module: its trigger functions (t01's with the category tallies) are
    re-created here with the heat part.

    Loaded from its file (a migration is not an importable package); x01 never changes
    once applied, so what it generates is what the database has before this one.
    """
    spec = importlib.util.spec_from_file_location(
        "gridcase_migration_x01", Path(__file__).with_name("x01_case_category_tallies.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(x: str) -> str:
    """The key of each row of ``x`` (columns of KEY, in order): its county, month and cell."""
    month = f"(date_trunc('month', {x}.reported_at AT TIME ZONE 'Asia/Shanghai'))::date"
    coarse = (
        f"{COARSE}, {x}.county_code, '', {month}, '', '', "
        f"heat_cell(ST_X({x}.location), {PER_DEGREE_X}, {COARSE}), "
        f"heat_cell(ST_Y({x}.location), {PER_DEGREE_Y}, {COARSE})"
    )
    return f"CROSS JOIN LATERAL (VALUES ({coarse})) k({', '.join(KEY)})"


_UPSERT = (
    f"INSERT INTO heat_tallies ({', '.join(COLUMNS)})\n"
    "SELECT * FROM {source} ORDER BY " + ", ".join(KEY) + "\n"
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET\n"
    "  cases = heat_tallies.cases + EXCLUDED.cases,\n"
    "  people = heat_tallies.people + EXCLUDED.people"
)

_COLUMNS_READ = (
    "county_code, township_code, village_code, grid_code, reported_at, location, people_count"
)


def _heat_statement(old: str, new: str) -> str:
    """PL/pgSQL: add the new rows' cells and subtract the old rows', drop emptied rows."""
    group = ", ".join(f"k.{k}" for k in KEY)
    return f"""
    -- The heat tally (migration w01): the same rows, by month and cell.
    WITH heat AS (
        SELECT {group}, sum(x.sign)::integer AS cases,
               sum(x.sign * x.people_count)::integer AS people
        FROM (
            SELECT {_COLUMNS_READ}, -1 AS sign FROM ({old}) o
            UNION ALL
            SELECT {_COLUMNS_READ}, 1 FROM ({new}) n
        ) x
        {_keys("x")}
        GROUP BY {group}
        HAVING sum(x.sign) <> 0 OR sum(x.sign * x.people_count) <> 0
    ),
    up AS ({_UPSERT.format(source="heat")}
        RETURNING ctid, cases)
    SELECT array_agg(ctid) INTO emptied FROM up WHERE cases = 0;
    IF emptied IS NOT NULL THEN
        DELETE FROM heat_tallies WHERE ctid = ANY (emptied) AND cases = 0;
    END IF;
"""


_END = "    RETURN NULL;\nEND\n$fn$"

_TRIGGERS = {
    "case_tallies_after_insert": ("SELECT * FROM cases WHERE false", "SELECT * FROM new_rows"),
    "case_tallies_after_update": ("SELECT * FROM old_rows", "SELECT * FROM new_rows"),
    "case_tallies_after_delete": ("SELECT * FROM old_rows", "SELECT * FROM cases WHERE false"),
}


def _trigger_functions(with_heat: bool) -> list[str]:
    """x01's three trigger functions, with (or, to go back, without) the heat statement."""
    x01 = _x01()
    out = []
    for name, (old, new) in _TRIGGERS.items():
        sql = x01._trigger_function(name, old, new)
        if sql.count(_END) != 1 or sql.count("CREATE OR REPLACE FUNCTION") != 1:  # pragma: no cover
            raise RuntimeError(f"x01's {name} is not shaped as expected")
        if with_heat:
            sql = sql.replace(_END, _heat_statement(old, new) + _END)
        out.append(sql)
    return out


def _add_cases() -> str:
    """``heat_tallies_add_cases(ids)``: add the cases of table ``ids`` (column ``id``), not yet tallied.

    For a bulk load (its table of new ids) or a rebuild (``cases`` itself): the cells
    in one hashed ``GROUP BY`` over the cases. Rows are upserted in key order, the
    order the triggers lock rows in, except for every case at once: then the function
    holds ``cases`` against writers (the triggers' only source) until the transaction
    ends, and needs no order.
    """
    key = "c.county_code, k.month, k.cx, k.cy"
    added = f"""
    INSERT INTO heat_tallies ({", ".join(COLUMNS)})
    SELECT * FROM (
        SELECT {COARSE}::smallint AS scale, c.county_code, ''::varchar AS township_code,
               k.month, ''::varchar AS village_code, ''::varchar AS grid_code, k.cx, k.cy,
               count(*)::integer AS cases, sum(c.people_count)::integer AS people
        FROM cases c
        CROSS JOIN LATERAL (SELECT
            (date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month,
            heat_cell(ST_X(c.location), {PER_DEGREE_X}, {COARSE}) AS cx,
            heat_cell(ST_Y(c.location), {PER_DEGREE_Y}, {COARSE}) AS cy) k
        %s
        GROUP BY {key}
    ) g
    %s
    ON CONFLICT ({", ".join(KEY)}) DO UPDATE SET
        cases = heat_tallies.cases + EXCLUDED.cases,
        people = heat_tallies.people + EXCLUDED.people
    """
    ordered = "ORDER BY " + ", ".join(KEY)
    return f"""
CREATE FUNCTION heat_tallies_add_cases(ids regclass) RETURNS void LANGUAGE plpgsql
-- Hash the cells: the planner cannot tell how many cells there are and would sort a
-- million rows on seven keys first.
SET enable_sort = off
AS $fn$
BEGIN
    IF ids = 'cases'::regclass THEN
        LOCK TABLE cases IN SHARE MODE;
        EXECUTE format('{added.replace("'", "''")}', '', '');
        RETURN;
    END IF;
    EXECUTE format('{added.replace("'", "''")}',
                   format('WHERE c.id IN (SELECT id FROM %s)', ids), '{ordered}');
END
$fn$
"""


def upgrade() -> None:
    op.create_table(
        "heat_tallies",
        sa.Column("scale", sa.SmallInteger(), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("grid_code", sa.String(20), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False),
        sa.Column("cy", sa.Integer(), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("people", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint(*KEY, name="pk_heat_tallies"),
    )
    # The fine index of a coordinate divided by ``cells`` (rounded down): the cell of a
    # lattice of ``cells`` fine cells. Plain SQL, so the planner inlines it.
    op.execute(
        """
        CREATE FUNCTION heat_cell(v double precision, per_degree integer, cells integer)
        RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT floor(floor(v * per_degree) / cells)::integer $$
        """
    )
    for sql in _trigger_functions(with_heat=True):
        op.execute(sql)
    op.execute(_add_cases())
    op.execute(
        """
        CREATE OR REPLACE FUNCTION case_tallies_after_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        BEGIN
            DELETE FROM case_tallies;
            DELETE FROM case_category_tallies;
            DELETE FROM heat_tallies;
            RETURN NULL;
        END
        $fn$
        """
    )
    op.execute("SELECT heat_tallies_add_cases('cases')")


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION case_tallies_after_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        BEGIN
            DELETE FROM case_tallies;
            DELETE FROM case_category_tallies;
            RETURN NULL;
        END
        $fn$
        """
    )
    for sql in _trigger_functions(with_heat=False):
        op.execute(sql)
    op.execute("DROP FUNCTION heat_tallies_add_cases(regclass)")
    op.execute("DROP FUNCTION heat_cell(double precision, integer, integer)")
    op.drop_table("heat_tallies")
