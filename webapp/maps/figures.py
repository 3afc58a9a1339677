"""The figures a choropleth can show, their classes and their colours (pure functions).

Definitions follow docs/domain.md and are computed in SQL by ``maps.queries.area_figures``
over the cases *raised in the period* that match the filter:

- 案件数: cases raised;
- 每千人案件数: cases raised per 1,000 residents (no figure without a population);
- 化解率: resolved (已化解 or 已销号) / raised;
- 超期未办结: cases not yet concluded whose deadline to conclude has passed;
- 群众满意率: (满意 + 基本满意) / cases with a recorded follow-up;
- 重复信访: cases that repeat a matter already raised (not 初信初访).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

# ColorBrewer YlOrRd, light to dark; a "higher is better" figure reads it the other way.
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
NO_DATA_COLOUR = "#d9d9d9"


@dataclass(frozen=True)
class AreaFigures:
    """The counts behind every figure of one area."""

    raised: int = 0
    people: int = 0
    resolved: int = 0
    overdue: int = 0
    followed_up: int = 0
    satisfied: int = 0
    repeats: int = 0
    population: int | None = None

    def value(self, figure: str) -> float | None:
        """The figure's value for this area, or None where it is undefined (no denominator)."""
        if figure == "count":
            return float(self.raised)
        if figure == "per1000":
            return self.raised / self.population * 1000.0 if self.population else None
        if figure == "resolution":
            return self.resolved / self.raised * 100.0 if self.raised else None
        if figure == "overdue":
            return float(self.overdue)
        if figure == "satisfaction":
            return self.satisfied / self.followed_up * 100.0 if self.followed_up else None
        if figure == "repeat":
            return float(self.repeats)
        raise KeyError(figure)


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    decimals: int
    better: Literal["lower", "higher"]

    def format(self, value: float | None) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        text = f"{value:,.{self.decimals}f}"
        return f"{text}%" if self.unit == "%" else text


FIGURES: dict[str, Figure] = {
    f.key: f
    for f in (
        Figure("count", "案件数", "件", 0, "lower"),
        Figure("per1000", "每千人案件数", "件/千人", 2, "lower"),
        Figure("resolution", "化解率", "%", 1, "higher"),
        Figure("overdue", "超期未办结", "件", 0, "lower"),
        Figure("satisfaction", "群众满意率", "%", 1, "higher"),
        Figure("repeat", "重复信访", "件", 0, "lower"),
    )
}


@dataclass(frozen=True)
class ColourClass:
    lower: float
    upper: float
    colour: str
    label: str


def class_breaks(values: list[float | None], k: int = 5) -> list[float]:
    """Quantile class breaks (k+1 edges, ascending, distinct) of the defined values."""
    data = np.array([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if data.size == 0:
        return []
    k = max(1, min(k, np.unique(data).size))  # never more classes than distinct values
    edges = np.unique(np.quantile(data, np.linspace(0.0, 1.0, k + 1)))
    if edges.size == 1:
        return [float(edges[0]), float(edges[0])]
    return [float(e) for e in edges]


def colour_classes(figure: Figure, values: list[float | None], k: int = 5) -> list[ColourClass]:
    """The legend's classes: value ranges with their colours, worst colour for the worst values."""
    edges = class_breaks(values, k)
    if not edges:
        return []
    n = len(edges) - 1
    # Spread n classes over the palette so the darkest always means "worst".
    picks = (
        [SEQUENTIAL[round(i * (len(SEQUENTIAL) - 1) / max(n - 1, 1))] for i in range(n)]
        if n > 1
        else [SEQUENTIAL[2]]
    )
    if figure.better == "higher":
        picks = picks[::-1]
    out = []
    for i in range(n):
        lo, hi = edges[i], edges[i + 1]
        label = figure.format(lo) if lo == hi else f"{figure.format(lo)} – {figure.format(hi)}"
        out.append(ColourClass(lo, hi, picks[i], label))
    return out


def colour_for(value: float | None, classes: list[ColourClass]) -> str:
    """The colour of the class ``value`` falls in (upper edges inclusive, as quantiles are)."""
    if value is None or not classes or math.isnan(value):
        return NO_DATA_COLOUR
    for c in classes:
        if value <= c.upper:
            return c.colour
    return classes[-1].colour
