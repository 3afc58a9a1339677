"""Case tallies per grid and local month, kept by triggers on cases in the same transaction

``case_tallies`` holds, for every (county, township, village, grid, local month of
reported_at), the sums of the per-case facts the period figures count (stats.figures
with the as-of instant taken as +infinity: exact whenever no stored time is ahead of
as_of, which ``ahead_at`` records). Statement-level AFTER INSERT/UPDATE/DELETE
triggers with transition tables subtract the old rows' facts and add the new rows',
upsert in key order (so concurrent writers lock rows in one order) and delete rows
that reach zero cases. "First petition resolved once" depends on whether any repeat
points at the case, so a written repeat also re-counts the case it points at. A bulk
load may defer the triggers for its one INSERT (``gridcase.defer_case_tallies``) and
add its cases with ``case_tallies_add_cases`` in the same transaction. An index on
the unconcluded cases' deadlines serves the two facts that depend on as_of through
due_at. Existing cases are tallied here with one INSERT ... SELECT.

Revision ID: t01
Revises: r02
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t01"
down_revision = "r02"
branch_labels = None
depends_on = None

KEY = ("county_code", "township_code", "village_code", "grid_code", "month")
# Separates a 0/1 fact from its condition in _facts (see _unsigned_sums).
COND_MARK = "\x00"
# The columns of cases the facts, keys and ahead_at read.
READ = (
    "id",
    "county_code",
    "township_code",
    "village_code",
    "grid_code",
    "reported_at",
    "concluded_at",
    "resolved_at",
    "due_at",
    "status",
    "satisfaction",
    "is_first",
    "people_count",
    "batch_count",
    "channel",
    "skip_level",
    "resolved_level",
)


def _facts(c: str) -> dict[str, str]:
    """Each tally column's per-case value, in SQL over a cases row ``c`` with ``repeated``.

    Frozen copies of stats.figures' conditions with ``:as_of`` = +infinity (so NULLs
    behave as in the figures' SQL); tests check them against the live definitions.
    """
    resolved = f"({c}.status IN ('closed','resolved') AND {c}.resolved_at < 'infinity')"
    open_ = f"({c}.reported_at < 'infinity' AND {c}.status <> 'not_accepted' AND NOT {resolved})"
    followed = f"({c}.satisfaction IS NOT NULL AND {c}.concluded_at < 'infinity')"
    due = f"({c}.status <> 'not_accepted' AND {c}.due_at IS NOT NULL)"

    def b(cond: str) -> str:
        return f"CASE WHEN {cond} THEN 1 ELSE 0 END{COND_MARK}{cond}"

    return {
        "cases": "1",
        "people": f"coalesce({c}.people_count, 0)",
        "visit_batches": f"CASE WHEN {c}.channel = 'visit' THEN coalesce({c}.batch_count, 0) ELSE 0 END",
        "visit_persons": f"CASE WHEN {c}.channel = 'visit' "
        f"THEN coalesce({c}.people_count * {c}.batch_count, 0) ELSE 0 END",
        "resolved": b(resolved),
        "followups": b(followed),
        "satisfied": b(f"{followed} AND {c}.satisfaction IN ('satisfied','basically')"),
        "due_concluded": b(f"{due} AND {c}.concluded_at < 'infinity'"),
        "due_pending": b(f"{due} AND {c}.concluded_at IS NULL"),
        "on_time": b(
            f"{due} AND ({c}.concluded_at < 'infinity' OR {c}.due_at < 'infinity')"
            f" AND {c}.concluded_at < 'infinity' AND {c}.concluded_at <= {c}.due_at"
        ),
        "first": b(f"{c}.is_first"),
        "first_once": b(f"{c}.is_first AND {resolved} AND NOT {c}.repeated"),
        "repeats": b(f"NOT {c}.is_first"),
        "collective": b(f"{c}.people_count >= 5"),
        "skip_level": b(f"{c}.skip_level"),
        "resolved_leveled": b(f"{resolved} AND {c}.resolved_level IS NOT NULL"),
        "resolved_village": b(f"{resolved} AND {c}.resolved_level = 'village'"),
        "resolved_township": b(f"{resolved} AND {c}.resolved_level = 'township'"),
        "resolved_county": b(f"{resolved} AND {c}.resolved_level = 'county'"),
        "resolved_above": b(f"{resolved} AND {c}.resolved_level = 'above'"),
        "open": b(open_),
        "overdue_pending": b(f"{open_} AND {c}.due_at IS NOT NULL AND {c}.concluded_at IS NULL"),
    }


FACTS = tuple(_facts("x"))


def _needs_repeat(c: str) -> str:
    """Whether the case's first_once depends on its repeats (else ``repeated`` stays NULL)."""
    return f"{c}.is_first AND {c}.status IN ('closed','resolved') AND {c}.resolved_at < 'infinity'"


def _keyed(c: str) -> str:
    return (
        f"{c}.county_code, {c}.township_code, {c}.village_code, {c}.grid_code, "
        f"(date_trunc('month', {c}.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month"
    )


_AHEAD = (
    "CASE WHEN greatest(x.reported_at, x.concluded_at, x.resolved_at) > clock_timestamp() "
    "THEN greatest(x.reported_at, x.concluded_at, x.resolved_at) END"
)

_UPSERT = (
    f"INSERT INTO case_tallies ({', '.join(KEY)}, {', '.join(FACTS)}, ahead_at)\n"
    "SELECT * FROM summed ORDER BY " + ", ".join(KEY) + "\n"
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET\n  "
    + ",\n  ".join(f"{f} = case_tallies.{f} + EXCLUDED.{f}" for f in FACTS)
    + ",\n  ahead_at = greatest(case_tallies.ahead_at, EXCLUDED.ahead_at)"
)


def _unsigned_sums() -> str:
    """The facts of rows that are all added (sign +1): count(*) FILTER where it is a 0/1 fact."""
    out = []
    for name, sql in _facts("x").items():
        if COND_MARK in sql:
            out.append(f"count(*) FILTER (WHERE {sql.split(COND_MARK)[1]})::integer AS {name}")
        else:
            out.append(f"sum({sql})::integer AS {name}")
    return ",\n    ".join(out)


def _summed(rows_sql: str) -> str:
    """``summed``: the rows' signed facts (column ``sign``) per key, zero groups left out."""
    facts = {name: sql.split(COND_MARK)[0] for name, sql in _facts("x").items()}
    sums = ",\n    ".join(
        f"sum(x.sign * ({sql}))::integer AS {name}" for name, sql in facts.items()
    )
    nonzero = " OR ".join(f"sum(x.sign * ({sql})) <> 0" for sql in facts.values())
    return f"""summed AS (
  SELECT {", ".join(f"k.{k}" for k in KEY)},
    {sums},
    max(CASE WHEN x.sign > 0 THEN {_AHEAD} END) AS ahead_at
  FROM ({rows_sql}) x
  CROSS JOIN LATERAL (SELECT {_keyed("x")}) k
  GROUP BY {", ".join(f"k.{k}" for k in KEY)}
  HAVING {nonzero} OR max(CASE WHEN x.sign > 0 THEN {_AHEAD} END) IS NOT NULL
)"""


def _trigger_function(name: str, old: str, new: str) -> str:
    """A trigger function over transition tables ``old`` and ``new`` (SQL sources)."""
    need_o, need_n, need_c = _needs_repeat("o"), _needs_repeat("n"), _needs_repeat("c")
    # Whether a repeat pointed at a case before the statement: one of the old rows did,
    # or a row the statement did not write (its repeat link is unchanged) does.
    before_repeat = (
        "({c}.id IN (SELECT repeat_of_id FROM o WHERE repeat_of_id IS NOT NULL) OR EXISTS ("
        "SELECT 1 FROM cases r WHERE r.repeat_of_id = {c}.id AND r.repeat_of_id IS NOT NULL"
        " AND r.reported_at < 'infinity' AND r.id NOT IN (SELECT id FROM n)))"
    )
    after_repeat = (
        "EXISTS (SELECT 1 FROM cases r WHERE r.repeat_of_id = {c}.id"
        " AND r.repeat_of_id IS NOT NULL AND r.reported_at < 'infinity')"
    )
    rows = f"""
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
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    emptied tid[];
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
    {_summed(rows)},
    up AS ({_UPSERT}
        RETURNING ctid, cases)
    SELECT array_agg(ctid) INTO emptied FROM up WHERE cases = 0;
    IF emptied IS NOT NULL THEN
        -- Rows left with no case (this transaction holds their locks since the upsert).
        DELETE FROM case_tallies WHERE ctid = ANY (emptied) AND cases = 0;
    END IF;
    RETURN NULL;
END
$fn$
"""


_NONE = "SELECT * FROM cases WHERE false"


def _add_cases() -> str:
    """``case_tallies_add_cases(ids)``: add the cases of table ``ids`` (column ``id``), not yet tallied.

    For a bulk load (its table of new ids) or a rebuild (``cases`` itself): one
    ``GROUP BY`` planned with the table's real size, the repeats looked up in one hash
    of all repeat links. Then a case outside ``ids`` that a loaded repeat points at is
    re-counted as the insert trigger would.
    """
    columns = ", ".join(f"c.{col}" for col in READ)
    # Grouped by grid and month alone (a grid's cases all carry its village, township
    # and county codes), by hashing (the function turns sorting off): a million rows
    # into ~40,000 groups in about 4 s where sorting them on five keys first took 10 s;
    # only the groups are sorted, for the upsert's lock order.
    added = (
        f"""
    INSERT INTO case_tallies ({", ".join(KEY)}, {", ".join(FACTS)}, ahead_at)
    SELECT * FROM (
    SELECT min(x.county_code), min(x.township_code), min(x.village_code), x.grid_code, k.month,
        {_unsigned_sums()},
        max({_AHEAD}) AS ahead_at
    FROM (
        SELECT {columns},
            CASE WHEN {_needs_repeat("c")} THEN c.id IN (
                SELECT repeat_of_id FROM cases WHERE repeat_of_id IS NOT NULL
                AND reported_at < 'infinity') END AS repeated
        FROM cases c %s
    ) x
    CROSS JOIN LATERAL (SELECT {_keyed("x")}) k
    GROUP BY x.grid_code, k.month
    ) g
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({", ".join(KEY)}) DO UPDATE SET
    """
        + ",\n    ".join(f"{f} = case_tallies.{f} + EXCLUDED.{f}" for f in FACTS)
        + """,
        ahead_at = greatest(case_tallies.ahead_at, EXCLUDED.ahead_at)
    """
    )
    repeated = (
        "{c}.id IN (SELECT repeat_of_id FROM cases WHERE repeat_of_id IS NOT NULL"
        " AND reported_at < 'infinity'{extra})"
    )
    rows = f"""
    SELECT c.*, CASE WHEN {_needs_repeat("c")}
                THEN {repeated.format(c="c", extra=" AND id NOT IN (SELECT id FROM loaded)")} END AS repeated,
           -1 AS sign
    FROM cases c WHERE c.id IN (SELECT id FROM touched)
    UNION ALL
    SELECT c.*, CASE WHEN {_needs_repeat("c")} THEN {repeated.format(c="c", extra="")} END, 1
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
CREATE FUNCTION case_tallies_add_cases(ids regclass) RETURNS void LANGUAGE plpgsql
-- Hash the cases into their groups: the planner prices the hash table for one group per
-- case and would sort a million wide rows instead (the groups are sorted afterwards).
SET enable_sort = off
AS $fn$
BEGIN
    IF ids = 'cases'::regclass THEN
        EXECUTE format('{added.replace("'", "''")}', '');
        RETURN;  -- every case: no repeat points outside
    END IF;
    EXECUTE format('{added.replace("'", "''")}', format('WHERE c.id IN (SELECT id FROM %s)', ids));
    EXECUTE format('{recount.replace("'", "''")}', ids);
END
$fn$
"""


def upgrade() -> None:
    fact_columns = [
        sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in FACTS
    ]
    op.create_table(
        "case_tallies",
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("grid_code", sa.String(20), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        *fact_columns,
        sa.Column("ahead_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint(*KEY, name="pk_case_tallies"),
    )
    op.create_index(
        "ix_case_tallies_ahead_at",
        "case_tallies",
        ["ahead_at"],
        postgresql_where="ahead_at IS NOT NULL",
    )
    op.create_index(
        "ix_cases_due_unconcluded",
        "cases",
        ["due_at"],
        postgresql_include=[
            "reported_at",
            "status",
            "resolved_at",
            "county_code",
            "township_code",
            "village_code",
            "grid_code",
        ],
        postgresql_where="concluded_at IS NULL AND due_at IS NOT NULL",
    )
    op.execute(_trigger_function("case_tallies_after_insert", _NONE, "SELECT * FROM new_rows"))
    op.execute(
        _trigger_function(
            "case_tallies_after_update", "SELECT * FROM old_rows", "SELECT * FROM new_rows"
        )
    )
    op.execute(_trigger_function("case_tallies_after_delete", "SELECT * FROM old_rows", _NONE))
    op.execute(_add_cases())
    op.execute(
        """
        CREATE FUNCTION case_tallies_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            DELETE FROM case_tallies;
            RETURN NULL;
        END
        $fn$;
        CREATE TRIGGER case_tallies_insert AFTER INSERT ON cases
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION case_tallies_after_insert();
        CREATE TRIGGER case_tallies_update AFTER UPDATE ON cases
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION case_tallies_after_update();
        CREATE TRIGGER case_tallies_delete AFTER DELETE ON cases
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION case_tallies_after_delete();
        CREATE TRIGGER case_tallies_truncate AFTER TRUNCATE ON cases
            FOR EACH STATEMENT EXECUTE FUNCTION case_tallies_after_truncate();
        """
    )
    # The cases already stored, in one statement.
    op.execute("SELECT case_tallies_add_cases('cases')")


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER case_tallies_truncate ON cases;
        DROP TRIGGER case_tallies_delete ON cases;
        DROP TRIGGER case_tallies_update ON cases;
        DROP TRIGGER case_tallies_insert ON cases;
        DROP FUNCTION case_tallies_after_truncate();
        DROP FUNCTION case_tallies_add_cases(regclass);
        DROP FUNCTION case_tallies_after_delete();
        DROP FUNCTION case_tallies_after_update();
        DROP FUNCTION case_tallies_after_insert();
        """
    )
    op.drop_index("ix_cases_due_unconcluded", table_name="cases")
    op.drop_index("ix_case_tallies_ahead_at", table_name="case_tallies")
    op.drop_table("case_tallies")
