"""The case tallies (``stats.models.CaseTally``) as the figures define them, to check or rebuild.

The triggers of migration t01 keep ``case_tallies`` equal to :func:`fresh_sql`: a
``GROUP BY`` over ``cases`` of each tally column's per-case fact, taken here from the
figures' own SQL (``stats.figures``) with the as-of instant at +infinity. So a change
to a figure that the frozen trigger does not follow shows as a difference (tests and
``flask stats tallies``); ``rebuild`` recomputes the table in one statement. The same
holds for the heat tally (``stats.models.HeatTally``, migration w01) and
:func:`heat_fresh_sql`.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.stats import figures as F
from webapp.stats.models import FACT_COLUMNS, HEAT_COARSE, HEAT_PER_DEGREE_X, HEAT_PER_DEGREE_Y

KEY = ("county_code", "township_code", "village_code", "grid_code", "month")
INFINITY = "CAST('infinity' AS timestamptz)"


def fact_sql() -> dict[str, str]:
    """Each tally column as an aggregate over ``base`` (cases with conditions at +infinity)."""
    counts = {f.key: f.sql for f in F.COUNTS}
    out = {
        # The period figures, counted over the cases of one month (in_period is true).
        "cases": counts["cases"],
        "people": counts["people"],
        "visit_batches": counts["visit_batches"],
        "visit_persons": counts["visit_persons"],
        "resolved": counts["resolved"],
        "followups": counts["followups"],
        "satisfied": counts["satisfied"],
        "on_time": counts["on_time"],
        "first": counts["first"],
        "first_once": counts["first_resolved_once"],
        "repeats": counts["repeats"],
        "collective": counts["collective"],
        "skip_level": counts["skip_level"],
        "resolved_leveled": counts["resolved_leveled"],
        "resolved_village": counts["resolved_village"],
        "resolved_township": counts["resolved_township"],
        "resolved_county": counts["resolved_county"],
        "resolved_above": counts["resolved_above"],
        "open": counts["open"],
        # "due" split by whether the case is concluded: the concluded part does not
        # depend on as_of, the rest does through its deadline (stats.queries).
        "due_concluded": "count(*) FILTER (WHERE status <> 'not_accepted'"
        " AND due_at IS NOT NULL AND concluded_at IS NOT NULL)",
        "due_pending": "count(*) FILTER (WHERE status <> 'not_accepted'"
        " AND due_at IS NOT NULL AND concluded_at IS NULL)",
        # "overdue" before its deadline test: open, unconcluded, with a deadline.
        "overdue_pending": "count(*) FILTER (WHERE open AND due_at IS NOT NULL"
        " AND concluded_at IS NULL)",
    }
    if set(out) != set(FACT_COLUMNS):  # pragma: no cover - the model and this list go together
        raise RuntimeError("the tally columns and their facts differ")
    return out


def fresh_sql() -> str:
    """SELECT the tallies ``cases`` gives now (the key columns, then :data:`FACT_COLUMNS`)."""
    conds = {
        k: v.replace(":as_of", INFINITY)
        for k, v in F.condition_sql().items()
        if k not in ("in_period", "in_last_year", "overdue", "backlog")
        and k not in ("beijing_abnormal", "province_collective", "extreme_incident")
    }
    facts = fact_sql()
    cond_cols = ",\n".join(f"    {sql} AS {key}" for key, sql in conds.items())
    return f"""
SELECT {", ".join(KEY)},
  {", ".join(f"({facts[c]})::integer AS {c}" for c in FACT_COLUMNS)}
FROM (
  SELECT c.county_code, c.township_code, c.village_code, c.grid_code,
    (date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month,
    true AS in_period, c.people_count, c.batch_count, c.channel, c.satisfaction,
    c.resolved_level, c.is_first, c.skip_level, c.status, c.due_at, c.concluded_at,
{cond_cols}
  FROM cases c
) base
GROUP BY {", ".join(KEY)}
"""


HEAT_KEY = ("scale", "county_code", "township_code", "month", "village_code", "grid_code", "cx", "cy")
HEAT_COLUMNS = (*HEAT_KEY, "cases", "people")


def heat_fresh_sql() -> str:
    """SELECT the heat tallies ``cases`` gives now (the columns of :data:`HEAT_COLUMNS`).

    Fine cells keep the four area codes; coarse cells (:data:`HEAT_COARSE` fine cells a
    side) only the county's.
    """
    month = "(date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date"

    def cells(scale: int) -> str:
        return (
            f"heat_cell(ST_X(c.location), {HEAT_PER_DEGREE_X}, {scale}) AS cx, "
            f"heat_cell(ST_Y(c.location), {HEAT_PER_DEGREE_Y}, {scale}) AS cy"
        )

    sums = "count(*)::integer AS cases, sum(c.people_count)::integer AS people"
    return f"""
SELECT 1::smallint AS scale, county_code, township_code, month, village_code, grid_code,
  cx, cy, {sums}
FROM (SELECT c.*, {month} AS month, {cells(1)} FROM cases c) c
GROUP BY county_code, township_code, month, village_code, grid_code, cx, cy
UNION ALL
SELECT {HEAT_COARSE}::smallint, county_code, '', month, '', '', cx, cy, {sums}
FROM (SELECT c.*, {month} AS month, {cells(HEAT_COARSE)} FROM cases c) c
GROUP BY county_code, month, cx, cy
"""


def _differences(session: Session, table: str, columns: tuple[str, ...], fresh: str, limit: int) -> list[dict]:
    cols = ", ".join(columns)
    order = ", ".join(str(i) for i in range(3, 3 + len(columns)))
    rows = session.execute(
        text(
            f"""
            (SELECT :table AS "table", 'stored' AS side, {cols} FROM {table}
             EXCEPT SELECT :table, 'stored', {cols} FROM ({fresh}) f)
            UNION ALL
            (SELECT :table, 'fresh', {cols} FROM ({fresh}) f
             EXCEPT SELECT :table, 'fresh', {cols} FROM {table})
            ORDER BY {order}, 2
            LIMIT :limit
            """
        ),
        {"limit": limit, "table": table},
    ).mappings()
    return [dict(r) for r in rows]


def differences(session: Session, limit: int = 20) -> list[dict]:
    """Rows where a stored tally and the cases disagree.

    ``case_tallies`` against :func:`fresh_sql`, then ``heat_tallies`` against
    :func:`heat_fresh_sql` (at most ``limit`` rows of each); ``table`` names the
    tally, ``side`` where the row is.
    """
    return _differences(
        session, "case_tallies", (*KEY, *FACT_COLUMNS), fresh_sql(), limit
    ) + _differences(session, "heat_tallies", HEAT_COLUMNS, heat_fresh_sql(), limit)


def rebuild(session: Session) -> tuple[int, int]:
    """Recompute every case tally and heat tally from the cases (in the caller's transaction).

    Returns the rows of ``case_tallies`` and of ``heat_tallies``.
    """
    session.execute(text("LOCK TABLE cases IN SHARE MODE"))
    session.execute(text("DELETE FROM case_tallies"))
    session.execute(text("SELECT case_tallies_add_cases('cases')"))
    session.execute(text("DELETE FROM heat_tallies"))
    session.execute(text("SELECT heat_tallies_add_cases('cases')"))
    session.flush()
    return (
        session.execute(text("SELECT count(*) FROM case_tallies")).scalar_one(),
        session.execute(text("SELECT count(*) FROM heat_tallies")).scalar_one(),
    )
