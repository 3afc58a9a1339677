"""Working days on the national holiday calendar, with its make-up working days (调休).

Source: the State Council General Office's yearly notice on public holidays
(国务院办公厅关于××年部分节假日安排的通知), as kept by the maintained PyPI package
``chinesecalendar`` (import name ``chinese_calendar``), which covers 2004 up to the
latest notice published before its release. A county can add days the package does
not have yet (a notice is published in November or December for the next year) with
the ``HOLIDAY_OVERRIDES`` setting: ``{"2027-01-01": "holiday", "2027-02-07": "workday"}``;
an override always wins.

For a year that neither the package nor the overrides cover, working days are
Monday to Friday: the estimate is marked (:meth:`WorkCalendar.known`) so pages can
say that a working-day deadline in that year is provisional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar
from chinese_calendar import constants as _cc


@lru_cache(maxsize=1)
def _package_days() -> tuple[frozenset[date], frozenset[date], range]:
    holidays = frozenset(_cc.holidays)
    workdays = frozenset(_cc.workdays)
    years = range(min(d.year for d in holidays), max(d.year for d in holidays) + 1)
    return holidays, workdays, years


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days: holidays off, make-up days on, weekends off otherwise.

    ``holidays`` and ``workdays`` are the official exceptions to the Monday-to-Friday
    week; ``known_years`` the years whose notice is included.
    """

    holidays: frozenset[date]
    workdays: frozenset[date]
    known_years: frozenset[int] = field(default_factory=frozenset)

    def is_workday(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def known(self, day: date) -> bool:
        """Whether ``day``'s year is covered by an official notice (not an estimate)."""
        return day.year in self.known_years

    def add_workdays(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself not counted)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        day = start
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return day

    def next_workday(self, day: date) -> date:
        """``day`` if it is a working day, else the first working day after it."""
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day


def national_calendar(overrides: Mapping[str, str] | None = None) -> WorkCalendar:
    """The national calendar from ``chinesecalendar``, with a county's ``overrides`` on top."""
    holidays, workdays, years = _package_days()
    known = set(years)
    if overrides:
        hol, work = set(holidays), set(workdays)
        for text, kind in overrides.items():
            day = date.fromisoformat(text)
            if kind == "holiday":
                hol.add(day)
                work.discard(day)
            elif kind == "workday":
                work.add(day)
                hol.discard(day)
            else:
                raise ValueError(
                    f"HOLIDAY_OVERRIDES: {text} must be 'holiday' or 'workday', not {kind!r}"
                )
            known.add(day.year)
        holidays, workdays = frozenset(hol), frozenset(work)
    return WorkCalendar(holidays, workdays, frozenset(known))


def package_version() -> str:
    return getattr(chinese_calendar, "__version__", "?")
