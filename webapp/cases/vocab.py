"""The fixed vocabulary of cases: channels, classes, statuses, with their Chinese labels.

Categories are data (the ``categories`` table); these lists come from the petition
regulation and change only with it.
"""

from __future__ import annotations

import enum
from datetime import date


class Channel(enum.StrEnum):
    VISIT = "visit"
    LETTER = "letter"
    ONLINE = "online"
    SMS = "sms"
    HOTLINE = "hotline"
    MAILBOX = "mailbox"
    LEADER = "leader"
    GRID_SWEEP = "grid_sweep"
    VIDEO = "video"

    @property
    def label(self) -> str:
        return CHANNEL_LABELS[self]


CHANNEL_LABELS = {
    Channel.VISIT: "来访",
    Channel.LETTER: "来信",
    Channel.ONLINE: "网上信访",
    Channel.SMS: "手机短信",
    Channel.HOTLINE: "电话/12345",
    Channel.MAILBOX: "书记(领导)信箱",
    Channel.LEADER: "领导接访/下访",
    Channel.GRID_SWEEP: "网格员排查",
    Channel.VIDEO: "视频接访",
}


class CaseClass(enum.StrEnum):
    """The three classes of item (《信访工作条例》第29-31条)."""

    SUGGESTION = "suggestion"
    ACCUSATION = "accusation"
    REQUEST = "request"

    @property
    def label(self) -> str:
        return CLASS_LABELS[self]


CLASS_LABELS = {
    CaseClass.SUGGESTION: "建议意见类",
    CaseClass.ACCUSATION: "检举控告类",
    CaseClass.REQUEST: "申诉求决类",
}


class Status(enum.StrEnum):
    REGISTERED = "registered"
    ACCEPTED = "accepted"
    NOT_ACCEPTED = "not_accepted"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    CONCLUDED = "concluded"
    REVIEWING = "reviewing"
    REEXAMINING = "reexamining"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.REGISTERED: "已登记",
    Status.ACCEPTED: "已受理",
    Status.NOT_ACCEPTED: "不予受理",
    Status.ASSIGNED: "已交办",
    Status.IN_PROGRESS: "办理中",
    Status.CONCLUDED: "已办结",
    Status.REVIEWING: "复查中",
    Status.REEXAMINING: "复核中",
    Status.ESCALATED: "已上报上级",
    Status.RESOLVED: "已化解",
    Status.CLOSED: "已销号",
}

# Statuses in which the matter counts as resolved (化解) for the figures.
# The days a case (and so a figure, a filter, a sweep) can be about: a date far outside
# them is a typing mistake, and date arithmetic on it (the day after 9999-12-31, the
# months before 0001-01-01) would fail.
EARLIEST_DAY, LATEST_DAY = date(1990, 1, 1), date(2099, 12, 31)

RESOLVED_STATUSES = frozenset({Status.RESOLVED, Status.CLOSED})
# Statuses in which nobody needs to act any more.
FINAL_STATUSES = frozenset({Status.RESOLVED, Status.CLOSED, Status.NOT_ACCEPTED})


class Opinion(enum.StrEnum):
    """The written opinion that concludes a request (处理意见书, 第32条)."""

    SUPPORT = "support"
    EXPLAIN = "explain"
    NOT_SUPPORT = "not_support"

    @property
    def label(self) -> str:
        return {"support": "予以支持", "explain": "解释说明", "not_support": "不予支持"}[self]


class Satisfaction(enum.StrEnum):
    SATISFIED = "satisfied"
    BASICALLY = "basically"
    DISSATISFIED = "dissatisfied"

    @property
    def label(self) -> str:
        return {"satisfied": "满意", "basically": "基本满意", "dissatisfied": "不满意"}[self]


class ResolvedLevel(enum.StrEnum):
    """Where a matter ended: 小事不出村、大事不出镇、难事不出县."""

    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY = "county"
    ABOVE = "above"

    @property
    def label(self) -> str:
        return {"village": "村级", "township": "乡镇级", "county": "县级", "above": "县以上"}[self]


class Supervision(enum.StrEnum):
    """督办, and 挂牌督办 for listed cases (第39条)."""

    SUPERVISED = "supervised"
    LISTED = "listed"

    @property
    def label(self) -> str:
        return {"supervised": "督办", "listed": "挂牌督办"}[self]


class ReviewStage(enum.StrEnum):
    """How far an appeal went: 复查 answered, or 复核 answered (final, 第36条)."""

    REVIEWED = "reviewed"
    REEXAMINED = "reexamined"

    @property
    def label(self) -> str:
        return {"reviewed": "已复查", "reexamined": "已复核（终结）"}[self]


def sql_in(values) -> str:
    """Render the values of an enum as a SQL ``IN`` list for check constraints."""
    return "(" + ",".join(f"'{v.value}'" for v in values) + ")"
