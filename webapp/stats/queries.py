"""The figures of ``stats.figures`` computed in SQL for rows of areas, categories, channels, months.

One statement computes every figure for every row: the cases of the area (in the
user's scope, matching the filters) are read once, each case's conditions are
evaluated once, and the counts are aggregates over them. Rows with no case are listed
with zeros (every area of the level, every category ...), so a ranking has every
member and the townships add up to the county.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.cases.models import OPEN_SQL
from webapp.cases.vocab import CHANNEL_LABELS, Channel
from webapp.grid.models import Area, AreaLevel
from webapp.grid.queries import CASE_CODE_COLUMN
from webapp.stats import figures as F
from webapp.stats import tallies

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# Statuses of cases that are not open whatever the as-of instant (resolved ones may be:
# see RELEVANT_SQL). The partial index ix_cases_open holds the other cases.
OPEN_EXCLUDED_SQL = OPEN_SQL
# The area levels whose rows carry village counts and the 三无 flag.
VILLAGE_FIGURE_LEVELS = (AreaLevel.COUNTY, AreaLevel.TOWNSHIP, AreaLevel.VILLAGE)
CODE_LENGTH = {AreaLevel.COUNTY: 6, AreaLevel.TOWNSHIP: 9, AreaLevel.VILLAGE: 12}
# The events of 三无, counted per village for 三无村.
ESCALATIONS = ("beijing_abnormal", "province_collective", "extreme_incidents")


def local_midnight(d: date) -> datetime:
    """The instant a local (Beijing) calendar day starts."""
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ)


def year_before(d: date) -> date:
    """The same day a year before (29 February becomes 1 March)."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return date(d.year - 1, 3, 1)


@dataclass(frozen=True)
class Period:
    """Local calendar days ``start`` to ``end``, both included; states read at ``as_of``."""

    start: date
    end: date
    as_of: datetime | None = None

    def params(self) -> dict:
        as_of = self.as_of or datetime.now(UTC)
        return {
            "p_from": local_midnight(self.start),
            "p_to": local_midnight(self.end + timedelta(days=1)),
            "ly_from": local_midnight(year_before(self.start)),
            "ly_to": local_midnight(year_before(self.end + timedelta(days=1))),
            "as_of": as_of,
        }

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def to_dict(self) -> dict:
        p = self.params()
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "as_of": p["as_of"].isoformat(),
        }


@dataclass(frozen=True)
class Filters:
    """Which cases count besides area, period and scope: categories and channels (any of).

    ``statuses`` (any of) is the maps' filter by current status; the statistics pages
    and API do not offer it.
    """

    category_ids: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def sql(self, alias: str = "c") -> tuple[str, dict]:
        parts, params = [], {}
        if self.category_ids:
            parts.append(f"{alias}.category_id = ANY(:f_categories)")
            params["f_categories"] = list(self.category_ids)
        if self.channels:
            parts.append(f"{alias}.channel = ANY(:f_channels)")
            params["f_channels"] = list(self.channels)
        if self.statuses:
            parts.append(f"{alias}.status = ANY(:f_statuses)")
            params["f_statuses"] = list(self.statuses)
        return " AND ".join(parts) or "true", params


@dataclass(frozen=True)
class Grouping:
    """What a row is: the areas of ``level`` within the area, or categories, channels, months."""

    by: str = "area"  # area | category | channel | month
    level: AreaLevel | None = None

    def figures(self, area_level: AreaLevel | None = None) -> tuple[F.Figure, ...]:
        """The figures that mean something for rows of this grouping."""
        if self.by == "month":
            return tuple(
                f for f in F.FIGURES if f.trend and f.basis == "period" and not f.area_only
            )
        if self.by != "area":
            return tuple(f for f in F.FIGURES if not f.area_only)
        return F.FIGURES


@dataclass
class StatsQuery:
    """Everything that decides a table of figures."""

    area: Area
    period: Period
    grouping: Grouping = field(default_factory=Grouping)
    filters: Filters = field(default_factory=Filters)
    scope: tuple[str, dict] = ("true", {})
    backlog_years: int = F.DEFAULT_BACKLOG_YEARS
    # Only these figures (and what they are computed from); empty: every figure.
    only: tuple[str, ...] = ()

    def figures(self) -> tuple[F.Figure, ...]:
        """The figures of the rows: those of the grouping, narrowed to ``only``."""
        figures = self.grouping.figures(AreaLevel(self.area.level))
        if not self.only:
            return figures
        wanted = F.with_inputs(self.only)
        return tuple(f for f in figures if f.key in wanted)


def _members(q: StatsQuery) -> tuple[str, str, dict]:
    """(SQL of the rows' members, SQL of a case's row key, parameters)."""
    g = q.grouping
    if g.by == "area":
        level = g.level or AreaLevel(q.area.level)
        return (
            "SELECT a.code AS k, a.code, a.name, a.population, a.code AS ord "
            "FROM areas a WHERE a.level = :m_level AND a.code LIKE :m_prefix",
            f"c.{CASE_CODE_COLUMN[level]}",
            {"m_level": level.value, "m_prefix": q.area.code + "%"},
        )
    if g.by == "category":
        cond = "cat.id = ANY(:f_categories)" if q.filters.category_ids else "true"
        return (
            "SELECT cat.id::text AS k, cat.code, cat.name, NULL::integer AS population, "
            f"lpad(cat.sort_order::text, 8, '0') || lpad(cat.id::text, 8, '0') AS ord "
            f"FROM categories cat WHERE {cond}",
            "c.category_id::text",
            {},
        )
    if g.by == "channel":
        chosen = [ch for ch in Channel if not q.filters.channels or ch.value in q.filters.channels]
        values = ", ".join(f"(:ch_{i}, :chl_{i}, {i})" for i in range(len(chosen)))
        params = {f"ch_{i}": ch.value for i, ch in enumerate(chosen)}
        params.update({f"chl_{i}": CHANNEL_LABELS[ch] for i, ch in enumerate(chosen)})
        return (
            "SELECT v.k, v.k AS code, v.name, NULL::integer AS population, "
            "lpad(v.o::text, 4, '0') AS ord "
            f"FROM (VALUES {values}) AS v(k, name, o)",
            "c.channel",
            params,
        )
    if g.by == "month":
        return (
            "SELECT to_char(m, 'YYYY-MM') AS k, to_char(m, 'YYYY-MM') AS code, "
            'to_char(m, \'YYYY"年"FMMM"月"\') AS name, NULL::integer AS population, '
            "to_char(m, 'YYYY-MM') AS ord "
            "FROM generate_series("
            "date_trunc('month', CAST(:p_from AS timestamptz) AT TIME ZONE 'Asia/Shanghai'), "
            "CAST(:p_to AS timestamptz) AT TIME ZONE 'Asia/Shanghai' - interval '1 microsecond', "
            "interval '1 month') AS m",
            "to_char(c.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')",
            {},
        )
    raise ValueError(f"unknown grouping {g.by!r}")


# A superset of the cases any figure counts, as a disjunction of index-friendly arms.
# ``open`` (stats.figures) is "not not_accepted and not resolved before as_of": either
# a status that is neither final nor resolved, or resolved at or after as_of.
RELEVANT_SQL = f"""
    (c.reported_at >= :p_from AND c.reported_at < :p_to)
    OR (c.reported_at >= :ly_from AND c.reported_at < :ly_to)
    OR c.status NOT IN {OPEN_EXCLUDED_SQL}
    OR (c.status IN {F.RESOLVED_SQL} AND c.resolved_at >= :as_of)
    OR (c.beijing_abnormal_at >= :p_from AND c.beijing_abnormal_at < :p_to)
    OR (c.province_collective_at >= :p_from AND c.province_collective_at < :p_to)
    OR (c.extreme_incident_at >= :p_from AND c.extreme_incident_at < :p_to)
"""


def build_sql(q: StatsQuery) -> tuple[str, dict]:
    """The one statement that computes the figures of ``q``, and its parameters."""
    area_level = AreaLevel(q.area.level)
    figures = q.figures()
    keys = {f.key for f in figures}
    conds = F.condition_sql()
    if q.only:  # evaluate only the conditions the chosen counts read
        read = [f.sql for f in figures if f.is_count]
        if any(f.kind == "village_count" for f in figures):
            read += [F.BY_KEY[k].sql for k in ("cases", *ESCALATIONS)]
        used = set().union(*(F.identifiers(sql) for sql in read))
        conds = {k: v for k, v in conds.items() if k in used}
    members_sql, key_sql, params = _members(q)
    scope_sql, scope_params = q.scope
    filter_sql, filter_params = q.filters.sql("c")
    params.update(scope_params)
    params.update(filter_params)
    params.update(q.period.params())
    params.update({"area": q.area.code, "backlog_years": int(q.backlog_years)})

    if q.grouping.by == "month":
        relevant = "AND c.reported_at >= :p_from AND c.reported_at < :p_to"
    else:
        # Only the cases some figure counts (the others would add zeros): raised in the
        # period or the same period a year before, open at the as-of instant, or with
        # an escalation in the period. Exact, and each arm can use an index.
        relevant = f"AND ({RELEVANT_SQL})"
    cond_cols = ",\n".join(f"    {sql} AS {key}" for key, sql in conds.items())
    counts = [f for f in F.COUNTS if f.key in keys]

    row_level = q.grouping.level or area_level
    with_villages = q.grouping.by == "area" and row_level in VILLAGE_FIGURE_LEVELS
    village_figs = [f for f in F.VILLAGE_COUNTS if f.key in keys]
    escalations = " + ".join(f"agg_v.{k}" for k in ESCALATIONS)
    if with_villages and village_figs:
        # The cases are aggregated once per row and village (``agg_v``, a few hundred
        # rows): the rows' counts are its sums (every count is additive) and the village
        # counts read it too. Materialising the cases themselves for two aggregates cost
        # a third of the time at a million cases (a year: 700,000 wide rows).
        params["v_len"] = CODE_LENGTH[row_level]
        inner = counts + [F.BY_KEY[k] for k in ("cases", *ESCALATIONS) if k not in keys]
        inner_cols = ",\n".join(f"    {f.sql} AS {f.key}" for f in inner)
        village_cols = ",\n".join(f"    {f.sql} AS {f.key}" for f in village_figs)
        sum_cols = ",\n".join(f"    sum({f.key})::bigint AS {f.key}" for f in counts)
        aggregates = f"""agg_v AS (
  SELECT k, village_code,
{inner_cols}
  FROM base GROUP BY k, village_code
),
agg AS (
  SELECT k{"," if counts else ""}
{sum_cols}
  FROM agg_v GROUP BY k
),
vil AS (
  SELECT left(v.code, :v_len) AS k,
{village_cols}
  FROM (
    SELECT a.code, coalesce(x.v_cases, 0) AS v_cases, coalesce(x.v_escalations, 0) AS v_escalations
    FROM areas a
    LEFT JOIN (
      SELECT village_code, sum(agg_v.cases) AS v_cases, sum({escalations}) AS v_escalations
      FROM agg_v GROUP BY village_code
    ) x ON x.village_code = a.code
    WHERE a.level = 'village' AND a.code LIKE :m_prefix
  ) v
  GROUP BY 1
)"""
    else:
        count_cols = ",\n".join(f"    {f.sql} AS {f.key}" for f in counts)
        aggregates = f"""agg AS (
  SELECT k{"," if counts else ""}
{count_cols}
  FROM base GROUP BY k
)"""
    villages = with_villages and bool(village_figs)
    select_counts = [f"coalesce(agg.{f.key}, 0) AS {f.key}" for f in counts]
    for f in village_figs:
        select_counts.append(f"vil.{f.key}" if villages else f"NULL::bigint AS {f.key}")
    outer = _outer(figures, with_villages)
    area_col = CASE_CODE_COLUMN[area_level]
    # ``base`` is read once, by the aggregate, so it is not materialised; OFFSET 0 keeps
    # it a subquery that evaluates each condition once per case (inlined, every FILTER
    # that reads a condition would evaluate it again).
    sql = f"""
WITH base AS (
  SELECT {key_sql} AS k, c.village_code, c.people_count, c.batch_count, c.channel,
    c.satisfaction, c.resolved_level, c.is_first, c.skip_level,
{cond_cols}
  FROM cases c
  WHERE c.{area_col} = :area AND ({scope_sql}) AND ({filter_sql})
    AND c.reported_at < :as_of {relevant}
  OFFSET 0
),
{aggregates},
members AS ({members_sql})
SELECT {", ".join(outer)}
FROM (
  SELECT m.k, m.code, m.name, m.population, m.ord,
    {", ".join(select_counts)}
  FROM members m
  LEFT JOIN agg ON agg.k = m.k
  {"LEFT JOIN vil ON vil.k = m.k" if villages else ""}
) r
ORDER BY r.ord
"""
    return sql, params


# -- the whole months from the case tallies -----------------------------------------------
#
# ``case_tallies`` (stats.models, kept by triggers on ``cases``) holds per grid and
# local month, ``case_category_tallies`` per village, category and local month, the
# sums of each case's facts with the as-of instant taken as +infinity.
# For an as-of instant at or after every stored reported/concluded/resolved time, a
# fact such as ``resolved_at < :as_of`` is the same for every case at as_of and at
# +infinity, so the whole months of the period can be read from the tallies; the
# ragged days at either end, and what depends on as_of through a deadline or the
# backlog cut-off, come from the cases as in :func:`build_sql`.

# The additive period figures and the tally column that holds each of them.
TALLIED = {
    "cases": "cases",
    "people": "people",
    "visit_batches": "visit_batches",
    "visit_persons": "visit_persons",
    "resolved": "resolved",
    "followups": "followups",
    "satisfied": "satisfied",
    "on_time": "on_time",
    "first": "first",
    "first_resolved_once": "first_once",
    "repeats": "repeats",
    "collective": "collective",
    "skip_level": "skip_level",
    "resolved_leveled": "resolved_leveled",
    "resolved_village": "resolved_village",
    "resolved_township": "resolved_township",
    "resolved_county": "resolved_county",
    "resolved_above": "resolved_above",
}
# Counts made of tally columns and corrections from the cases (see build_tally_sql).
COMPOSED = ("cases_last_year", "due", "open", "overdue", "backlog")
# The scopes that are a condition on the area codes alone (auth.permissions.case_scope_sql
# for county staff, administrators, planners and township leaders without a unit):
# the tallies carry the same code columns. Any other scope is per case.
AREA_SCOPE = re.compile(r"true|c\.(county|township|village|grid)_code = :scope_[a-z_]+")
# An area scope that also hides the cases accusing the user's unit (回避): the tallies
# less those cases (few; ix_cases_accused_unit finds them).
UNIT_SCOPE = re.compile(
    r"\((.*) AND \(c\.accused_unit IS NULL OR c\.accused_unit <> :scope_unit\)\)", re.S
)


def area_scope(scope_sql: str) -> tuple[str, bool] | None:
    """(the scope's condition on area codes, whether it hides a unit's cases), or None.

    None: the scope is per case in another way (a reporter's or leader's own cases).
    """
    scope = scope_sql.strip()
    unit = UNIT_SCOPE.fullmatch(scope)
    area = unit.group(1).strip() if unit else scope
    return (area, unit is not None) if AREA_SCOPE.fullmatch(area) else None


def by_category(q: StatsQuery) -> bool:
    """Whether the tallies of ``q`` are those per village and category (``case_category_tallies``)."""
    return bool(q.filters.category_ids) or q.grouping.by == "category"


@dataclass(frozen=True)
class TallyPlan:
    """The whole local months ``[from, to)`` of the period and of the year before."""

    months: tuple[date, date]
    year_before: tuple[date, date]


def _month_start(d: date) -> date:
    return date(d.year, d.month, 1)


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def whole_months(start: date, stop: date) -> tuple[date, date]:
    """The whole local months inside the days ``[start, stop)``, as ``[from, to)`` (maybe empty)."""
    first = start if start.day == 1 else _next_month(start)
    last = _month_start(stop)
    return (first, last) if first < last else (stop, stop)


def month_starts(start: date, stop: date) -> list[date]:
    """The first days of the months ``[start, stop)`` (both first days of a month)."""
    out = []
    while start < stop:
        out.append(start)
        start = _next_month(start)
    return out


def tally_plan(session: Session, q: StatsQuery, now: datetime) -> TallyPlan | None:
    """The months to read from the tallies for ``q``, or None when the cases must be read.

    The tallies answer rows of areas, months or categories, with no channel or status
    filter and an area scope (which may hide a unit's cases: :func:`area_scope`), for
    an as-of instant no earlier than ``now`` and than every stored time written ahead
    of the clock (``case_tallies.ahead_at``), when the period holds at least one whole
    month. A category filter or rows of categories read the tallies per village and
    category, so neither the area, nor the rows, nor the scope may be grids then.
    """
    if q.grouping.by not in ("area", "month", "category"):
        return None
    if q.filters.channels or q.filters.statuses:
        return None
    scope = area_scope(q.scope[0])
    if scope is None:
        return None
    if by_category(q) and (
        AreaLevel(q.area.level) is AreaLevel.GRID
        or (q.grouping.by == "area" and q.grouping.level is AreaLevel.GRID)
        or "grid_code" in scope[0]
    ):
        return None
    as_of = q.period.as_of
    if as_of is None or as_of < now:
        return None
    stop = q.period.end + timedelta(days=1)
    # A period that reaches as_of holds every case of its last month: none is reported
    # at or after as_of, so that month's tally is the period's part of it.
    months = whole_months(
        q.period.start,
        _next_month(_month_start(q.period.end)) if local_midnight(stop) >= as_of else stop,
    )
    if months[0] >= months[1]:
        return None
    ahead = session.execute(text("SELECT max(ahead_at) FROM case_tallies")).scalar()
    if ahead is not None and ahead >= as_of:
        return None
    return TallyPlan(months, whole_months(year_before(q.period.start), year_before(stop)))


def _ragged(lo: str, hi: str, m_lo: str, m_hi: str, empty_lo: bool, empty_hi: bool) -> str:
    """SQL: ``c.reported_at`` in ``[lo, hi)`` but outside the whole months ``[m_lo, m_hi)``."""
    arms = []
    if not empty_lo:
        arms.append(f"(c.reported_at >= {lo} AND c.reported_at < {m_lo})")
    if not empty_hi:
        arms.append(f"(c.reported_at >= {m_hi} AND c.reported_at < {hi})")
    return "(" + (" OR ".join(arms) or "false") + ")"


_EVENT_ARMS = tuple(
    f"(c.{column} >= :p_from AND c.{column} < :p_to)"
    for column in ("beijing_abnormal_at", "province_collective_at", "extreme_incident_at")
)


def build_tally_sql(q: StatsQuery, plan: TallyPlan) -> tuple[str, dict]:
    """The statement of :func:`build_sql` with the whole months read from ``case_tallies``.

    Per row, a period count is the cases' count over the ragged days (``base``) plus
    the tallies' over the whole months (``tal``), except:

    * ``due``: the tallies' concluded cases with a deadline and unconcluded ones, less
      the unconcluded ones of the whole months whose deadline is not past at as_of
      (``ahead``, from the cases through ``ix_cases_due_unconcluded``, or
      ``ix_cases_due_unconcluded_category`` for a category filter);
    * ``open``: the tallies of every month (``stock``); ``overdue``: the tallies' open
      unconcluded cases with a deadline, less those whose deadline is not past;
    * ``backlog``: the tallies' open cases of the months before the cut-off's month,
      plus the open cases of that month reported before the cut-off (``ahead``);
    * the 三无 events: from the cases, as in :func:`build_sql`.
    """
    area_level = AreaLevel(q.area.level)
    figures = q.figures()
    keys = {f.key for f in figures}
    counts = [f for f in F.COUNTS if f.key in keys]
    missing = [
        f.key
        for f in counts
        if f.key not in TALLIED and f.key not in COMPOSED and f.basis != "event"
    ]
    if missing:  # pragma: no cover - a test checks that every count is covered
        raise ValueError(f"no tally for {missing}")
    members_sql, key_sql, params = _members(q)
    scope_sql, scope_params = q.scope
    scope_area, hides_unit = area_scope(scope_sql) or (scope_sql, False)
    filter_sql, filter_params = q.filters.sql("c")
    params.update(scope_params)
    params.update(filter_params)
    params.update(q.period.params())
    (m_from, m_to), (l_from, l_to) = plan.months, plan.year_before
    params.update(
        {
            "area": q.area.code,
            "backlog_years": int(q.backlog_years),
            "m_from": m_from,
            "m_to": m_to,
            "l_from": l_from,
            "l_to": l_to,
            "m_months": month_starts(m_from, m_to),
            "l_months": month_starts(l_from, l_to),
            "pm_from": local_midnight(m_from),
            "pm_to": local_midnight(m_to),
            "lm_from": local_midnight(l_from),
            "lm_to": local_midnight(l_to),
        }
    )
    area_col = CASE_CODE_COLUMN[area_level]
    # The cases (ragged days, events, deadlines, the backlog's cut-off month) ...
    where_area = f"c.{area_col} = :area AND ({scope_sql}) AND ({filter_sql})"
    # ... and the tallies: per village and category for a category filter or rows of
    # categories; for a scope hiding a unit's cases, less those cases' own tallies
    # (``accused``: the same facts, negated, from the few cases accusing the unit).
    key = tallies.CATEGORY_KEY if by_category(q) else tallies.KEY
    table = "case_category_tallies" if by_category(q) else "case_tallies"
    where_tally = f"c.{area_col} = :area AND ({scope_area})"
    if q.filters.category_ids:
        where_tally += " AND c.category_id = ANY(:f_categories)"
    tally_from = f"{table} c"
    if hides_unit:
        columns = ", ".join((*key, *tallies.FACT_COLUMNS))
        tally_from = f"(SELECT {columns} FROM {table} UNION ALL SELECT {columns} FROM accused) c"
    row_key = "to_char(c.month, 'YYYY-MM')" if q.grouping.by == "month" else key_sql
    if by_category(q):
        # The whole months as a list of first days: case_category_tallies' key leads with
        # the county and the month, so ``month = ANY(...)`` and a category filter both
        # position the scan (a range on the month left the categories a filter applied
        # to every entry of the range: 5-7x the work for a month and three categories).
        in_months, in_months_ly = "c.month = ANY(:m_months)", "c.month = ANY(:l_months)"
    else:
        # case_tallies' key ends with the month: a list there would be one scan of the
        # whole area's range per month, a range is one scan.
        in_months = "c.month >= :m_from AND c.month < :m_to"
        in_months_ly = "c.month >= :l_from AND c.month < :l_to"
    stop = q.period.end + timedelta(days=1)

    # -- the cases of the ragged days, and the events: every condition, as build_sql --
    conds = F.condition_sql()
    conds["in_period"] = _ragged(
        ":p_from", ":p_to", ":pm_from", ":pm_to", q.period.start == m_from, stop <= m_to
    )
    conds["in_last_year"] = _ragged(
        ":ly_from",
        ":ly_to",
        ":lm_from",
        ":lm_to",
        year_before(q.period.start) == l_from,
        year_before(stop) <= l_to,
    )
    # Counted from the cases: the events, and the period's (the year before's) figures
    # when the period (the year before) has ragged days.
    ragged = conds["in_period"] != "(false)"
    ragged_ly = conds["in_last_year"] != "(false)"
    period_counts = [f for f in counts if f.basis == "event"]
    if ragged:
        period_counts += [f for f in counts if f.key in TALLIED or f.key == "due"]
    if ragged_ly and "cases_last_year" in keys:
        period_counts.append(F.BY_KEY["cases_last_year"])
    row_level = q.grouping.level or area_level
    with_villages = q.grouping.by == "area" and row_level in VILLAGE_FIGURE_LEVELS
    village_figs = [f for f in F.VILLAGE_COUNTS if f.key in keys]
    with_villages = with_villages and bool(village_figs)
    read = [f.sql for f in period_counts]
    if with_villages:
        read += [F.BY_KEY[k].sql for k in ("cases", *ESCALATIONS)]
    used = set().union(*(F.identifiers(sql) for sql in read))
    conds = {k: v for k, v in conds.items() if k in used}
    arms = [a for a in (conds.get("in_period"), conds.get("in_last_year")) if a and a != "(false)"]
    if with_villages or any(f.basis == "event" for f in counts):
        arms.extend(_EVENT_ARMS)
    cond_cols = "".join(f",\n    {sql} AS {key}" for key, sql in conds.items())
    base_counts = ",\n".join(
        ["    count(*) AS n_cases", *(f"    {f.sql} AS {f.key}" for f in period_counts)]
    )

    # -- what depends on as_of through a deadline or the backlog cut-off ----------------
    # The backlog cut-off as the figures compute it, and its local month (each evaluated
    # once, as an InitPlan, not per row).
    cutoff = "(SELECT CAST(:as_of AS timestamptz) - make_interval(years => :backlog_years))"
    cut_month = f"(SELECT date_trunc('month', {cutoff} AT TIME ZONE 'Asia/Shanghai'))"
    # "open" (stats.figures) is TRUE exactly for these, whatever the as-of instant.
    open_superset = (
        f"(c.status NOT IN {OPEN_EXCLUDED_SQL} "
        f"OR (c.status IN {F.RESOLVED_SQL} AND c.resolved_at >= :as_of))"
    )
    all_conds = F.condition_sql()
    # Unconcluded cases whose deadline is not past at as_of: an index-only scan of
    # ix_cases_due_unconcluded, or ix_cases_due_unconcluded_category for a category filter
    # (both carry every column read here).
    ahead_cols = []
    if "due" in keys:
        ahead_cols.append(
            "count(*) FILTER (WHERE c.reported_at >= :pm_from AND c.reported_at < :pm_to"
            " AND c.status <> 'not_accepted') AS due_ahead"
        )
    if "overdue" in keys:
        ahead_cols.append(f"count(*) FILTER (WHERE {all_conds['open']}) AS overdue_ahead")

    # -- the whole months from the tallies ---------------------------------------------
    tal_cols = [f"sum(c.{TALLIED[f.key]}) AS {f.key}" for f in counts if f.key in TALLIED]
    if "due" in keys:
        tal_cols.append("sum(c.due_concluded + c.due_pending) AS due")
    stock_cols = []
    if "open" in keys:
        stock_cols.append("sum(c.open) AS open")
    if "overdue" in keys:
        stock_cols.append("sum(c.overdue_pending) AS overdue")
    if "backlog" in keys:
        stock_cols.append(
            f"sum(c.open) FILTER (WHERE c.month < CAST({cut_month} AS date)) AS backlog"
        )

    counted = {f.key for f in period_counts}

    def combined(f: F.Figure) -> str:
        raw = f"coalesce(base_agg.{f.key}, 0)" if f.key in counted else "0"
        if f.basis == "event":
            return raw
        if f.key == "due":
            return f"{raw} + coalesce(tal.due, 0) - coalesce(ahead.due_ahead, 0)"
        if f.key == "open":
            return "coalesce(stock.open, 0)"
        if f.key == "overdue":
            return "coalesce(stock.overdue, 0) - coalesce(ahead.overdue_ahead, 0)"
        if f.key == "backlog":
            return "coalesce(stock.backlog, 0) + coalesce(cut.backlog, 0)"
        if f.key == "cases_last_year":
            return f"{raw} + coalesce(tal_ly.cases, 0)"
        return f"{raw} + coalesce(tal.{f.key}, 0)"

    ctes = []
    if hides_unit:
        accused = f"c.accused_unit = :scope_unit AND c.{area_col} = :area AND ({scope_area}) AND ({filter_sql})"
        ctes.append(f"accused AS MATERIALIZED ({tallies.facts_sql(accused, key, sign=-1)})")
    ctes += [
        f"""base AS MATERIALIZED (
  SELECT {key_sql} AS k, c.village_code, c.people_count, c.batch_count, c.channel,
    c.satisfaction, c.resolved_level, c.is_first, c.skip_level{cond_cols}
  FROM cases c
  WHERE {where_area} AND c.reported_at < :as_of AND ({" OR ".join(arms) or "false"})
)""",
        f"""base_agg AS (
  SELECT k,
{base_counts}
  FROM base GROUP BY k
)""",
        f"""tal AS (
  SELECT {row_key} AS k, {", ".join(["count(*) AS n_tallies", *tal_cols])}
  FROM {tally_from}
  WHERE {where_tally} AND {in_months}
  GROUP BY 1
)""",
    ]
    joins = ["LEFT JOIN base_agg ON base_agg.k = m.k", "LEFT JOIN tal ON tal.k = m.k"]
    if "cases_last_year" in keys:
        ctes.append(
            f"""tal_ly AS (
  SELECT {row_key} AS k, sum(c.cases) AS cases
  FROM {tally_from}
  WHERE {where_tally} AND {in_months_ly}
  GROUP BY 1
)"""
        )
        joins.append("LEFT JOIN tal_ly ON tal_ly.k = m.k")
    if stock_cols:
        # Every month's rows with open cases (a row's overdue_pending counts some of its
        # open ones): through ix_case_tallies_open / ix_case_category_tallies_open.
        ctes.append(
            f"""stock AS (
  SELECT {row_key} AS k, {", ".join(stock_cols)}
  FROM {tally_from} WHERE {where_tally} AND c.open <> 0
  GROUP BY 1
)"""
        )
        joins.append("LEFT JOIN stock ON stock.k = m.k")
    if ahead_cols:
        ctes.append(
            f"""ahead AS (
  SELECT {key_sql} AS k, {", ".join(ahead_cols)}
  FROM cases c
  WHERE {where_area} AND c.reported_at < :as_of
    AND c.due_at >= :as_of AND c.concluded_at IS NULL AND c.due_at IS NOT NULL
  GROUP BY 1
)"""
        )
        joins.append("LEFT JOIN ahead ON ahead.k = m.k")
    if "backlog" in keys:
        # The open cases of the cut-off's month reported before the cut-off ("open" is
        # TRUE only for cases in the open_superset, which ix_cases_open and the BRIN on
        # resolved_at find).
        ctes.append(
            f"""cut AS (
  SELECT {key_sql} AS k, count(*) FILTER (WHERE {all_conds["backlog"]}) AS backlog
  FROM cases c
  WHERE {where_area} AND c.reported_at < :as_of AND {open_superset}
    AND c.reported_at >= ({cut_month} AT TIME ZONE 'Asia/Shanghai') AND c.reported_at < {cutoff}
  GROUP BY 1
)"""
        )
        joins.append("LEFT JOIN cut ON cut.k = m.k")
    if with_villages:
        params["v_len"] = CODE_LENGTH[row_level]
        village_cols = ",\n".join(f"    {f.sql} AS {f.key}" for f in village_figs)
        escalations = " + ".join(F.BY_KEY[k].sql for k in ESCALATIONS)
        ctes.append(
            f"""vil AS (
  SELECT left(v.code, :v_len) AS k,
{village_cols}
  FROM (
    SELECT a.code, coalesce(x.v_cases, 0) + coalesce(y.v_cases, 0) AS v_cases,
      coalesce(x.v_escalations, 0) AS v_escalations
    FROM areas a
    LEFT JOIN (
      SELECT village_code, {F.BY_KEY["cases"].sql} AS v_cases, {escalations} AS v_escalations
      FROM base GROUP BY village_code
    ) x ON x.village_code = a.code
    LEFT JOIN (
      SELECT c.village_code, sum(c.cases) AS v_cases
      FROM {tally_from} WHERE {where_tally} AND {in_months}
      GROUP BY c.village_code
    ) y ON y.village_code = a.code
    WHERE a.level = 'village' AND a.code LIKE :m_prefix
  ) v
  GROUP BY 1
)"""
        )
        joins.append("LEFT JOIN vil ON vil.k = m.k")
    ctes.append(f"members AS ({members_sql})")
    select_counts = [f"{combined(f)} AS {f.key}" for f in counts]
    for f in village_figs:
        select_counts.append(f"vil.{f.key}" if with_villages else f"NULL::bigint AS {f.key}")
    with_sql, join_sql = ",\n".join(ctes), "\n  ".join(joins)
    sql = f"""
WITH {with_sql}
SELECT {", ".join(_outer(figures, with_villages))}
FROM (
  SELECT m.k, m.code, m.name, m.population, m.ord,
    {", ".join(select_counts)}
  FROM members m
  {join_sql}
) r
ORDER BY r.ord
"""
    return sql, params


def _outer(figures: tuple[F.Figure, ...], with_villages: bool) -> list[str]:
    """The outer SELECT list: the counts, then the rates and flags computed from them."""
    outer = ["r.*"]
    for f in figures:
        if f.kind == "rate":
            outer.append(
                f"CASE WHEN ({f.den}) > 0 THEN ({f.num})::float8 * {f.factor!r} / ({f.den}) END"
                f" AS {f.key}"
            )
        elif f.kind == "flag":
            applies = "true" if with_villages else "false"
            outer.append(f"CASE WHEN {applies} THEN ({f.sql}) END AS {f.key}")
    return outer


def figure_rows(session: Session, q: StatsQuery, raw: bool = False) -> list[dict]:
    """Return one dict per row of ``q`` (code, name, population and every figure that applies).

    The whole months of the period come from the case tallies whenever that gives
    exactly the numbers of the cases themselves (:func:`tally_plan`); ``raw`` forces
    the cases (the tests compare both paths).
    """
    now = datetime.now(UTC)
    if q.period.as_of is None:  # one instant for the checks and the statement
        q = replace(q, period=replace(q.period, as_of=now))
    plan = None if raw else tally_plan(session, q, now)
    sql, params = build_tally_sql(q, plan) if plan else build_sql(q)
    return rows_of(session, q, sql, params)


def rows_of(session: Session, q: StatsQuery, sql: str, params: dict) -> list[dict]:
    """Run the statement of ``q`` (:func:`build_sql` or :func:`build_tally_sql`); one dict a row."""
    keys = [f.key for f in q.figures()]
    out = []
    # The statements join the rows' members to each aggregate by its key, in the order
    # written (hash joins). Searching the orders of up to nine relations took longer
    # than running the tallied statement (25 ms of planning at a million cases, 10
    # without the search), so the planner keeps the written order for this statement.
    previous = session.execute(
        text(
            "SELECT current_setting('join_collapse_limit'), set_config('join_collapse_limit', '1', true)"
        )
    ).scalar_one()
    result = session.execute(text(sql), params).mappings().all()
    session.execute(text("SELECT set_config('join_collapse_limit', :v, true)"), {"v": previous})
    for row in result:
        item = {"code": row["code"], "name": row["name"], "population": row["population"]}
        for key in keys:
            value = row[key]
            f = F.BY_KEY[key]
            if value is None:
                item[key] = None
            elif f.is_count:
                item[key] = int(value)
            elif f.kind == "flag":
                item[key] = bool(value)
            else:
                item[key] = float(value)
        out.append(item)
    return out


def area_total(session: Session, q: StatsQuery, rows: list[dict] | None = None) -> dict:
    """The figures of the query's area itself (one row).

    Given the ``rows`` of ``q`` when they are the areas that make up the query's area
    (every member of a level that carries village counts), the total is their sum:
    counts are additive (every case carries the codes of its grid, village and
    township), and rates and the 三无 flag are computed from the summed counts, as
    the SQL computes them. Otherwise one more query computes it.
    """
    level = q.grouping.level or AreaLevel(q.area.level)
    if (
        rows is not None
        and q.grouping.by == "area"
        and level in VILLAGE_FIGURE_LEVELS
        and AreaLevel(q.area.level) in VILLAGE_FIGURE_LEVELS
    ):
        return _sum_rows(q, rows)
    own = StatsQuery(
        area=q.area,
        period=q.period,
        grouping=Grouping("area", AreaLevel(q.area.level)),
        filters=q.filters,
        scope=q.scope,
        backlog_years=q.backlog_years,
        only=q.only,
    )
    rows = [r for r in figure_rows(session, own) if r["code"] == q.area.code]
    return rows[0]


def _sum_rows(q: StatsQuery, rows: list[dict]) -> dict:
    figures = q.grouping.figures(AreaLevel(q.area.level))
    total: dict = {"code": q.area.code, "name": q.area.name, "population": q.area.population}
    values: dict = {"population": q.area.population}
    for f in figures:
        if f.is_count:
            values[f.key] = sum(r[f.key] or 0 for r in rows)
            total[f.key] = values[f.key]
    for f in figures:
        if f.kind == "rate":
            den = _arithmetic(f.den, values)
            total[f.key] = (
                None if den is None or den <= 0 else _arithmetic(f.num, values) * f.factor / den
            )
        elif f.kind == "flag":
            left, right = f.sql.split("=")
            total[f.key] = _arithmetic(left, values) == int(right)
    return {
        "code": total["code"],
        "name": total["name"],
        "population": total["population"],
        **{f.key: total[f.key] for f in figures},
    }


def _arithmetic(expression: str, values: dict) -> float | None:
    """Evaluate a figure's ``a + b - c`` over counts (the only form rates and flags use)."""
    result, sign = 0.0, 1
    for token in expression.split():
        if token in "+-":
            sign = 1 if token == "+" else -1
            continue
        value = values[token]
        if value is None:
            return None
        result += sign * value
    return result


@dataclass(frozen=True)
class ListedCase:
    """An overdue or backlog case as the monthly report lists it (personal data masked later)."""

    id: int
    number: str
    title: str
    category: str
    channel: str
    status: str
    township_code: str
    village_code: str
    grid_code: str
    reported_at: datetime
    due_at: datetime | None
    overdue: bool
    backlog: bool
    petitioner_name: str | None
    petitioner_phone: str | None
    petitioner_id_number: str | None


def overdue_and_backlog(session: Session, q: StatsQuery, limit: int = 5000) -> list[ListedCase]:
    """The cases that count as overdue or backlog at the as-of instant (the same conditions)."""
    conds = F.condition_sql()
    scope_sql, scope_params = q.scope
    filter_sql, filter_params = q.filters.sql("c")
    params = {**scope_params, **filter_params, **q.period.params()}
    params.update({"area": q.area.code, "backlog_years": int(q.backlog_years), "limit": limit})
    area_col = CASE_CODE_COLUMN[AreaLevel(q.area.level)]
    rows = session.execute(
        text(
            f"""
            SELECT * FROM (
              SELECT c.id, c.number, c.title, cat.name AS category, c.channel, c.status,
                     c.township_code, c.village_code, c.grid_code, c.reported_at, c.due_at,
                     {conds["overdue"]} AS overdue, {conds["backlog"]} AS backlog,
                     c.petitioner_name, c.petitioner_phone, c.petitioner_id_number
              FROM cases c JOIN categories cat ON cat.id = c.category_id
              WHERE c.{area_col} = :area AND ({scope_sql}) AND ({filter_sql})
                AND c.reported_at < :as_of
            ) x
            WHERE x.overdue OR x.backlog
            ORDER BY x.backlog DESC, x.reported_at, x.id
            LIMIT :limit
            """
        ),
        params,
    ).all()
    return [ListedCase(*r) for r in rows]


def area_names(session: Session, codes: list[str]) -> dict[str, str]:
    """Names of the areas with the given codes."""
    if not codes:
        return {}
    rows = session.execute(
        text("SELECT code, name FROM areas WHERE code = ANY(:codes)"), {"codes": list(codes)}
    ).all()
    return dict(rows)
