"""The case tallies (``stats.models``) as the figures define them, to check, rebuild or correct.

The triggers of migrations t01 and x01 keep ``case_tallies`` (per grid and month) and
``case_category_tallies`` (per village, category and month) equal to
:func:`fresh_sql`: a ``GROUP BY`` over ``cases`` of each tally column's per-case fact,
taken here from the figures' own SQL (``stats.figures``) with the as-of instant at
+infinity. So a change to a figure that the frozen trigger does not follow shows as a
difference (tests and ``flask stats tallies``); ``rebuild`` recomputes both tables in
one statement. The same SQL over a few cases (:func:`facts_sql`) is what
``stats.queries`` subtracts from the tallies for a scope that hides them. The same
holds for the heat tally (``stats.models.HeatTally``, migrations w01 and m01) and
:func:`heat_fresh_sql`. A bulk load and :func:`rebuild` add cases to all three tables
with ``case_tallies_add_cases`` (m01), one pass over the cases.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.stats import figures as F
from webapp.stats.models import FACT_COLUMNS, HEAT_COARSE, HEAT_PER_DEGREE_X, HEAT_PER_DEGREE_Y

KEY = ("county_code", "township_code", "village_code", "grid_code", "month")
CATEGORY_KEY = ("county_code", "month", "category_id", "township_code", "village_code")
# Each tally table and its key.
TABLES = {"case_tallies": KEY, "case_category_tallies": CATEGORY_KEY}
# Every table ``case_tallies_add_cases`` fills (a load ANALYZEs them after filling them).
ALL_TABLES = (*TABLES, "heat_tallies")
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


def facts_sql(where: str = "true", key: tuple[str, ...] = KEY, sign: int = 1) -> str:
    """SELECT the tallies (``key``, then :data:`FACT_COLUMNS` times ``sign``) of the cases ``where``.

    ``where`` is SQL over ``cases c``; the facts are those the triggers sum.
    """
    conds = {
        k: v.replace(":as_of", INFINITY)
        for k, v in F.condition_sql().items()
        if k not in ("in_period", "in_last_year", "overdue", "backlog")
        and k not in ("beijing_abnormal", "province_collective", "extreme_incident")
    }
    facts = fact_sql()
    cond_cols = ",\n".join(f"    {sql} AS {key}" for key, sql in conds.items())
    factor = "" if sign == 1 else f"{sign} * "
    return f"""
SELECT {", ".join(key)},
  {", ".join(f"({factor}{facts[c]})::integer AS {c}" for c in FACT_COLUMNS)}
FROM (
  SELECT c.county_code, c.township_code, c.village_code, c.grid_code, c.category_id,
    (date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS month,
    true AS in_period, c.people_count, c.batch_count, c.channel, c.satisfaction,
    c.resolved_level, c.is_first, c.skip_level, c.status, c.due_at, c.concluded_at,
{cond_cols}
  FROM cases c
  WHERE {where}
) base
GROUP BY {", ".join(key)}
"""


def fresh_sql(key: tuple[str, ...] = KEY) -> str:
    """SELECT the tallies ``cases`` gives now per ``key`` (the key columns, then :data:`FACT_COLUMNS`)."""
    return facts_sql("true", key)


HEAT_KEY = (
    "scale",
    "county_code",
    "township_code",
    "month",
    "village_code",
    "grid_code",
    "cx",
    "cy",
)
HEAT_COLUMNS = (*HEAT_KEY, "cases", "people")


def heat_fresh_sql() -> str:
    """SELECT the heat tallies ``cases`` gives now (the columns of :data:`HEAT_COLUMNS`).

    Coarse cells (:data:`HEAT_COARSE` fine cells a side) keyed by county and township.
    """
    month = "(date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date"
    cells = (
        f"heat_cell(ST_X(c.location), {HEAT_PER_DEGREE_X}, {HEAT_COARSE}) AS cx, "
        f"heat_cell(ST_Y(c.location), {HEAT_PER_DEGREE_Y}, {HEAT_COARSE}) AS cy"
    )
    sums = "count(*)::integer AS cases, sum(c.people_count)::integer AS people"
    return f"""
SELECT {HEAT_COARSE}::smallint AS scale, county_code, township_code, month,
  '' AS village_code, '' AS grid_code, cx, cy, {sums}
FROM (SELECT c.*, {month} AS month, {cells} FROM cases c) c
GROUP BY county_code, township_code, month, cx, cy
"""


def differences(session: Session, limit: int = 20) -> list[dict]:
    """Rows where a tally table and :func:`fresh_sql` disagree (``tally``: the table; ``side``: where the row is)."""
    out: list[dict] = []
    for table, key in TABLES.items():
        columns = ", ".join((*key, *FACT_COLUMNS))
        rows = session.execute(
            text(
                f"""
                (SELECT 'stored' AS side, {columns} FROM {table}
                 EXCEPT SELECT 'stored', {columns} FROM ({fresh_sql(key)}) f)
                UNION ALL
                (SELECT 'fresh', {columns} FROM ({fresh_sql(key)}) f
                 EXCEPT SELECT 'fresh', {columns} FROM {table})
                ORDER BY 2, 3, 4, 5, 6, 1
                LIMIT :limit
                """
            ),
            {"limit": limit},
        ).mappings()
        out.extend({"tally": table, **r} for r in rows)
    heat = ", ".join(HEAT_COLUMNS)
    rows = session.execute(
        text(
            f"""
            (SELECT 'stored' AS side, {heat} FROM heat_tallies
             EXCEPT SELECT 'stored', {heat} FROM ({heat_fresh_sql()}) f)
            UNION ALL
            (SELECT 'fresh', {heat} FROM ({heat_fresh_sql()}) f
             EXCEPT SELECT 'fresh', {heat} FROM heat_tallies)
            ORDER BY 2, 3, 4, 5, 6, 7, 8, 9, 1
            LIMIT :limit
            """
        ),
        {"limit": limit},
    ).mappings()
    out.extend({"tally": "heat_tallies", **r} for r in rows)
    return out[: 2 * limit]


def rebuild(session: Session) -> tuple[int, int]:
    """Recompute every tally, the heat tally too, from the cases (in the caller's transaction).

    ``case_tallies_add_cases``, the function a bulk load calls, fills the three tables
    (into the emptied tallies: both case tallies from one hash of the cases, then the heat
    tally, k02).
    Returns the rows of ``case_tallies`` (per grid) and of ``heat_tallies``.
    """
    session.execute(text("LOCK TABLE cases IN SHARE MODE"))
    for table in ALL_TABLES:
        session.execute(text(f"DELETE FROM {table}"))
    session.execute(text("SELECT case_tallies_add_cases('cases')"))
    session.flush()
    return (
        session.execute(text("SELECT count(*) FROM case_tallies")).scalar_one(),
        session.execute(text("SELECT count(*) FROM heat_tallies")).scalar_one(),
    )
