"""Time limits of the petition regulation, as functions of dates and configuration.

《信访工作条例》 (in force since 2022-05-01) gives the limits in days (日, calendar days)
or working days (工作日). A period starts on the day after the event and ends at the
end of its last day, local time (Asia/Shanghai): a case registered on 3 March with 15
days to assign is due by the end of 18 March, and overdue from 00:00 on 19 March.
``due_at`` is stored as that instant (midnight after the last day).

When the last day of a calendar-day period is a public holiday or a weekend, the
period ends on the next working day (the general rule for legal periods, e.g.
民事诉讼法第八十五条、行政诉讼法第一百零六条); ``roll_to_workday`` turns this off.

Every number is configurable per county (``CASE_LIMITS`` in the app config:
``{"default": {...}, "410726": {...}}``), e.g. for 长沙县's 三天工作法.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from webapp.cases.workdays import WorkCalendar

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Limits:
    """The time limits of one county, in days unless named ``*_workdays``."""

    register_assign_days: int = 15  # register and assign or forward (第22条)
    notify_days: int = 15  # the receiving body tells the petitioner (第23条)
    objection_workdays: int = 5  # the receiving body objects (第23条)
    conclude_days: int = 60  # conclude a request from acceptance (第34条)
    extension_max_days: int = 30  # one extension, at most this long (第34条)
    review_request_days: int = 30  # ask for a review after the written answer (第35条)
    review_answer_days: int = 30  # answer the review (第35条)
    reexam_request_days: int = 30  # ask for re-examination after the review (第35条)
    reexam_answer_days: int = 30  # answer the re-examination (第35条)
    due_soon_days: int = 3  # a case due within this many days is listed as due soon
    roll_to_workday: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (not isinstance(value, int) or value < 0):
                raise ValueError(
                    f"CASE_LIMITS: {f.name} must be a whole number >= 0, not {value!r}"
                )


def limits_for(config: Mapping[str, Mapping], county_code: str) -> Limits:
    """The limits of ``county_code``: the defaults, then ``default``, then the county's own."""
    limits = Limits()
    for key in ("default", county_code):
        overrides = dict(config.get(key) or {})
        unknown = set(overrides) - {f.name for f in fields(Limits)}
        if unknown:
            raise ValueError(f"CASE_LIMITS[{key!r}]: unknown limits {sorted(unknown)}")
        limits = replace(limits, **overrides)
    return limits


def local_date(moment: datetime) -> date:
    """The date in the county's time zone of an aware ``moment``."""
    return moment.astimezone(LOCAL_TZ).date()


def end_of(day: date) -> datetime:
    """The instant a period whose last day is ``day`` runs out: the following midnight."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL_TZ)


def last_day_of(due_at: datetime) -> date:
    """The last day of a period that runs out at ``due_at``."""
    return local_date(due_at - timedelta(microseconds=1))


def days_limit(start: datetime, days: int, limits: Limits, calendar: WorkCalendar) -> datetime:
    """When a period of ``days`` calendar days from ``start`` runs out."""
    last = local_date(start) + timedelta(days=days)
    if limits.roll_to_workday:
        last = calendar.next_workday(last)
    return end_of(last)


def workdays_limit(start: datetime, workdays: int, calendar: WorkCalendar) -> datetime:
    """When a period of ``workdays`` working days from ``start`` runs out."""
    return end_of(calendar.add_workdays(local_date(start), workdays))


def extended(due_at: datetime, days: int, limits: Limits, calendar: WorkCalendar) -> datetime:
    """``due_at`` pushed back by ``days`` calendar days (an approved extension)."""
    last = last_day_of(due_at) + timedelta(days=days)
    if limits.roll_to_workday:
        last = calendar.next_workday(last)
    return end_of(last)


OVERDUE = "overdue"
DUE_SOON = "due_soon"


def urgency(due_at: datetime | None, now: datetime, limits: Limits) -> str | None:
    """``overdue`` once ``due_at`` has passed, ``due_soon`` within ``due_soon_days``, else None."""
    if due_at is None:
        return None
    if now >= due_at:
        return OVERDUE
    if due_at - now <= timedelta(days=limits.due_soon_days):
        return DUE_SOON
    return None
