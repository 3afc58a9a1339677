"""Field work: photos of cases taken on site, and the routine sweep reports (排查) of grids."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from webapp.cases.vocab import sql_in
from webapp.db import Base


class SweepPeriod(enum.StrEnum):
    """How often every grid reports its sweep: set per county (日排查日报告 or monthly)."""

    DAILY = "daily"
    MONTHLY = "monthly"

    @property
    def label(self) -> str:
        return {"daily": "每日", "monthly": "每月"}[self]


class CasePhoto(Base):
    """A photo of a case, re-encoded without metadata; the file lives in the photo directory.

    ``client_photo_id`` is made on the phone: uploading the same photo again finds
    this row instead of storing a second one. The stored file is named by its
    SHA-256, so the same picture uploaded twice is one file.
    """

    __tablename__ = "case_photos"
    __table_args__ = (
        CheckConstraint("size_bytes > 0", name="size_bytes"),
        CheckConstraint("width > 0 AND height > 0", name="dimensions"),
        Index("ix_case_photos_case_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"))
    client_photo_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The stored (re-encoded) file: always JPEG.
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # What the phone sent, for the record.
    original_format: Mapped[str] = mapped_column(String(8))
    original_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Sweep(Base):
    """One grid's sweep report (排查) for one period: the cases found, or nothing (零报告).

    One per grid and period: filing again amends it (``revision`` counts the changes).
    The grid's village, township and county codes are copied so coverage aggregates
    by equality, as cases do.
    """

    __tablename__ = "sweeps"
    __table_args__ = (
        UniqueConstraint("grid_id", "period_kind", "period_start", name="uq_sweeps_grid_period"),
        CheckConstraint(f"period_kind IN {sql_in(SweepPeriod)}", name="period_kind"),
        CheckConstraint(
            "period_kind <> 'monthly' OR extract(day FROM period_start) = 1", name="monthly_start"
        ),
        Index("ix_sweeps_township_period", "township_code", "period_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_code: Mapped[str] = mapped_column(String(20))
    village_code: Mapped[str] = mapped_column(String(12))
    township_code: Mapped[str] = mapped_column(String(9))
    county_code: Mapped[str] = mapped_column(String(6))
    period_kind: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    zero_report: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revision: Mapped[int] = mapped_column(Integer, server_default="1")


class SweepCase(Base):
    """A case listed as found by a sweep."""

    __tablename__ = "sweep_cases"
    __table_args__ = (Index("ix_sweep_cases_case_id", "case_id"),)

    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="RESTRICT"), primary_key=True
    )
