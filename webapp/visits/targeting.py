"""Scoring visit targets: facts measured in SQL, weighted here, with reasons people can read.

A **target** is a place with a point that someone should knock on:

- a *case target* is the household of a petitioner, at the location of a live case
  (open, or concluded and awaiting a follow-up, or followed up recently with the
  petitioner dissatisfied). Repeat petitions of one matter (``repeat_of_id`` chains)
  are one household: the chain is one target, at its most recent live case, and
  counts its repeats;
- a *grid target* is a grid that no case target leads to and where nobody has
  recorded a visit for long, at the grid's label point (a walk through the grid).

Each factor turns one measured fact into points with a weight the planner can
change; the score is their sum and every non-zero factor is a reason on the plan.
This module is pure: facts and weights in, scores and reasons out.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property

from webapp.errors import AppError


class Factor(enum.StrEnum):
    OPEN = "open"
    OVERDUE = "overdue"
    REPEAT = "repeat"
    DISSATISFIED = "dissatisfied"
    FOLLOW_UP_DUE = "follow_up_due"
    HOT_SPOT = "hot_spot"
    UNVISITED = "unvisited"
    LEADER_BACKLOG = "leader_backlog"

    @property
    def label(self) -> str:
        return FACTOR_LABELS[self]

    @property
    def unit(self) -> str:
        return FACTOR_UNITS[self]


FACTOR_LABELS = {
    Factor.OPEN: "未办结案件",
    Factor.OVERDUE: "超期未办结",
    Factor.REPEAT: "重复信访",
    Factor.DISSATISFIED: "回访不满意",
    Factor.FOLLOW_UP_DUE: "已办结待回访",
    Factor.HOT_SPOT: "位于 Gi* 热点网格",
    Factor.UNVISITED: "久未走访",
    Factor.LEADER_BACKLOG: "包案领导积案",
}
# What one weight unit buys, as the weights form explains it.
FACTOR_UNITS = {
    Factor.OPEN: "分",
    Factor.OVERDUE: "分",
    Factor.REPEAT: "分/次（最多计 5 次）",
    Factor.DISSATISFIED: "分",
    Factor.FOLLOW_UP_DUE: "分",
    Factor.HOT_SPOT: "分（95% 及以上置信度）",
    Factor.UNVISITED: "分/30 天（最多计 180 天）",
    Factor.LEADER_BACKLOG: "分",
}

DEFAULT_WEIGHTS: dict[str, float] = {
    Factor.OPEN: 10,
    Factor.OVERDUE: 20,
    Factor.REPEAT: 8,
    Factor.DISSATISFIED: 25,
    Factor.FOLLOW_UP_DUE: 15,
    Factor.HOT_SPOT: 15,
    Factor.UNVISITED: 3,
    Factor.LEADER_BACKLOG: 20,
}
MAX_WEIGHT = 1000.0


@dataclass(frozen=True)
class Rules:
    """How facts become factor units (configuration, not weights)."""

    repeat_cap: int = 5
    unvisited_unit_days: int = 30
    unvisited_cap_days: int = 180
    hot_spot_min_bin: int = 2  # Gi* bin: 2 = hot at 95 % confidence, 3 = 99 %
    backlog_days: int = 365  # a leader's case unresolved this long is a backlog case (积案)


@dataclass(frozen=True)
class Weights:
    """Points per unit of each factor (a planner may set any of them to 0)."""

    values: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __getitem__(self, factor: Factor) -> float:
        return self._points[factor.value]

    @cached_property
    def _points(self) -> dict[str, float]:
        return {f.value: float(self.values.get(f.value, 0.0)) for f in Factor}

    def as_dict(self) -> dict[str, float]:
        return dict(self._points)

    @classmethod
    def parse(
        cls, raw: Mapping[str, object], defaults: Mapping[str, float] | None = None
    ) -> Weights:
        """Read weights from a form or JSON (``w_<factor>`` or ``<factor>`` keys).

        Missing factors keep their default; anything that is not a number from 0 to
        1000 is refused with a Chinese message naming the factor.
        """
        base = {f.value: float((defaults or DEFAULT_WEIGHTS).get(f.value, 0.0)) for f in Factor}
        problems = {}
        for f in Factor:
            value = raw.get(f"w_{f.value}", raw.get(f.value))
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                problems[f.value] = f"「{f.label}」的权重须为数字"
                continue
            if not math.isfinite(number) or number < 0 or number > MAX_WEIGHT:
                problems[f.value] = f"「{f.label}」的权重须在 0 到 {MAX_WEIGHT:g} 之间"
                continue
            base[f.value] = number
        if problems:
            raise AppError(
                "invalid_weights",
                "权重有误：" + "；".join(problems.values()),
                400,
                "invalid weights",
                problems,
            )
        return cls(base)


@dataclass(frozen=True)
class Facts:
    """What SQL measured about one target."""

    kind: str  # "case" or "grid"
    open: bool = False
    overdue_days: int = 0
    repeats: int = 0
    dissatisfied: bool = False
    follow_up_due: bool = False
    hot_spot_bin: int = 0
    # Days since the last recorded visit, or (never visited) since the matter was first
    # raised; None for a grid that was never visited.
    unvisited_days: int | None = None
    visited_before: bool = False
    leader_case_days: int = 0  # days a leader's open case has been unresolved (0: no leader)


@dataclass(frozen=True)
class Reason:
    factor: str
    text: str
    points: float

    def as_dict(self) -> dict:
        return {"factor": self.factor, "text": self.text, "points": self.points}


@dataclass(frozen=True)
class Scored:
    points: float
    reasons: tuple[Reason, ...]


CONFIDENCE = {1: 90, 2: 95, 3: 99}


# -- the factor table: how each factor reads the facts, in Python and in SQL -----------
#
# A factor applies to a target at a *level*, a whole number from 0 (does not apply)
# up to a cap; the level turns into units, and units times the weight, rounded to
# 0.1, into points. The level is the one thing both languages compute: ``level``
# here, and ``sql`` over a row with the columns of :class:`Facts` (parameters
# ``:rule_<name>`` from :func:`rule_params`), so targets can be ranked in the
# database (``queries.ranked_targets``) with points taken from :func:`point_table`,
# which runs the same arithmetic as :func:`points`. Tests hold the two levels equal.


def _flag(value: bool) -> int:
    return 1 if value else 0


@dataclass(frozen=True)
class FactorRule:
    """How one factor reads the facts of a target."""

    level: Callable[[Facts, Rules], int]
    sql: str  # the same level in SQL; ``{f}`` is the row's alias
    max_level: Callable[[Rules], int]
    units: Callable[[int, Rules], float] = lambda level, rules: 1.0


def _one(rules: Rules) -> int:
    return 1


FACTOR_RULES: dict[Factor, FactorRule] = {
    Factor.OPEN: FactorRule(
        lambda f, r: _flag(f.open), "CASE WHEN {f}.open THEN 1 ELSE 0 END", _one
    ),
    Factor.OVERDUE: FactorRule(
        lambda f, r: _flag(f.overdue_days > 0),
        "CASE WHEN {f}.overdue_days > 0 THEN 1 ELSE 0 END",
        _one,
    ),
    Factor.REPEAT: FactorRule(
        lambda f, r: max(min(f.repeats, r.repeat_cap), 0),
        "greatest(least({f}.repeats, :rule_repeat_cap), 0)",
        lambda r: max(r.repeat_cap, 0),
        lambda level, r: float(level),
    ),
    Factor.DISSATISFIED: FactorRule(
        lambda f, r: _flag(f.dissatisfied), "CASE WHEN {f}.dissatisfied THEN 1 ELSE 0 END", _one
    ),
    Factor.FOLLOW_UP_DUE: FactorRule(
        lambda f, r: _flag(f.follow_up_due),
        "CASE WHEN {f}.follow_up_due THEN 1 ELSE 0 END",
        _one,
    ),
    Factor.HOT_SPOT: FactorRule(
        lambda f, r: _flag(f.hot_spot_bin >= r.hot_spot_min_bin),
        "CASE WHEN {f}.hot_spot_bin >= :rule_hot_spot_min_bin THEN 1 ELSE 0 END",
        _one,
    ),
    Factor.UNVISITED: FactorRule(
        lambda f, r: max(min(_unvisited(f, r), r.unvisited_cap_days), 0),
        "greatest(least(coalesce({f}.unvisited_days, :rule_unvisited_cap_days), "
        ":rule_unvisited_cap_days), 0)",
        lambda r: max(r.unvisited_cap_days, 0),
        lambda level, r: level / r.unvisited_unit_days,
    ),
    Factor.LEADER_BACKLOG: FactorRule(
        lambda f, r: _flag(f.leader_case_days >= r.backlog_days),
        "CASE WHEN {f}.leader_case_days >= :rule_backlog_days THEN 1 ELSE 0 END",
        _one,
    ),
}


def _units(facts: Facts, rules: Rules) -> list[tuple[str, float]]:
    """The factors that apply to ``facts`` with their units (before weighting)."""
    out: list[tuple[str, float]] = []
    for factor, rule in FACTOR_RULES.items():
        level = rule.level(facts, rules)
        if level > 0:
            out.append((factor.value, rule.units(level, rules)))
    return out


def _points(weight: float, units: float) -> float:
    """The points of one factor: weight times units, to 0.1 (0 or more)."""
    return round(weight * units, 1)


def point_table(factor: Factor, weights: Mapping[str, float], rules: Rules = Rules()) -> list[int]:
    """The points ``factor`` adds at each level (index 0: does not apply), in tenths.

    The entries are :func:`points`' own per-factor values, which are whole tenths:
    summed, a target's entries make its score exactly (divided by 10, it is
    :func:`points`, whose float sum rounds to that same tenth).
    """
    rule = FACTOR_RULES[factor]
    w = weights.get(factor.value, 0.0)
    out = [0]
    for level in range(1, rule.max_level(rules) + 1):
        p = _points(w, rule.units(level, rules))
        out.append(int(Decimal(repr(p)) * 10) if p > 0 else 0)
    return out


def rule_params(rules: Rules) -> dict[str, int]:
    """The ``:rule_*`` parameters of the factors' SQL levels."""
    return {
        "rule_repeat_cap": rules.repeat_cap,
        "rule_hot_spot_min_bin": rules.hot_spot_min_bin,
        "rule_unvisited_cap_days": rules.unvisited_cap_days,
        "rule_backlog_days": rules.backlog_days,
    }


def _text(factor: str, facts: Facts) -> str:
    if factor == "open":
        return "案件尚未办结"
    if factor == "overdue":
        return f"已超过办理期限 {facts.overdue_days} 天"
    if factor == "repeat":
        return f"重复信访 {facts.repeats} 次"
    if factor == "dissatisfied":
        return "最近一次回访群众不满意"
    if factor == "follow_up_due":
        return "已办结，待回访"
    if factor == "hot_spot":
        level = CONFIDENCE.get(min(facts.hot_spot_bin, 3), 99)
        return f"所在网格为 Gi* 热点（{level}% 置信度）"
    if factor == "unvisited":
        return _unvisited_text(facts)
    return f"包案领导积案，首次信访已 {facts.leader_case_days} 天"


def _weighted(facts: Facts, weights: Mapping[str, float], rules: Rules) -> list[tuple[str, float]]:
    """The factors that give ``facts`` points, with their points, in factor order."""
    out = []
    for factor, units in _units(facts, rules):
        p = _points(weights.get(factor, 0.0), units)
        if p > 0:
            out.append((factor, p))
    return out


def _total(weighted: list[tuple[str, float]]) -> float:
    total = 0.0
    for _, p in weighted:
        total += p
    return round(total, 1)


def points(facts: Facts, weights: Mapping[str, float], rules: Rules = Rules()) -> float:
    """The score of ``facts`` alone (no reasons): the fast path for ranking many targets.

    ``weights`` is a plain factor → points mapping (``Weights.as_dict()``).
    """
    return _total(_weighted(facts, weights, rules))


def score(facts: Facts, weights: Weights, rules: Rules = Rules()) -> Scored:
    """Weight the facts of one target; return its score and its non-zero reasons."""
    weighted = _weighted(facts, weights._points, rules)
    reasons = [Reason(factor, _text(factor, facts), p) for factor, p in weighted]
    reasons.sort(key=lambda r: -r.points)
    return Scored(_total(weighted), tuple(reasons))


def _unvisited(facts: Facts, rules: Rules) -> int:
    if facts.unvisited_days is None:
        return rules.unvisited_cap_days
    return max(facts.unvisited_days, 0)


def _unvisited_text(facts: Facts) -> str:
    if facts.kind == "grid":
        if facts.unvisited_days is None:
            return "网格内没有任何走访记录"
        return f"网格已 {facts.unvisited_days} 天无人走访"
    if facts.visited_before:
        return f"已 {facts.unvisited_days} 天未走访"
    return f"首次信访后 {facts.unvisited_days} 天未曾走访"


@dataclass(frozen=True)
class Candidate:
    """A target before weighting: where it is, who owns it, and its facts."""

    kind: str
    grid_code: str
    lon: float
    lat: float
    facts: Facts
    case_id: int | None = None
    leader_id: int | None = None
    accused_unit: str | None = None
    follow_up: bool = False
    label: str = ""

    @property
    def key(self) -> tuple[str, int | str]:
        return ("case", self.case_id) if self.kind == "case" else ("grid", self.grid_code)  # type: ignore[return-value]


@dataclass(frozen=True)
class Target:
    """A candidate with its score; its reasons are worded when first asked for."""

    candidate: Candidate
    score: float
    weights: Weights
    rules: Rules = Rules()

    @property
    def key(self):
        return self.candidate.key

    @cached_property
    def reasons(self) -> tuple[Reason, ...]:
        return score(self.candidate.facts, self.weights, self.rules).reasons


def grids_without_case_targets(
    cases: Iterable[Candidate], grids: Iterable[Candidate]
) -> list[Candidate]:
    """The grid candidates in which no case candidate lies (a case visit covers its grid)."""
    with_cases = {c.grid_code for c in cases}
    return [g for g in grids if g.grid_code not in with_cases]


def rank(candidates: Sequence[Candidate], weights: Weights, rules: Rules = Rules()) -> list[Target]:
    """Score every candidate and return those with points, best first.

    Ties go to case targets before grid targets, then to the longer overdue, then to
    the lower case id or grid code, so the order is stable for the same data.
    """
    w = weights.as_dict()
    out = []
    for c in candidates:
        p = points(c.facts, w, rules)
        if p > 0:
            out.append(Target(c, p, weights, rules))
    out.sort(
        key=lambda t: (
            -t.score,
            t.candidate.kind != "case",
            -t.candidate.facts.overdue_days,
            t.candidate.case_id or 0,
            t.candidate.grid_code,
        )
    )
    return out


def with_hot_spot(candidate: Candidate, bins: Mapping[str, int]) -> Candidate:
    """Return the candidate with the Gi* bin of its grid filled in."""
    b = int(bins.get(candidate.grid_code, 0))
    if b == candidate.facts.hot_spot_bin:
        return candidate
    return replace(candidate, facts=replace(candidate.facts, hot_spot_bin=b))
