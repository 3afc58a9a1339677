"""Every figure leaders read, defined once: its SQL, its Chinese name and its glossary text.

The pages, the API, the exports and the glossary page all read these definitions;
nothing else in the app says what a figure means. ``queries`` turns them into one
SQL statement.

How the SQL is put together (see ``queries.figure_rows``):

* A **condition** (:data:`CONDITIONS`) is a yes/no question about one case, written
  as SQL over the ``cases`` row ``c``. It may use the parameters ``:p_from``/``:p_to``
  (the period, half-open, on ``reported_at``), ``:ly_from``/``:ly_to`` (the same
  period a year before), ``:as_of`` (the instant the state of a case is read at,
  "截至统计时"; the time of the query unless given) and ``:backlog_years``. A
  condition may build on earlier ones as ``{name}``.
* A **count** is an aggregate over the cases of a row (an area, a category, a
  channel or a month), written over the conditions as boolean columns.
* A **village count** counts the villages of a row's area (无访村, 三无村).
* A **rate** divides two expressions over the row's counts (and its population);
  it is NULL where the denominator is 0 (shown as "—").
* A **flag** is a yes/no answer about the row's area (三无).

Counts are additive: the rows of the townships of a county add up to the county's row
for every count (the tests check it). Rates and flags are never added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from webapp.cases.vocab import RESOLVED_STATUSES, sql_in

# A collective petition (集体访) has at least this many people.
COLLECTIVE_MIN_PEOPLE = 5
# A backlog case (积案) has been unresolved for more than this many years (configurable
# per deployment with GRIDCASE_STATS_BACKLOG_YEARS, and per request).
DEFAULT_BACKLOG_YEARS = 3
# Statuses in which a matter counts as resolved (化解): the vocabulary's own list.
RESOLVED_SQL = sql_in(sorted(RESOLVED_STATUSES))


@dataclass(frozen=True)
class Condition:
    """A yes/no question about one case, in SQL over ``c``."""

    key: str
    name: str
    sql: str
    definition: str


CONDITIONS: tuple[Condition, ...] = (
    Condition(
        "in_period",
        "统计期内登记",
        "c.reported_at >= :p_from AND c.reported_at < :p_to",
        "登记时间（reported_at）在统计期内：起始日 0 时（北京时间）起，截止日 24 时止。",
    ),
    Condition(
        "in_last_year",
        "去年同期登记",
        "c.reported_at >= :ly_from AND c.reported_at < :ly_to",
        "登记时间在上一年的同一时段内（起止日期各减一年）。",
    ),
    Condition(
        "resolved",
        "已化解",
        f"c.status IN {RESOLVED_SQL} AND c.resolved_at < :as_of",
        "截至统计时，状态为“已化解”或“已销号”，且化解时间早于统计时点。",
    ),
    Condition(
        "open",
        "未化解",
        "c.reported_at < :as_of AND c.status <> 'not_accepted' AND NOT ({resolved})",
        "截至统计时已登记、已受理（不含不予受理）且尚未化解。",
    ),
    Condition(
        "followed_up",
        "已回访",
        "c.satisfaction IS NOT NULL AND c.concluded_at < :as_of",
        "已办结并在回访中记录了满意度（满意、基本满意或不满意）。",
    ),
    Condition(
        "due",
        "应办结",
        "c.status <> 'not_accepted' AND c.due_at IS NOT NULL"
        " AND (c.concluded_at < :as_of OR c.due_at < :as_of)",
        "有办理期限，且截至统计时已办结或办理期限已届满（未办结的超期件也计入）。",
    ),
    Condition(
        "on_time",
        "按期办结",
        "{due} AND c.concluded_at < :as_of AND c.concluded_at <= c.due_at",
        "应办结且办结时间不晚于办理期限（due_at，办结后保留）。",
    ),
    Condition(
        "overdue",
        "超期未办结",
        "{open} AND c.due_at < :as_of AND (c.concluded_at IS NULL OR c.concluded_at >= :as_of)",
        "截至统计时办理期限已过而尚未办结（未化解）。",
    ),
    Condition(
        "backlog",
        "积案",
        "{open} AND c.reported_at < :as_of - make_interval(years => :backlog_years)",
        "截至统计时登记已满设定年限（默认 3 年）仍未化解。",
    ),
    Condition(
        "first_once",
        "初信初访一次性化解",
        "c.is_first AND {resolved} AND NOT EXISTS ("
        "SELECT 1 FROM cases r WHERE r.repeat_of_id = c.id AND r.repeat_of_id IS NOT NULL"
        " AND r.reported_at < :as_of)",
        "初信初访（首次提出）的事项已化解，且截至统计时没有任何一件重复信访指向它"
        "（不论重复件登记在何时、何地）。",
    ),
    Condition(
        "beijing_abnormal",
        "非正常进京访",
        "c.beijing_abnormal_at >= :p_from AND c.beijing_abnormal_at < :p_to"
        " AND c.beijing_abnormal_at < :as_of",
        "该事项引发的非正常进京访发生在统计期内（按事件发生时间，不按登记时间）。",
    ),
    Condition(
        "province_collective",
        "赴省集体访",
        "c.province_collective_at >= :p_from AND c.province_collective_at < :p_to"
        " AND c.province_collective_at < :as_of",
        "该事项引发的赴省集体访发生在统计期内（按事件发生时间）。",
    ),
    Condition(
        "extreme_incident",
        "极端事件",
        "c.extreme_incident_at >= :p_from AND c.extreme_incident_at < :p_to"
        " AND c.extreme_incident_at < :as_of",
        "因该信访事项引发的极端事件发生在统计期内（按事件发生时间）。",
    ),
)


@dataclass(frozen=True)
class Figure:
    """One figure: how it is computed, what it is called and what it means."""

    key: str
    name: str
    unit: str
    definition: str
    # count: aggregate over the row's cases; village_count: over its villages;
    # rate: num / den (times ``factor``); flag: a yes/no SQL expression over counts.
    kind: str = "count"
    sql: str = ""
    num: str = ""
    den: str = ""
    factor: float = 1.0
    # period: cases raised in the period; stock: all open cases at the as-of instant;
    # event: events dated in the period; year: the same period a year before.
    basis: str = "period"
    # Whether the figure means anything for a month of a trend (stock and event
    # figures are not split by the month a case was raised in).
    trend: bool = True
    # Only for rows that are areas (villages counted, population known, 三无).
    area_only: bool = False
    group: str = "办理"

    @property
    def is_count(self) -> bool:
        return self.kind in ("count", "village_count")

    @property
    def is_rate(self) -> bool:
        return self.kind == "rate"


def _count(condition: str) -> str:
    return f"count(*) FILTER (WHERE {condition})"


FIGURES: tuple[Figure, ...] = (
    # -- volume -------------------------------------------------------------------
    Figure(
        "cases",
        "信访事项",
        "件",
        "统计期内登记的信访事项和矛盾纠纷件数（含不予受理），一件事项计一件，无论涉及多少人。",
        sql=_count("in_period"),
        group="总量",
    ),
    Figure(
        "people",
        "涉及人数",
        "人",
        "统计期内登记的信访事项涉及的人数之和（每件事项按登记的人数计，来访多批次的只计一次）。",
        sql="coalesce(sum(people_count) FILTER (WHERE in_period), 0)",
        group="总量",
    ),
    Figure(
        "visit_batches",
        "来访批次",
        "批次",
        "统计期内登记的来访（走访）事项的批次数之和（每件事项的 batch_count）。",
        sql="coalesce(sum(batch_count) FILTER (WHERE in_period AND channel = 'visit'), 0)",
        group="总量",
    ),
    Figure(
        "visit_persons",
        "来访人次",
        "人次",
        "统计期内登记的来访事项的人次之和：每件事项的人数 × 批次数（每批按该事项登记的人数计）。",
        sql="coalesce(sum(people_count * batch_count)"
        " FILTER (WHERE in_period AND channel = 'visit'), 0)",
        group="总量",
    ),
    Figure(
        "per_1000",
        "每千人信访量",
        "件/千人",
        "信访事项 ÷ 区域户籍人口 × 1000。人口未登记的区域不计算。",
        kind="rate",
        num="cases",
        den="population",
        factor=1000.0,
        area_only=True,
        group="总量",
    ),
    Figure(
        "cases_last_year",
        "去年同期",
        "件",
        "上一年同一时段（起止日期各减一年）登记的信访事项件数。",
        sql=_count("in_last_year"),
        basis="year",
        group="总量",
    ),
    Figure(
        "yoy_change",
        "同比增减",
        "%",
        "（本期信访事项 − 去年同期）÷ 去年同期。去年同期为 0 时不计算。",
        kind="rate",
        num="cases - cases_last_year",
        den="cases_last_year",
        basis="year",
        group="总量",
    ),
    # -- resolution -------------------------------------------------------------------
    Figure(
        "resolved",
        "已化解",
        "件",
        "统计期内登记的事项中，截至统计时已化解（状态为已化解或已销号）的件数。",
        sql=_count("in_period AND resolved"),
    ),
    Figure(
        "resolution_rate",
        "化解率",
        "%",
        "已化解 ÷ 信访事项（统计期内登记的全部事项，含不予受理）。",
        kind="rate",
        num="resolved",
        den="cases",
    ),
    Figure(
        "followups",
        "回访件数",
        "件",
        "统计期内登记的事项中，已办结并记录了回访满意度的件数。",
        sql=_count("in_period AND followed_up"),
    ),
    Figure(
        "satisfied",
        "满意及基本满意",
        "件",
        "回访件数中，满意度为“满意”或“基本满意”的件数。",
        sql=_count("in_period AND followed_up AND satisfaction IN ('satisfied','basically')"),
    ),
    Figure(
        "satisfaction_rate",
        "群众满意率",
        "%",
        "（满意 + 基本满意）÷ 回访件数。只计已回访的事项，未回访的不在分母中。",
        kind="rate",
        num="satisfied",
        den="followups",
    ),
    Figure(
        "due",
        "应办结件数",
        "件",
        "统计期内登记的事项中，有办理期限且截至统计时已办结或期限已届满的件数。",
        sql=_count("in_period AND due"),
    ),
    Figure(
        "on_time",
        "按期办结件数",
        "件",
        "应办结件数中，办结时间不晚于办理期限的件数。",
        sql=_count("in_period AND on_time"),
    ),
    Figure(
        "on_time_rate",
        "按期办结率",
        "%",
        "按期办结件数 ÷ 应办结件数。期限已过仍未办结的事项算作未按期办结。",
        kind="rate",
        num="on_time",
        den="due",
    ),
    Figure(
        "first",
        "初信初访",
        "件",
        "统计期内登记的事项中，首次提出（初信初访，非重复信访）的件数。",
        sql=_count("in_period AND is_first"),
    ),
    Figure(
        "first_resolved_once",
        "一次性化解",
        "件",
        "初信初访中，已化解且截至统计时没有任何重复信访指向它的件数。",
        sql=_count("in_period AND first_once"),
    ),
    Figure(
        "first_resolution_rate",
        "初信初访一次性化解率",
        "%",
        "一次性化解 ÷ 初信初访。",
        kind="rate",
        num="first_resolved_once",
        den="first",
    ),
    # -- kinds of petition -----------------------------------------------------------
    Figure(
        "repeats",
        "重复信访",
        "件",
        "统计期内登记的事项中，就已提出过的同一事项再次信访（非初信初访）的件数。",
        sql=_count("in_period AND NOT is_first"),
        group="类型",
    ),
    Figure(
        "repeat_rate",
        "重复信访率",
        "%",
        "重复信访 ÷ 信访事项。",
        kind="rate",
        num="repeats",
        den="cases",
        group="类型",
    ),
    Figure(
        "collective",
        "集体访",
        "件",
        f"统计期内登记的、涉及 {COLLECTIVE_MIN_PEOPLE} 人及以上的事项件数（任何渠道）。",
        sql=_count(f"in_period AND people_count >= {COLLECTIVE_MIN_PEOPLE}"),
        group="类型",
    ),
    Figure(
        "skip_level",
        "越级访",
        "件",
        "统计期内登记的、越过应当受理的机关向上级机关提出的事项件数。",
        sql=_count("in_period AND skip_level"),
        group="类型",
    ),
    # -- stock -------------------------------------------------------------------------
    Figure(
        "open",
        "未化解存量",
        "件",
        "截至统计时尚未化解的全部事项（不论何时登记，不含不予受理）。存量指标，不受统计期起点限制。",
        sql=_count("open"),
        basis="stock",
        trend=False,
        group="存量",
    ),
    Figure(
        "overdue",
        "超期未办结",
        "件",
        "截至统计时办理期限已过而尚未办结的事项（不论何时登记）。存量指标。",
        sql=_count("overdue"),
        basis="stock",
        trend=False,
        group="存量",
    ),
    Figure(
        "backlog",
        "积案",
        "件",
        "截至统计时登记已满设定年限（默认 3 年）仍未化解的事项（信访老户）。存量指标。",
        sql=_count("backlog"),
        basis="stock",
        trend=False,
        group="存量",
    ),
    # -- where matters ended -------------------------------------------------------------
    Figure(
        "resolved_leveled",
        "记录了化解层级的已化解件",
        "件",
        "已化解且记录了在哪一级化解（村、乡镇、县、县以上）的件数：下列三个比率的分母。",
        sql=_count("in_period AND resolved AND resolved_level IS NOT NULL"),
        group="化解层级",
    ),
    Figure(
        "resolved_village",
        "村级化解",
        "件",
        "已化解且在村（社区）一级化解的件数。",
        sql=_count("in_period AND resolved AND resolved_level = 'village'"),
        group="化解层级",
    ),
    Figure(
        "resolved_township",
        "乡镇级化解",
        "件",
        "已化解且在乡镇（街道）一级化解的件数。",
        sql=_count("in_period AND resolved AND resolved_level = 'township'"),
        group="化解层级",
    ),
    Figure(
        "resolved_county",
        "县级化解",
        "件",
        "已化解且在县一级化解的件数。",
        sql=_count("in_period AND resolved AND resolved_level = 'county'"),
        group="化解层级",
    ),
    Figure(
        "resolved_above",
        "县以上化解",
        "件",
        "已化解但在县以上（市、省及以上）化解的件数。",
        sql=_count("in_period AND resolved AND resolved_level = 'above'"),
        group="化解层级",
    ),
    Figure(
        "stay_village",
        "小事不出村",
        "%",
        "村级化解 ÷ 记录了化解层级的已化解件。",
        kind="rate",
        num="resolved_village",
        den="resolved_leveled",
        group="化解层级",
    ),
    Figure(
        "stay_township",
        "大事不出镇",
        "%",
        "（村级化解 + 乡镇级化解）÷ 记录了化解层级的已化解件。",
        kind="rate",
        num="resolved_village + resolved_township",
        den="resolved_leveled",
        group="化解层级",
    ),
    Figure(
        "stay_county",
        "难事不出县",
        "%",
        "（村级 + 乡镇级 + 县级化解）÷ 记录了化解层级的已化解件。",
        kind="rate",
        num="resolved_village + resolved_township + resolved_county",
        den="resolved_leveled",
        group="化解层级",
    ),
    # -- 三无 and villages without petitions ------------------------------------------------
    Figure(
        "beijing_abnormal",
        "非正常进京访",
        "起",
        "统计期内发生的、由本区域事项引发的非正常进京访起数（按事件发生时间）。",
        sql=_count("beijing_abnormal"),
        basis="event",
        trend=False,
        group="三无",
    ),
    Figure(
        "province_collective",
        "赴省集体访",
        "起",
        "统计期内发生的、由本区域事项引发的赴省集体访起数（按事件发生时间）。",
        sql=_count("province_collective"),
        basis="event",
        trend=False,
        group="三无",
    ),
    Figure(
        "extreme_incidents",
        "极端事件",
        "起",
        "统计期内发生的、因本区域信访事项引发的极端事件起数（按事件发生时间）。",
        sql=_count("extreme_incident"),
        basis="event",
        trend=False,
        group="三无",
    ),
    Figure(
        "sanwu",
        "三无",
        "",
        "统计期内无非正常进京访、无赴省集体访、无因信访问题引发的极端事件，三项均为 0 即为“三无”"
        "（适用于县、乡镇、村；网格不评）。",
        kind="flag",
        sql="beijing_abnormal + province_collective + extreme_incidents = 0",
        basis="event",
        trend=False,
        area_only=True,
        group="三无",
    ),
    Figure(
        "villages",
        "村(社区)数",
        "个",
        "区域内行政村和社区的个数。",
        kind="village_count",
        sql="count(*)",
        trend=False,
        area_only=True,
        group="三无",
    ),
    Figure(
        "no_petition_villages",
        "无访村",
        "个",
        "统计期内没有登记任何信访事项（按当前筛选条件）的村（社区）个数；对村本身为 1 或 0。",
        kind="village_count",
        sql="count(*) FILTER (WHERE v_cases = 0)",
        trend=False,
        area_only=True,
        group="三无",
    ),
    Figure(
        "no_petition_share",
        "无访村占比",
        "%",
        "无访村 ÷ 村(社区)数。",
        kind="rate",
        num="no_petition_villages",
        den="villages",
        trend=False,
        area_only=True,
        group="三无",
    ),
    Figure(
        "sanwu_villages",
        "三无村",
        "个",
        "统计期内达到“三无”的村（社区）个数；对村本身为 1 或 0。",
        kind="village_count",
        sql="count(*) FILTER (WHERE v_escalations = 0)",
        trend=False,
        area_only=True,
        group="三无",
    ),
)

BY_KEY: dict[str, Figure] = {f.key: f for f in FIGURES}
COUNTS: tuple[Figure, ...] = tuple(f for f in FIGURES if f.kind == "count")
VILLAGE_COUNTS: tuple[Figure, ...] = tuple(f for f in FIGURES if f.kind == "village_count")
ADDITIVE: tuple[Figure, ...] = tuple(f for f in FIGURES if f.is_count)

# The figures a dashboard shows first, in order.
HEADLINE = (
    "cases",
    "resolution_rate",
    "satisfaction_rate",
    "on_time_rate",
    "first_resolution_rate",
    "repeats",
    "collective",
    "skip_level",
    "backlog",
    "overdue",
    "per_1000",
    "yoy_change",
)
# The columns of a ranking table, in order.
RANKING = (
    "cases",
    "per_1000",
    "yoy_change",
    "resolution_rate",
    "satisfaction_rate",
    "on_time_rate",
    "first_resolution_rate",
    "repeats",
    "collective",
    "skip_level",
    "visit_batches",
    "visit_persons",
    "open",
    "overdue",
    "backlog",
    "stay_village",
    "stay_township",
    "stay_county",
    "no_petition_villages",
    "sanwu",
)

# The glossary groups, in the order the glossary page shows them.
GROUPS = ("总量", "办理", "类型", "存量", "化解层级", "三无")

PERIOD_NOTE = (
    "统计期按北京时间的自然日计，含起止两日。“统计期内登记的事项”按登记时间归属统计期；"
    "其办理状态（是否化解、办结、回访）以统计时点为准（默认为生成报表的时刻），"
    "因此同一统计期的数字会随后续办理而变化。存量指标（未化解、超期、积案）统计截至统计时点的全部事项；"
    "三无事件按事件发生时间归属统计期。所有指标只计当前用户有权查看的事项，"
    "并按所选类别、渠道筛选。"
)


def identifiers(sql: str) -> set[str]:
    """The names (columns, conditions, counts) an SQL expression mentions."""
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))


def with_inputs(keys: Iterable[str]) -> set[str]:
    """``keys`` and every figure they are computed from (a rate's counts, a flag's counts)."""
    out: set[str] = set()
    todo = list(keys)
    while todo:
        key = todo.pop()
        if key in out:
            continue
        out.add(key)
        f = BY_KEY[key]
        if f.kind in ("rate", "flag"):
            todo.extend(k for k in identifiers(f"{f.num} {f.den} {f.sql}") if k in BY_KEY)
    return out


def condition_sql() -> dict[str, str]:
    """The SQL of every condition with the earlier conditions it builds on filled in."""
    out: dict[str, str] = {}
    for cond in CONDITIONS:
        out[cond.key] = "(" + cond.sql.format(**out) + ")"
    return out


def glossary() -> list[dict]:
    """The glossary: every figure by group, with its name, unit and definition."""
    return [
        {
            "group": group,
            "figures": [
                {
                    "key": f.key,
                    "name": f.name,
                    "unit": f.unit,
                    "definition": f.definition,
                    "basis": f.basis,
                }
                for f in FIGURES
                if f.group == group
            ],
        }
        for group in GROUPS
    ]
