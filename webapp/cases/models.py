"""Cases, their categories and their append-only event log."""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
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
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from webapp.cases.vocab import (
    FINAL_STATUSES,
    CaseClass,
    Channel,
    Opinion,
    ResolvedLevel,
    ReviewStage,
    Satisfaction,
    Status,
    Supervision,
    sql_in,
)
from webapp.db import Base

# Statuses a case is never open in, whatever the as-of instant (ix_cases_open).
OPEN_SQL = sql_in(sorted(FINAL_STATUSES))
# What ix_cases_due_unconcluded carries besides the deadline.
DUE_UNCONCLUDED_INCLUDE = (
    "reported_at",
    "status",
    "resolved_at",
    "county_code",
    "township_code",
    "village_code",
    "grid_code",
    # a category filter, and a scope hiding the cases accusing the user's unit
    "category_id",
    "accused_unit",
)


class Category(Base):
    """A kind of matter (征地拆迁, 农民工工资 ...): data, not code."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    description: Mapped[str] = mapped_column(String(400), default="", server_default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")


# ``cases.number`` (a STORED generated column: immutable functions only, so no
# ``to_char``). The same strings as ``to_char(... AT TIME ZONE 'Asia/Shanghai', 'YYYY')``
# and ``lpad(id::text, 7, '0')`` wrote for years 1000-9999 and ids below 10**7; a longer
# id is written in full (lpad cut it to its first seven digits: a lower id's number).
# Spelt for speed: computed for every inserted row (a million in a bulk load), this
# form costs about half of a form with ``extract`` (numeric) and ``greatest``/``length``.
NUMBER_SQL = (
    "(county_code || '-' || date_part('year', timezone('Asia/Shanghai', reported_at))::integer::text "
    "|| '-' || CASE WHEN id < 10000000 THEN lpad(id::text, 7, '0') ELSE id::text END)"
)


class Case(Base):
    """One matter raised by one or more people, tied to the grid it lies in.

    ``grid_id`` and the codes of the grid's village, township and county are set by
    PostGIS in the statement that stores the case (see ``cases.queries``).
    """

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(f"channel IN {sql_in(Channel)}", name="channel"),
        CheckConstraint(f"case_class IN {sql_in(CaseClass)}", name="case_class"),
        CheckConstraint(f"status IN {sql_in(Status)}", name="status"),
        CheckConstraint(f"opinion IS NULL OR opinion IN {sql_in(Opinion)}", name="opinion"),
        CheckConstraint(
            f"satisfaction IS NULL OR satisfaction IN {sql_in(Satisfaction)}", name="satisfaction"
        ),
        CheckConstraint(
            f"resolved_level IS NULL OR resolved_level IN {sql_in(ResolvedLevel)}",
            name="resolved_level",
        ),
        CheckConstraint("people_count >= 1", name="people_count"),
        CheckConstraint("batch_count >= 1", name="batch_count"),
        CheckConstraint(
            f"assigned_level IS NULL OR assigned_level IN {sql_in(ResolvedLevel)}",
            name="assigned_level",
        ),
        CheckConstraint(
            f"supervision IS NULL OR supervision IN {sql_in(Supervision)}", name="supervision"
        ),
        CheckConstraint(
            f"review_stage IS NULL OR review_stage IN {sql_in(ReviewStage)}", name="review_stage"
        ),
        CheckConstraint("extension_days >= 0", name="extension_days"),
        Index("ix_cases_township_reported", "township_code", "reported_at"),
        Index("ix_cases_village_reported", "village_code", "reported_at"),
        Index("ix_cases_grid_reported", "grid_id", "reported_at"),
        Index("ix_cases_reported_brin", "reported_at", postgresql_using="brin"),
        # Sparse columns: partial indexes, so bulk loads do not index a million NULLs.
        Index(
            "uq_cases_client_id", "client_id", unique=True, postgresql_where="client_id IS NOT NULL"
        ),
        # With its time: "no repeat before as_of" (stats) reads this index alone.
        Index(
            "ix_cases_repeat_of_id",
            "repeat_of_id",
            "reported_at",
            postgresql_where="repeat_of_id IS NOT NULL",
        ),
        Index("ix_cases_reporter_id", "reporter_id", postgresql_where="reporter_id IS NOT NULL"),
        Index("ix_cases_leader_id", "leader_id", postgresql_where="leader_id IS NOT NULL"),
        # The few cases accusing a unit: statistics for a user whose unit they are hidden
        # from (回避) subtract them from the tallies (stats.queries).
        Index("ix_cases_accused_unit", "accused_unit", postgresql_where="accused_unit IS NOT NULL"),
        # Due and overdue lists read open cases by deadline; repeat suggestions look
        # petitioners up by phone and ID number.
        Index("ix_cases_due_at", "due_at", postgresql_where="due_at IS NOT NULL"),
        # The unconcluded cases by deadline: figures read from the case tallies take the
        # ones whose deadline is still ahead of as_of from here, by an index-only scan
        # (stats.queries.build_tally_sql reads only these columns).
        Index(
            "ix_cases_due_unconcluded",
            "due_at",
            postgresql_include=list(DUE_UNCONCLUDED_INCLUDE),
            postgresql_where="concluded_at IS NULL AND due_at IS NOT NULL",
        ),
        # The same cases by category, then deadline: a category filter (the typical
        # statistics request: a month, a few categories) reads only its categories'
        # entries instead of every unconcluded case of the county (migration s01).
        Index(
            "ix_cases_due_unconcluded_category",
            "category_id",
            "due_at",
            postgresql_include=[c for c in DUE_UNCONCLUDED_INCLUDE if c != "category_id"],
            postgresql_where="concluded_at IS NULL AND due_at IS NOT NULL",
        ),
        Index(
            "ix_cases_petitioner_phone",
            "petitioner_phone",
            postgresql_where="petitioner_phone IS NOT NULL",
        ),
        Index(
            "ix_cases_petitioner_id_number",
            "petitioner_id_number",
            postgresql_where="petitioner_id_number IS NOT NULL",
        ),
        # Statistics find the cases a figure counts through these (stats.queries): the
        # open ones (a few per cent, scattered over the years), late resolutions, and
        # the rare escalations of a period. BRIN where the column follows the table's
        # time order; partial B-trees where most rows are NULL or closed.
        Index("ix_cases_open", "reported_at", postgresql_where=f"status NOT IN {OPEN_SQL}"),
        # Visit targeting finds the recently dissatisfied through this (visits.queries).
        Index(
            "ix_cases_dissatisfied",
            text("coalesce(resolved_at, concluded_at, reported_at)"),
            postgresql_where="satisfaction = 'dissatisfied'",
        ),
        Index("ix_cases_resolved_brin", "resolved_at", postgresql_using="brin"),
        *(
            Index(f"ix_cases_{column}", column, postgresql_where=f"{column} IS NOT NULL")
            for column in ("beijing_abnormal_at", "province_collective_at", "extreme_incident_at")
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The public number, ``county-YYYY-id`` (YYYY the year of ``reported_at`` in China,
    # the id zero-padded to 7 digits): computed by PostgreSQL from the row itself, the
    # one place it is spelt (NUMBER_SQL), so that every way in (a report, the bulk load's
    # COPY, a ledger import) numbers alike.
    number: Mapped[str] = mapped_column(
        String(32), Computed(NUMBER_SQL, persisted=True), unique=True
    )
    # The id the reporting device made: a resend with the same id is the same case.
    client_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    channel: Mapped[str] = mapped_column(String(16))
    case_class: Mapped[str] = mapped_column(String(16), server_default=CaseClass.REQUEST.value)
    people_count: Mapped[int] = mapped_column(Integer, server_default="1")
    batch_count: Mapped[int] = mapped_column(Integer, server_default="1")

    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=True), nullable=False)
    location_approx: Mapped[bool] = mapped_column(Boolean, server_default="false")
    location_accuracy_m: Mapped[float | None] = mapped_column(Float)
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_code: Mapped[str] = mapped_column(String(20))
    village_code: Mapped[str] = mapped_column(String(12))
    township_code: Mapped[str] = mapped_column(String(9))
    county_code: Mapped[str] = mapped_column(String(6))

    status: Mapped[str] = mapped_column(String(16), server_default=Status.REGISTERED.value)
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    concluded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    opinion: Mapped[str | None] = mapped_column(String(16))
    satisfaction: Mapped[str | None] = mapped_column(String(16))
    resolved_level: Mapped[str | None] = mapped_column(String(16))
    # The responsible body the case was assigned or forwarded to (交办/转送), and its level.
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_unit: Mapped[str | None] = mapped_column(String(100))
    assigned_level: Mapped[str | None] = mapped_column(String(16))
    # Days added by the one extension the regulation allows (第34条); 0 = not extended.
    extension_days: Mapped[int] = mapped_column(Integer, server_default="0")
    # 督办 / 挂牌督办, once ordered (the orders themselves are events).
    supervision: Mapped[str | None] = mapped_column(String(16))
    # How far the appeal went: reviewed (复查) or re-examined (复核, final).
    review_stage: Mapped[str | None] = mapped_column(String(16))
    # The latest written answer (conclusion, review or re-examination): the appeal
    # windows run from it.
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # 初信初访: the first time this matter is raised; otherwise a repeat of an earlier case.
    is_first: Mapped[bool] = mapped_column(Boolean, server_default="true")
    repeat_of_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    skip_level: Mapped[bool] = mapped_column(Boolean, server_default="false")

    # Who reported it (a grid worker's own reports stay visible to them), and the
    # leader who owns it until it is resolved (领导包案).
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # For an accusation (检举控告类): the body accused; never shown to that body.
    accused_unit: Mapped[str | None] = mapped_column(String(100))

    petitioner_name: Mapped[str | None] = mapped_column(String(100))
    petitioner_phone: Mapped[str | None] = mapped_column(String(32))
    petitioner_id_number: Mapped[str | None] = mapped_column(String(32))

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # Optimistic lock: every action names the version it saw.
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    # Escalations the matter led to, for the 三无 figures (stats.figures): when it led to
    # an abnormal petition to Beijing (非正常进京访), a collective petition to the
    # province (赴省集体访) or an extreme incident (因信访问题引发的极端事件); NULL if never.
    beijing_abnormal_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    province_collective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extreme_incident_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseEvent(Base):
    """One action on a case: append-only (the database refuses updates and deletes)."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(100))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    data: Mapped[dict | None] = mapped_column(JSONB)


class RepeatDismissal(Base):
    """A repeat suggestion that staff dismissed: the pair is not suggested again."""

    __tablename__ = "case_repeat_dismissals"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    other_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
