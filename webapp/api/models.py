"""Idempotency keys of the API: a retried create returns what the first one returned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from webapp.db import Base


class IdempotencyKey(Base):
    """One ``Idempotency-Key`` a user sent, the request it came with and the answer given.

    The key is the user's own: two users may use the same key independently. Only
    successful requests are kept, so a request that failed may be corrected and sent
    again with the same key.
    """

    __tablename__ = "api_idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method, path and canonical JSON body.
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
