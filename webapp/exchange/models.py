"""Ledger imports: one row per uploaded file, its checks, progress and outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base

IMPORT_STATES = ("uploaded", "checking", "checked", "importing", "done", "failed")


class LedgerImport(Base):
    """A ledger file uploaded by county staff: checked (dry run), then imported on confirmation.

    The file itself is kept under ``var/imports/`` by its id; ``summary`` holds the
    counts per row status of the last check or run; ``progress_*`` are updated while a
    job runs so that the page can show how far it is.
    """

    __tablename__ = "ledger_imports"
    __table_args__ = (CheckConstraint(f"state IN {IMPORT_STATES!r}", name="state"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    crs: Mapped[str] = mapped_column(String(32), server_default="EPSG:4326")
    state: Mapped[str] = mapped_column(String(16), server_default="uploaded")
    progress_stage: Mapped[str] = mapped_column(String(40), server_default="")
    progress_done: Mapped[int] = mapped_column(Integer, server_default="0")
    progress_total: Mapped[int] = mapped_column(Integer, server_default="0")
    summary: Mapped[dict | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(String(2000))
    imported: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
