"""Door-to-door visits: plans, the people on them, their stops, and what each visit found.

A plan (走访计划) covers one area and a date range. Each stop is a target (a case's
household, or a grid nobody has visited for long) given to one person on one day in
walking order; a stop nobody could take stays on the plan unassigned (``user_id``
NULL) with the reason. Each submitted outcome is a ``visit_records`` row carrying the
id the phone made, so a resend is recorded once.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from webapp.cases.vocab import Satisfaction, sql_in
from webapp.db import Base


class PlanStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"

    @property
    def label(self) -> str:
        return {"draft": "草稿", "published": "已发布"}[self]


class TargetKind(enum.StrEnum):
    CASE = "case"  # the household of a case's petitioner, at the case's location
    GRID = "grid"  # a grid not visited for long, at its label point

    @property
    def label(self) -> str:
        return {"case": "案件走访", "grid": "网格巡访"}[self]


class Outcome(enum.StrEnum):
    DONE = "done"
    NOBODY_HOME = "nobody_home"
    REFUSED = "refused"

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self]


OUTCOME_LABELS = {
    Outcome.DONE: "已走访",
    Outcome.NOBODY_HOME: "无人在家",
    Outcome.REFUSED: "拒绝接访",
}
# A stop's state: pending until an outcome is recorded, then the latest outcome.
STOP_STATES = ("pending", *(o.value for o in Outcome))
STATE_LABELS = {"pending": "待走访", **{o.value: o.label for o in Outcome}}


class LegKind(enum.StrEnum):
    """How a stop's leg was measured."""

    ROAD = "road"  # along the county's road network (pgRouting)
    STRAIGHT = "straight"  # no network to route on: the geodesic straight line
    NO_PATH = "no_path"  # the network does not join the two ends: the straight line instead


class VisitPlan(Base):
    """A visit plan for one area and a date range, drafted by a planner, then published."""

    __tablename__ = "visit_plans"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_in(PlanStatus)}", name="status"),
        CheckConstraint("date_to >= date_from", name="dates"),
        CheckConstraint("start_mode IN ('committee','point')", name="start_mode"),
        Index(
            "ix_visit_plans_area_code",
            "area_code",
            postgresql_ops={"area_code": "text_pattern_ops"},
        ),
        Index(
            "uq_visit_plans_client_id",
            "client_id",
            unique=True,
            postgresql_where="client_id IS NOT NULL",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The id of the new-plan form that made it, and a fingerprint of what that form sent
    # (migration u02): the same form sent again is this plan, not a second one.
    client_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    request_hash: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    area_code: Mapped[str] = mapped_column(ForeignKey("areas.code", onupdate="CASCADE"))
    date_from: Mapped[date] = mapped_column(Date)
    date_to: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default=PlanStatus.DRAFT.value)
    # The weights the targets were scored with (factor → points), as the planner set them.
    weights: Mapped[dict] = mapped_column(JSONB)
    # 'committee': each person starts at their village committee; 'point': at start_point.
    start_mode: Mapped[str] = mapped_column(String(16), server_default="committee")
    start_point = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    # Targets that scored but were not stored (beyond the unassigned list's limit).
    overflow: Mapped[int] = mapped_column(Integer, server_default="0")
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped by every edit, so a worker's page can say the plan changed.
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    @property
    def status_enum(self) -> PlanStatus:
        return PlanStatus(self.status)

    @property
    def published(self) -> bool:
        return self.status == PlanStatus.PUBLISHED.value


class VisitPlanPerson(Base):
    """A person available on a plan: how many visits a day, and where each day starts."""

    __tablename__ = "visit_plan_people"
    __table_args__ = (CheckConstraint("daily_capacity BETWEEN 1 AND 200", name="daily_capacity"),)

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("visit_plans.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    daily_capacity: Mapped[int] = mapped_column(Integer)
    start_point = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    start_label: Mapped[str] = mapped_column(String(200))


class VisitStop(Base):
    """One target on a plan: scored with reasons, given to a person and a day, in route order."""

    __tablename__ = "visit_stops"
    __table_args__ = (
        CheckConstraint(f"kind IN {sql_in(TargetKind)}", name="kind"),
        CheckConstraint("(kind = 'case') = (case_id IS NOT NULL)", name="case_target"),
        CheckConstraint("(user_id IS NULL) = (day IS NULL)", name="assigned_day"),
        CheckConstraint("state IN (" + ",".join(f"'{s}'" for s in STOP_STATES) + ")", name="state"),
        CheckConstraint(f"leg_kind IS NULL OR leg_kind IN {sql_in(LegKind)}", name="leg_kind"),
        Index(
            "uq_visit_stops_plan_case",
            "plan_id",
            "case_id",
            unique=True,
            postgresql_where="case_id IS NOT NULL",
        ),
        Index(
            "uq_visit_stops_plan_grid",
            "plan_id",
            "grid_code",
            unique=True,
            postgresql_where="kind = 'grid'",
        ),
        Index("ix_visit_stops_plan_user_day", "plan_id", "user_id", "day", "seq"),
        Index("ix_visit_stops_user_day", "user_id", "day", postgresql_where="user_id IS NOT NULL"),
        Index("ix_visit_stops_case_id", "case_id", postgresql_where="case_id IS NOT NULL"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("visit_plans.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    grid_code: Mapped[str] = mapped_column(String(20))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    score: Mapped[float] = mapped_column(Float)
    # [{"factor": ..., "text": "已超过办理期限 12 天", "points": 20.0}, ...]
    reasons: Mapped[list] = mapped_column(JSONB)
    # A follow-up (回访): recording it done asks for the petitioner's satisfaction.
    follow_up: Mapped[bool] = mapped_column(Boolean, server_default="false")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    day: Mapped[date | None] = mapped_column(Date)
    seq: Mapped[int | None] = mapped_column(Integer)
    # Metres from the previous stop (or the day's start point): along roads when the
    # county has a road network and pgRouting, else geodesic (``leg_kind`` says which).
    leg_m: Mapped[float | None] = mapped_column(Float)
    leg_kind: Mapped[str | None] = mapped_column(String(8))
    # The line walked for a road leg (drawn on the plan map); NULL for a straight leg.
    leg_path = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=False))
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    unassigned_reason: Mapped[str | None] = mapped_column(String(200))
    added_by_hand: Mapped[bool] = mapped_column(Boolean, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VisitRecord(Base):
    """One outcome submitted from the field: once per client id, whatever the resends."""

    __tablename__ = "visit_records"
    __table_args__ = (
        CheckConstraint(f"outcome IN {sql_in(Outcome)}", name="outcome"),
        CheckConstraint(
            f"satisfaction IS NULL OR satisfaction IN {sql_in(Satisfaction)}", name="satisfaction"
        ),
        Index("ix_visit_records_grid_received", "grid_code", "received_at"),
        Index("ix_visit_records_case_id", "case_id", postgresql_where="case_id IS NOT NULL"),
        Index("ix_visit_records_stop_id", "stop_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Made by the phone for this submission: the same id again is the same outcome.
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    stop_id: Mapped[int] = mapped_column(ForeignKey("visit_stops.id", ondelete="RESTRICT"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("visit_plans.id", ondelete="RESTRICT"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    grid_code: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(16))
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, server_default="")
    # The case opened for a new problem found on this visit.
    new_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # Where the phone was, when it knew (WGS84).
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    # When the phone says the visit happened, and when the server stored it.
    visited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
