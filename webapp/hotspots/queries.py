"""The values hot-spot analysis runs on: case counts per area, raw or per 1,000 residents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.grid.models import AreaLevel
from webapp.grid.queries import CASE_CODE_COLUMN, get_area
from webapp.hotspots import gistar, weights
from webapp.stats.queries import (
    LOCAL_TZ,
    Filters,
    Grouping,
    Period,
    StatsQuery,
    TallyPlan,
    build_tally_sql,
    local_midnight,
    rows_of,
    tally_plan,
)


@dataclass(frozen=True)
class CaseFilter:
    """Which cases count: a period on reported_at, and optional category/channel/status lists."""

    date_from: datetime | None = None
    date_to: datetime | None = None
    category_ids: tuple[int, ...] = ()
    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def sql(self, alias: str = "c") -> tuple[str, dict]:
        # The kinds of case are the statistics' filter; the period is on reported_at.
        kinds, params = Filters(self.category_ids, self.channels, self.statuses).sql(alias)
        parts = [kinds]
        if self.date_from is not None:
            parts.append(f"{alias}.reported_at >= :f_from")
            params["f_from"] = self.date_from
        if self.date_to is not None:
            parts.append(f"{alias}.reported_at < :f_to")
            params["f_to"] = self.date_to
        return " AND ".join(parts), params


def area_counts(
    session: Session,
    level: AreaLevel,
    within: str | None,
    case_filter: CaseFilter,
    scope: tuple[str, dict] = ("true", {}),
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Return (codes, case counts, populations) for every area of ``level`` within ``within``.

    Areas with no case count 0; every area of the level is listed (in code order), so
    the result lines up with :mod:`webapp.hotspots.weights`.
    """
    tallied = _tallied_counts(session, level, within, case_filter, scope)
    if tallied is not None:
        return tallied
    column = CASE_CODE_COLUMN[level]
    fsql, fparams = case_filter.sql("c")
    ssql, sparams = scope
    within_cond = ""
    if within:
        within_col = CASE_CODE_COLUMN.get(AreaLevel(_level_of(within)))
        within_cond = f"AND c.{within_col} = :within"
    rows = session.execute(
        text(
            f"""
            SELECT a.code, coalesce(n.cnt, 0), a.population
            FROM areas a
            LEFT JOIN (
                SELECT c.{column} AS code, count(*) AS cnt
                FROM cases c
                WHERE {fsql} AND {ssql} {within_cond}
                GROUP BY c.{column}
            ) n ON n.code = a.code
            WHERE a.level = :level AND a.code LIKE :prefix
            ORDER BY a.code
            """
        ),
        {
            **fparams,
            **sparams,
            "level": level.value,
            "prefix": (within or "") + "%",
            "within": within,
        },
    ).all()
    codes = tuple(r[0] for r in rows)
    counts = np.array([r[1] for r in rows], dtype=float)
    pops = np.array([r[2] if r[2] is not None else np.nan for r in rows], dtype=float)
    return codes, counts, pops


def tally_query(
    session: Session,
    level: AreaLevel,
    within: str | None,
    case_filter: CaseFilter,
    scope: tuple[str, dict],
) -> tuple[StatsQuery, TallyPlan] | None:
    """The statistics query counting ``case_filter``'s cases by areas of ``level``, and the
    whole months it reads from the tallies; None where the tallies may differ from the cases.

    Only for a period of whole local days with no kind of case chosen, when the
    statistics read whole months from the tallies (``stats.queries.tally_plan``: then no
    case is reported at or after now, so "reported in the period" is the figures'
    ``cases``, and a period that reaches now holds its last month whole). The maps use
    the months for their counts and heat cells too (:func:`ragged_days`).
    """
    if within is None or case_filter.date_from is None or case_filter.date_to is None:
        return None
    if case_filter.category_ids or case_filter.channels or case_filter.statuses:
        return None
    start, stop = (t.astimezone(LOCAL_TZ) for t in (case_filter.date_from, case_filter.date_to))
    if start.time() != time.min or stop.time() != time.min:
        return None
    area = get_area(session, within)
    if area is None:
        return None
    now = datetime.now(UTC)
    q = StatsQuery(
        area=area,
        period=Period(start.date(), stop.date() - timedelta(days=1), now),
        grouping=Grouping("area", level),
        scope=scope,
        only=("cases",),
    )
    plan = tally_plan(session, q, now)
    return None if plan is None else (q, plan)


def ragged_days(
    case_filter: CaseFilter, months: tuple[date, date]
) -> list[tuple[datetime, datetime]]:
    """The instants ``[from, to)`` of ``case_filter``'s period outside the whole ``months``.

    Empty when the months cover the period (a period that reaches now may end inside
    its last month: :func:`tally_query` reads that month whole).
    """
    lo, hi = local_midnight(months[0]), local_midnight(months[1])
    out = []
    if case_filter.date_from < lo:
        out.append((case_filter.date_from, lo))
    if hi < case_filter.date_to:
        out.append((hi, case_filter.date_to))
    return out


def _tallied_counts(
    session: Session,
    level: AreaLevel,
    within: str | None,
    case_filter: CaseFilter,
    scope: tuple[str, dict],
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray] | None:
    """The counts of :func:`area_counts` from the case tallies, or None where they may differ
    (see :func:`tally_query`)."""
    planned = tally_query(session, level, within, case_filter, scope)
    if planned is None:
        return None
    q, plan = planned
    rows = rows_of(session, q, *build_tally_sql(q, plan))
    codes = tuple(r["code"] for r in rows)
    counts = np.array([r["cases"] for r in rows], dtype=float)
    pops = np.array(
        [r["population"] if r["population"] is not None else np.nan for r in rows], dtype=float
    )
    return codes, counts, pops


def _level_of(code: str) -> str:
    return {6: "county", 9: "township", 12: "village"}.get(len(code), "grid")


def hot_spots(
    session: Session,
    level: AreaLevel,
    within: str | None,
    case_filter: CaseFilter,
    scope: tuple[str, dict] = ("true", {}),
    per_1000: bool = False,
    neighbourhood: str = "queen",
    threshold_m: float | None = None,
    fdr: bool = False,
) -> gistar.HotSpots:
    """Gi* hot spots of case counts per area (or per 1,000 residents) for the filter.

    With ``per_1000``, areas without a population figure are left out of the analysis
    (they get no value to compare), and their neighbours are computed without them.
    """
    codes, counts, pops = area_counts(session, level, within, case_filter, scope)
    if neighbourhood == "distance":
        if not threshold_m or threshold_m <= 0:
            raise ValueError("a distance band needs a positive threshold in metres")
        nb = weights.distance_band(session, level, threshold_m, within)
    else:
        nb = weights.queen(session, level, within)
    if nb.codes != codes:  # pragma: no cover - both come from the same ordered query
        raise RuntimeError("areas changed during the analysis")
    values = counts
    if per_1000:
        keep = np.isfinite(pops) & (pops > 0)
        values = np.where(keep, counts / np.where(keep, pops, 1) * 1000.0, np.nan)
        if not keep.all():
            nb = _subset(nb, keep)
            values = values[keep]
    return gistar.analyse(values, nb, fdr=fdr)


def _subset(nb: weights.Neighbours, keep: np.ndarray) -> weights.Neighbours:
    new_index = np.cumsum(keep) - 1
    mask = keep[nb.i] & keep[nb.j]
    codes = tuple(c for c, k in zip(nb.codes, keep.tolist(), strict=True) if k)
    return weights.Neighbours(
        codes, new_index[nb.i[mask]], new_index[nb.j[mask]], nb.kind, nb.threshold_m
    )
