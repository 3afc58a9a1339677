"""Early warning (信访要情): counts improbably high against their own history; hot spots moving.

Two analyses, both over the cases in the user's scope within an area:

1. **Spikes.** For every grid, village and category, the count in the latest window
   (the 7 or 30 days before the as-of instant) is compared with that unit's own
   history: a Poisson baseline whose mean is the unit's average count per window over
   the preceding 26 weeks (weekly) or 12 thirty-day windows (monthly). With
   ``history`` cases in ``k`` earlier windows the expected count is
   λ = max(history, 0.5) / k (a unit with no history is given half a case, so a
   single first case is not a warning), and the p-value is P(X ≥ observed | λ),
   X ~ Poisson(λ). A unit is flagged when p < 0.01 and at least 3 cases were
   observed. Every flag shows observed, expected and p.

2. **Emerging hot spots.** The areas' case counts per calendar month (the latest
   ``months`` months, the current one up to the as-of instant) go through Getis-Ord
   Gi* month by month (``webapp.hotspots``: queen contiguity, FDR-corrected, a bin is
   a hot or cold spot at 95 % confidence). A Mann-Kendall test on each area's series of
   z-scores says whether its clustering intensifies or diminishes (p < 0.05). Each area
   is then classified with the pattern names of ArcGIS's Emerging Hot Spot Analysis
   (new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating,
   historical; the same for cold spots).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from webapp.auth.permissions import case_scope_sql
from webapp.grid.models import Area, AreaLevel
from webapp.grid.queries import CASE_CODE_COLUMN
from webapp.hotspots import gistar, weights
from webapp.stats.params import bad, parse_date, refuse_unknown, requested_area, whole_number
from webapp.stats.queries import LOCAL_TZ, local_midnight

ALPHA = 0.01
MIN_COUNT = 3
WINDOWS = {"week": (7, 26), "month": (30, 12)}  # days per window, baseline windows
EHSA_ALPHA = 0.05  # Mann-Kendall significance
EHSA_BIN = 2  # a Gi* bin of ±2 or more (95 % confidence) is a hot or cold spot
EHSA_SHARE = 0.9

METHOD = {
    "spike": (
        "泊松基线：以该单元自身历史为基线（周：前 26 周；月：前 12 个 30 天），"
        "期望值 λ = 历史件数 ÷ 历史窗口数（历史为 0 时按 0.5 件计），"
        "p = P(X ≥ 观测值)，X 服从泊松分布(λ)；p < 0.01 且观测值不少于 3 件时预警。"
    ),
    "emerging": (
        "时空热点：每个月对各区域案件数做 Getis-Ord Gi* 热点分析（邻接：共点共边；"
        "FDR 校正；95% 置信度为热点或冷点），再对每个区域各月的 z 值序列做 Mann-Kendall "
        "趋势检验（p < 0.05），按 ArcGIS 时空热点分析（Emerging Hot Spot Analysis）的类别归类。"
    ),
}

PATTERN_LABELS = {
    "intensifying_hot": "加剧热点",
    "new_hot": "新增热点",
    "consecutive_hot": "连续热点",
    "persistent_hot": "持续热点",
    "sporadic_hot": "零星热点",
    "oscillating_hot": "振荡热点",
    "diminishing_hot": "减弱热点",
    "historical_hot": "历史热点",
    "intensifying_cold": "加剧冷点",
    "new_cold": "新增冷点",
    "consecutive_cold": "连续冷点",
    "persistent_cold": "持续冷点",
    "sporadic_cold": "零星冷点",
    "oscillating_cold": "振荡冷点",
    "diminishing_cold": "减弱冷点",
    "historical_cold": "历史冷点",
    "no_pattern": "未检测到模式",
}
PATTERN_HELP = {
    "new": "仅最后一个月为显著{kind}，此前从未显著",
    "consecutive": "最后连续至少两个月为显著{kind}，此前从未显著，且显著月份不足 90%",
    "intensifying": "至少 90% 的月份（含最后一个月）为显著{kind}，且聚集强度显著增强",
    "persistent": "至少 90% 的月份为显著{kind}，强度无显著趋势",
    "diminishing": "至少 90% 的月份（含最后一个月）为显著{kind}，且聚集强度显著减弱",
    "sporadic": "最后一个月为显著{kind}，此前时有时无，不足 90%，且从未出现相反的显著点",
    "oscillating": "最后一个月为显著{kind}，此前曾出现相反的显著点，不足 90%",
    "historical": "最后一个月不显著，但至少 90% 的月份曾为显著{kind}",
}


# -- statistics ------------------------------------------------------------------------------


def poisson_sf(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(``lam``), summed term by term (exact enough for any k, λ here)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    log_pmf = -lam + k * math.log(lam) - math.lgamma(k + 1)
    if k > lam:
        # The upper tail, from k upwards: terms shrink geometrically once i > λ.
        total, term, i = 0.0, math.exp(log_pmf), k
        while term > 1e-300 and (term > total * 1e-17 or i < k + 5):
            total += term
            i += 1
            term *= lam / i
        return min(total, 1.0)
    # k ≤ λ: the tail is large; take 1 − P(X < k).
    below, term = 0.0, math.exp(-lam)
    for i in range(k):
        below += term
        term *= lam / (i + 1)
    return max(0.0, 1.0 - below)


@dataclass(frozen=True)
class MannKendall:
    """The Mann-Kendall trend test of a series (normal approximation, tie-corrected)."""

    s: int
    var_s: float
    z: float
    p: float
    tau: float

    def trend(self, alpha: float = EHSA_ALPHA) -> str:
        if self.p >= alpha or self.s == 0:
            return "none"
        return "up" if self.s > 0 else "down"


def mann_kendall(values) -> MannKendall:
    """Mann-Kendall test: S = Σ_{i<j} sign(x_j − x_i), Var(S) with the tie correction,
    Z = (S − sign(S)) / √Var(S) (continuity correction), two-sided p = 2(1 − Φ(|Z|)),
    Kendall's τ = S / (n(n−1)/2)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return MannKendall(0, 0.0, 0.0, 1.0, 0.0)
    diff = np.sign(x[None, :] - x[:, None])
    s = int(np.triu(diff, k=1).sum())
    _, ties = np.unique(x, return_counts=True)
    var_s = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18.0
    if var_s <= 0:
        z = 0.0
    else:
        z = (s - math.copysign(1, s)) / math.sqrt(var_s) if s else 0.0
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return MannKendall(s, var_s, z, p, s / (n * (n - 1) / 2))


def classify(
    bins,
    trend_z: float,
    trend_p: float,
    alpha: float = EHSA_ALPHA,
    min_bin: int = EHSA_BIN,
    share: float = EHSA_SHARE,
) -> str:
    """The Emerging Hot Spot pattern of one location from its Gi* bins over time (oldest first)."""
    b = np.asarray(bins, dtype=int)
    n = len(b)
    if n == 0:
        return "no_pattern"
    hot, cold = b >= min_bin, b <= -min_bin
    for kind, this, other, rising in (("hot", hot, cold, 1), ("cold", cold, hot, -1)):
        frac = this.sum() / n
        if this[-1]:
            if frac >= share:
                significant = trend_p < alpha and trend_z != 0
                if significant and math.copysign(1, trend_z) == rising:
                    return f"intensifying_{kind}"
                if significant:
                    return f"diminishing_{kind}"
                return f"persistent_{kind}"
            before_any = this[:-1].any() or other[:-1].any()
            if not before_any:
                return f"new_{kind}"
            run = n - (np.flatnonzero(~this)[-1] + 1) if (~this).any() else n
            earlier = slice(0, n - run)
            if run >= 2 and not this[earlier].any() and not other[earlier].any():
                return f"consecutive_{kind}"
            if other[:-1].any():
                return f"oscillating_{kind}"
            return f"sporadic_{kind}"
    for kind, this in (("hot", hot), ("cold", cold)):
        if this.sum() / n >= share:
            return f"historical_{kind}"
    return "no_pattern"


# -- the request -------------------------------------------------------------------------------

WARNING_PARAMS = frozenset({"area", "window", "as_of", "level", "months"})


@dataclass(frozen=True)
class WarningRequest:
    area: Area
    window: str
    as_of: datetime
    level: AreaLevel  # the areas of the emerging hot spot analysis
    months: int
    scope: tuple[str, dict] = ("true", {})

    @property
    def window_days(self) -> int:
        return WINDOWS[self.window][0]


def parse_request(session: Session, user, args: MultiDict) -> WarningRequest:
    """Read ``area``, ``window`` (week|month), ``as_of``, ``level`` (village|grid), ``months``."""
    refuse_unknown(args, WARNING_PARAMS)
    area = requested_area(session, user, args)
    window = (args.get("window") or "week").strip()
    if window not in WINDOWS:
        raise bad(
            "invalid_window",
            "参数 window 应为 week 或 month",
            "window must be week or month",
            parameter="window",
        )
    as_of = datetime.now(UTC)
    if args.get("as_of"):
        as_of = local_midnight(parse_date("as_of", args["as_of"]) + timedelta(days=1))
    area_level = AreaLevel(area.level)
    default_level = AreaLevel.VILLAGE if area_level is AreaLevel.COUNTY else AreaLevel.GRID
    level_text = (args.get("level") or default_level.value).strip()
    if level_text not in ("village", "grid") or (
        level_text == "village" and area_level not in (AreaLevel.COUNTY, AreaLevel.TOWNSHIP)
    ):
        raise bad(
            "invalid_level",
            "热点分析的层级应为 village 或 grid，且低于所选区划",
            "level must be village or grid, below the area",
            parameter="level",
        )
    months = whole_number("months", args.get("months") or "12", 6, 36)
    return WarningRequest(area, window, as_of, AreaLevel(level_text), months, case_scope_sql(user))


# -- spikes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    kind: str  # grid | village | category
    code: str
    name: str
    parent: str
    observed: int
    history: int
    expected: float
    p: float


@dataclass
class Alerts:
    window_from: datetime
    window_to: datetime
    baseline_from: datetime
    baseline_windows: int
    tested: dict[str, int] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[Alert]:
        return [a for a in self.alerts if a.kind == kind]


UNIT_KINDS = {
    "grid": (
        "c.grid_code",
        "areas",
        "a.level = 'grid' AND a.code LIKE :prefix",
        "a.code",
        "a.name",
        "(SELECT v.name FROM areas v WHERE v.code = a.village_code)",
    ),
    "village": (
        "c.village_code",
        "areas",
        "a.level = 'village' AND a.code LIKE :prefix",
        "a.code",
        "a.name",
        "(SELECT t.name FROM areas t WHERE t.code = a.township_code)",
    ),
    "category": ("c.category_id::text", "categories", "true", "a.id::text", "a.name", "''"),
}


def alerts(
    session: Session, req: WarningRequest, alpha: float = ALPHA, min_count: int = MIN_COUNT
) -> Alerts:
    """Units whose count in the latest window is improbably high against their own history."""
    days, k = WINDOWS[req.window]
    w_to = req.as_of
    w_from = w_to - timedelta(days=days)
    h_from = w_from - timedelta(days=days * k)
    result = Alerts(w_from, w_to, h_from, k)
    scope_sql, scope_params = req.scope
    area_col = CASE_CODE_COLUMN[AreaLevel(req.area.level)]
    for kind, (key, table, where, code, name, parent) in UNIT_KINDS.items():
        order = list(AreaLevel)
        if kind != "category" and order.index(AreaLevel(req.area.level)) >= order.index(
            AreaLevel(kind)
        ):
            continue  # a village has no villages below it, a grid no grids
        rows = session.execute(
            text(
                f"""
                WITH n AS (
                  SELECT {key} AS k,
                         count(*) FILTER (WHERE c.reported_at >= :w_from) AS observed,
                         count(*) FILTER (WHERE c.reported_at < :w_from) AS history
                  FROM cases c
                  WHERE c.{area_col} = :area AND ({scope_sql})
                    AND c.reported_at >= :h_from AND c.reported_at < :w_to
                  GROUP BY 1
                )
                SELECT {code} AS code, {name} AS name, {parent} AS parent,
                       coalesce(n.observed, 0), coalesce(n.history, 0)
                FROM {table} a LEFT JOIN n ON n.k = {code}
                WHERE {where}
                """
            ),
            {
                **scope_params,
                "area": req.area.code,
                "prefix": req.area.code + "%",
                "w_from": w_from,
                "w_to": w_to,
                "h_from": h_from,
            },
        ).all()
        result.tested[kind] = len(rows)
        for code_v, name_v, parent_v, observed, history in rows:
            if observed < min_count:
                continue
            expected = max(history, 0.5) / k
            p = poisson_sf(int(observed), expected)
            if p < alpha:
                result.alerts.append(
                    Alert(
                        kind,
                        code_v,
                        name_v,
                        parent_v or "",
                        int(observed),
                        int(history),
                        expected,
                        p,
                    )
                )
    result.alerts.sort(key=lambda a: (a.p, -a.observed))
    return result


# -- emerging hot spots -------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    code: str
    name: str
    parent: str
    counts: tuple[int, ...]
    z: tuple[float, ...]
    bins: tuple[int, ...]
    trend_z: float
    trend_p: float
    pattern: str

    @property
    def label(self) -> str:
        return PATTERN_LABELS[self.pattern]


@dataclass
class Emerging:
    level: AreaLevel
    months: list[str]
    locations: list[Location]
    summary: dict[str, int]
    fdr: bool = True

    def notable(self) -> list[Location]:
        order = list(PATTERN_LABELS)
        found = [loc for loc in self.locations if loc.pattern != "no_pattern"]
        return sorted(found, key=lambda loc: (order.index(loc.pattern), -loc.counts[-1], loc.code))


def month_starts(as_of: datetime, months: int) -> list[date]:
    """The first days of the ``months`` calendar months ending with the one ``as_of`` falls in."""
    local = (as_of - timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
    y, m = local.year, local.month
    out = []
    for _ in range(months):
        out.append(date(y, m, 1))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return list(reversed(out))


def monthly_counts(
    session: Session, req: WarningRequest, starts: list[date]
) -> tuple[tuple[str, ...], list[str], list[str], np.ndarray]:
    """(codes, names, parent names, counts[area, month]) for every area of the level in the area."""
    scope_sql, scope_params = req.scope
    area_col = CASE_CODE_COLUMN[AreaLevel(req.area.level)]
    col = CASE_CODE_COLUMN[req.level]
    parent_len = 9 if req.level is AreaLevel.VILLAGE else 12
    rows = session.execute(
        text(
            f"""
            WITH n AS (
              SELECT c.{col} AS code,
                     to_char(c.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month,
                     count(*) AS cnt
              FROM cases c
              WHERE c.{area_col} = :area AND ({scope_sql})
                AND c.reported_at >= :start AND c.reported_at < :as_of
              GROUP BY 1, 2
            )
            SELECT a.code, a.name, coalesce(p.name, ''),
                   coalesce(array_agg(n.month) FILTER (WHERE n.month IS NOT NULL), '{{}}'),
                   coalesce(array_agg(n.cnt) FILTER (WHERE n.month IS NOT NULL), '{{}}')
            FROM areas a
            LEFT JOIN areas p ON p.code = left(a.code, :plen)
            LEFT JOIN n ON n.code = a.code
            WHERE a.level = :level AND a.code LIKE :prefix
            GROUP BY a.code, a.name, p.name
            ORDER BY a.code
            """
        ),
        {
            **scope_params,
            "area": req.area.code,
            "start": local_midnight(starts[0]),
            "as_of": req.as_of,
            "level": req.level.value,
            "prefix": req.area.code + "%",
            "plen": parent_len,
        },
    ).all()
    index = {f"{d:%Y-%m}": i for i, d in enumerate(starts)}
    counts = np.zeros((len(rows), len(starts)), dtype=float)
    for r, row in enumerate(rows):
        for month, cnt in zip(row[3], row[4], strict=True):
            counts[r, index[month]] = cnt
    return tuple(r[0] for r in rows), [r[1] for r in rows], [r[2] for r in rows], counts


def emerging_hot_spots(session: Session, req: WarningRequest) -> Emerging:
    """Gi* per month for the areas of ``req.level``, Mann-Kendall on each z series, patterns."""
    starts = month_starts(req.as_of, req.months)
    codes, names, parents, counts = monthly_counts(session, req, starts)
    labels = [f"{d:%Y-%m}" for d in starts]
    if len(codes) < 3:
        return Emerging(req.level, labels, [], {})
    nb = weights.queen(session, req.level, req.area.code)
    if nb.codes != codes:  # pragma: no cover - both list the same areas in code order
        raise RuntimeError("areas changed during the analysis")
    z, bins, trends, patterns = space_time_patterns(counts, nb)
    locations = []
    summary: dict[str, int] = {}
    for i, code in enumerate(codes):
        summary[patterns[i]] = summary.get(patterns[i], 0) + 1
        locations.append(
            Location(
                code,
                names[i],
                parents[i],
                tuple(int(v) for v in counts[i]),
                tuple(float(v) for v in z[i]),
                tuple(int(v) for v in bins[i]),
                trends[i].z,
                trends[i].p,
                patterns[i],
            )
        )
    return Emerging(req.level, labels, locations, summary)


def space_time_patterns(
    counts: np.ndarray, nb: weights.Neighbours, fdr: bool = True
) -> tuple[np.ndarray, np.ndarray, list[MannKendall], list[str]]:
    """Gi* of every column of ``counts`` (areas × time steps), Mann-Kendall on each area's
    z-scores, and each area's Emerging Hot Spot pattern: (z, bins, trends, patterns)."""
    z = np.zeros(counts.shape, dtype=float)
    bins = np.zeros(counts.shape, dtype=int)
    for t in range(counts.shape[1]):
        result = gistar.analyse(counts[:, t], nb, fdr=fdr)
        z[:, t], bins[:, t] = result.z, result.bins
    trends = [mann_kendall(z[i]) for i in range(counts.shape[0])]
    patterns = [classify(bins[i], trends[i].z, trends[i].p) for i in range(counts.shape[0])]
    return z, bins, trends, patterns
