"""The figures a choropleth can show, their classes and their colours (pure functions).

What a figure means is not decided here: every figure is one of the statistics
figures (``webapp.stats.figures``: its SQL, Chinese name, unit and glossary text),
computed for the map's areas by ``stats.queries`` through ``maps.queries.area_figures``
with the map's period, filters and the user's scope. This module only says which of
them a map offers, how many decimals they get and which way is better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from webapp.stats import figures as stats_figures

# ColorBrewer YlOrRd, light to dark; a "higher is better" figure reads it the other way.
SEQUENTIAL = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
NO_DATA_COLOUR = "#d9d9d9"


@dataclass(frozen=True)
class Figure:
    """A statistics figure as a map shows it."""

    key: str  # the key in webapp.stats.figures (and the glossary's anchor)
    decimals: int
    better: Literal["lower", "higher"]

    @property
    def definition(self) -> stats_figures.Figure:
        return stats_figures.BY_KEY[self.key]

    @property
    def label(self) -> str:
        return self.definition.name

    @property
    def unit(self) -> str:
        return self.definition.unit

    def format(self, value: float | None) -> str:
        """The value for people: rates (fractions) as percentages, "—" where undefined."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        if self.unit == "%":
            return f"{value * 100:,.{self.decimals}f}%"
        return f"{value:,.{self.decimals}f}"


FIGURES: dict[str, Figure] = {
    f.key: f
    for f in (
        Figure("cases", 0, "lower"),
        Figure("per_1000", 2, "lower"),
        Figure("resolution_rate", 1, "higher"),
        Figure("overdue", 0, "lower"),
        Figure("satisfaction_rate", 1, "higher"),
        Figure("repeats", 0, "lower"),
    )
}
# What the maps read of each area: the figures offered, and the people involved
# (the heat map's tooltips).
AREA_FIGURE_KEYS = (*FIGURES, "people")


@dataclass(frozen=True)
class AreaFigures:
    """The statistics figures of one area (a row of ``stats.queries.figure_rows``)."""

    values: Mapping[str, float | int | None] = field(default_factory=dict)
    population: int | None = None

    def value(self, key: str) -> float | None:
        """The figure's value for this area, or None where it is undefined (no denominator)."""
        v = self.values.get(key)
        return None if v is None else float(v)

    @property
    def cases(self) -> int:
        return int(self.values.get("cases") or 0)

    @property
    def people(self) -> int:
        return int(self.values.get("people") or 0)


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
