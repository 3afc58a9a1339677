"""The audit log: who revealed personal data, exported, changed a case, signed in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import has_request_context, request
from sqlalchemy.orm import Session

from webapp.auth.models import AuditEntry

if TYPE_CHECKING:
    from webapp.auth.models import User


def client_ip() -> str | None:
    if not has_request_context():
        return None
    return request.remote_addr


def entry_fields(action: str, user: User | None = None, username: str | None = None) -> dict:
    """The columns of an entry but its case and detail, for a statement that writes the
    entry itself (an ``INSERT INTO audit_log`` in the same SQL statement as the change
    it records, to save a round trip); :func:`record` for everything else."""
    return {
        "action": action,
        "user_id": user.id if user else None,
        "username": user.username if user else username,
        "ip": client_ip(),
    }


def record(
    session: Session,
    action: str,
    user: User | None = None,
    case_id: int | None = None,
    detail: dict | None = None,
    username: str | None = None,
) -> AuditEntry:
    """Append an entry to the audit log (flushed with the caller's transaction)."""
    entry = AuditEntry(**entry_fields(action, user, username), case_id=case_id, detail=detail)
    session.add(entry)
    session.flush()
    return entry
