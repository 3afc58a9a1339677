"""Sweep periods: which day or month a moment falls in, in the county's local time.

Pure functions of dates and configuration, so they are tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from webapp.field.models import SweepPeriod

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, order=True)
class Period:
    """One sweep period: ``start`` included, ``end`` excluded (local dates)."""

    kind: SweepPeriod
    start: date

    @property
    def end(self) -> date:
        if self.kind is SweepPeriod.DAILY:
            return self.start + timedelta(days=1)
        return _add_months(self.start, 1)

    @property
    def label(self) -> str:
        if self.kind is SweepPeriod.DAILY:
            return f"{self.start.year}年{self.start.month}月{self.start.day}日"
        return f"{self.start.year}年{self.start.month}月"

    @property
    def short_label(self) -> str:
        if self.kind is SweepPeriod.DAILY:
            return f"{self.start.month}/{self.start.day}"
        return f"{self.start.year % 100:02d}/{self.start.month:02d}"

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as aware datetimes (local midnight to local midnight)."""
        return (
            datetime.combine(self.start, datetime.min.time(), LOCAL_TZ),
            datetime.combine(self.end, datetime.min.time(), LOCAL_TZ),
        )

    def previous(self) -> Period:
        if self.kind is SweepPeriod.DAILY:
            return Period(self.kind, self.start - timedelta(days=1))
        return Period(self.kind, _add_months(self.start, -1))


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(kind: SweepPeriod | str, moment: datetime) -> Period:
    """Return the period of ``kind`` that ``moment`` (aware, or UTC if naive) falls in."""
    kind = SweepPeriod(kind)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(LOCAL_TZ).date()
    if kind is SweepPeriod.MONTHLY:
        local = local.replace(day=1)
    return Period(kind, local)


def recent_periods(current: Period, count: int) -> list[Period]:
    """Return ``count`` periods ending with ``current``, oldest first."""
    out = [current]
    while len(out) < count:
        out.append(out[-1].previous())
    return list(reversed(out))


def sweep_period_kind(config: dict, county_code: str) -> SweepPeriod:
    """The sweep period set for ``county_code`` (``SWEEP_PERIODS``), else ``SWEEP_PERIOD``."""
    per_county = config.get("SWEEP_PERIODS") or {}
    return SweepPeriod(per_county.get(county_code) or config.get("SWEEP_PERIOD", "monthly"))
