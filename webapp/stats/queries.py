"""The figures of ``stats.figures`` computed in SQL for rows of areas, categories, channels, months.

One statement computes every figure for every row: the cases of the area (in the
user's scope, matching the filters) are read once, each case's conditions are
evaluated once, and the counts are aggregates over them. Rows with no case are listed
with zeros (every area of the level, every category ...), so a ranking has every
member and the townships add up to the county.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.cases.models import OPEN_SQL
from webapp.cases.vocab import CHANNEL_LABELS, Channel
from webapp.grid.models import Area, AreaLevel
from webapp.grid.queries import CASE_CODE_COLUMN
from webapp.stats import figures as F

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
    count_cols = ",\n".join(f"    {f.sql} AS {f.key}" for f in counts)

    row_level = q.grouping.level or area_level
    with_villages = q.grouping.by == "area" and row_level in VILLAGE_FIGURE_LEVELS
    village_figs = [f for f in F.VILLAGE_COUNTS if f.key in keys]
    escalations = " + ".join(F.BY_KEY[k].sql for k in ESCALATIONS)
    villages_cte = ""
    if with_villages and village_figs:
        params["v_len"] = CODE_LENGTH[row_level]
        village_cols = ",\n".join(f"    {f.sql} AS {f.key}" for f in village_figs)
        villages_cte = f""",
vil AS (
  SELECT left(v.code, :v_len) AS k,
{village_cols}
  FROM (
    SELECT a.code, coalesce(x.v_cases, 0) AS v_cases, coalesce(x.v_escalations, 0) AS v_escalations
    FROM areas a
    LEFT JOIN (
      SELECT village_code, {F.BY_KEY["cases"].sql} AS v_cases, {escalations} AS v_escalations
      FROM base GROUP BY village_code
    ) x ON x.village_code = a.code
    WHERE a.level = 'village' AND a.code LIKE :m_prefix
  ) v
  GROUP BY 1
)"""
    select_counts = [f"coalesce(agg.{f.key}, 0) AS {f.key}" for f in counts]
    for f in village_figs:
        select_counts.append(f"vil.{f.key}" if villages_cte else f"NULL::bigint AS {f.key}")
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
    area_col = CASE_CODE_COLUMN[area_level]
    sql = f"""
WITH base AS MATERIALIZED (
  SELECT {key_sql} AS k, c.village_code, c.people_count, c.batch_count, c.channel,
    c.satisfaction, c.resolved_level, c.is_first, c.skip_level,
{cond_cols}
  FROM cases c
  WHERE c.{area_col} = :area AND ({scope_sql}) AND ({filter_sql})
    AND c.reported_at < :as_of {relevant}
),
agg AS (
  SELECT k,
{count_cols}
  FROM base GROUP BY k
){villages_cte},
members AS ({members_sql})
SELECT {", ".join(outer)}
FROM (
  SELECT m.k, m.code, m.name, m.population, m.ord,
    {", ".join(select_counts)}
  FROM members m
  LEFT JOIN agg ON agg.k = m.k
  {"LEFT JOIN vil ON vil.k = m.k" if villages_cte else ""}
) r
ORDER BY r.ord
"""
    return sql, params


def figure_rows(session: Session, q: StatsQuery) -> list[dict]:
    """Return one dict per row of ``q`` (code, name, population and every figure that applies)."""
    sql, params = build_sql(q)
    keys = [f.key for f in q.figures()]
    out = []
    for row in session.execute(text(sql), params).mappings():
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
    return {"code": total["code"], "name": total["name"], "population": total["population"],
            **{f.key: total[f.key] for f in figures}}


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
