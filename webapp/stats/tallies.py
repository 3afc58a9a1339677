"""The case tallies (``stats.models.CaseTally``) as the figures define them, to check or rebuild.

The triggers of migration t01 keep ``case_tallies`` equal to :func:`fresh_sql`: a
``GROUP BY`` over ``cases`` of each tally column's per-case fact, taken here from the
figures' own SQL (``stats.figures``) with the as-of instant at +infinity. So a change
to a figure that the frozen trigger does not follow shows as a difference (tests and
``flask stats tallies --check``); ``rebuild`` recomputes the table in one statement.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.stats import figures as F
from webapp.stats.models import FACT_COLUMNS

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


def differences(session: Session, limit: int = 20) -> list[dict]:
    """Rows where ``case_tallies`` and :func:`fresh_sql` disagree (``side``: where the row is)."""
    columns = ", ".join((*KEY, *FACT_COLUMNS))
    rows = session.execute(
        text(
            f"""
            (SELECT 'stored' AS side, {columns} FROM case_tallies
             EXCEPT SELECT 'stored', {columns} FROM ({fresh_sql()}) f)
            UNION ALL
            (SELECT 'fresh', {columns} FROM ({fresh_sql()}) f
             EXCEPT SELECT 'fresh', {columns} FROM case_tallies)
            ORDER BY 2, 3, 4, 5, 6, 1
            LIMIT :limit
            """
        ),
        {"limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def rebuild(session: Session) -> int:
    """Recompute every tally from the cases (in the caller's transaction); return the rows."""
    session.execute(text("LOCK TABLE cases IN SHARE MODE"))
    session.execute(text("DELETE FROM case_tallies"))
    session.execute(text("SELECT case_tallies_add_cases('cases')"))
    session.flush()
    return session.execute(text("SELECT count(*) FROM case_tallies")).scalar_one()
