"""Ids of the HTML forms that change something, so that a form sent twice does it once.

A form that makes a case (the desk's registration) or a visit plan carries a hidden
``client_id``, made when the page is first shown and kept while the same form is
corrected and sent again. What it made keeps the id; a resend (a double click, a
browser retrying the POST) finds that and answers with it. The same id with other
content (a page brought back from the history and filled in again) is refused with
``form_resubmitted`` and a new form, never taken for a resend. The action forms of a
case file carry a ``form_id`` the same way, kept in the event they made with their
content's fingerprint: a resend is answered as done, not as a stale page.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from werkzeug.datastructures import MultiDict

# What a form sends that is not its content.
_NOT_CONTENT = frozenset({"client_id", "form_id", "csrf_token"})


def form_id(sent: str | None) -> str:
    """The form's id as sent back, or a new one (none yet, or not one we made)."""
    return sent_id(sent) or str(uuid.uuid4())


def sent_id(sent: str | None) -> str | None:
    """The form's id as sent back; None if there is none, or it is not one we made."""
    try:
        return str(uuid.UUID((sent or "")[:64]))
    except ValueError:
        return None


def content_hash(form: MultiDict) -> str:
    """A fingerprint of what a form sent, its id and CSRF token left out."""
    fields = sorted((k, v) for k, v in form.items(multi=True) if k not in _NOT_CONTENT)
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
