"""The person behind a request: session cookie or bearer token, expiry, CSRF, guards."""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import TimestampSigner, URLSafeTimedSerializer, want_bytes

from webapp.auth.roles import Role
from webapp.errors import AppError, wants_json

if TYPE_CHECKING:
    from webapp.auth.models import User

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def current_user() -> User | None:
    return g.get("user")


def sign_in(user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF secret, no fixation)."""
    session.clear()
    now = int(time.time())
    session.update(
        uid=user.id, sv=user.session_version, at=now, seen=now, csrf=secrets.token_hex(16)
    )
    session.permanent = True


def sign_out() -> None:
    session.clear()


def _load_user() -> None:
    g.user = None
    g.auth_method = None
    g.session_expired = False
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        from webapp.auth.accounts import user_for_token
        from webapp.db import get_session

        user = user_for_token(get_session(), header[7:].strip())
        if user is None:
            raise AppError("invalid_token", "访问令牌无效或已吊销", 401, "invalid or revoked token")
        g.user, g.auth_method = user, "token"
        return
    uid = session.get("uid")
    if uid is None:
        return
    cfg = current_app.config
    now = int(time.time())
    too_old = now - session.get("at", 0) > cfg["SESSION_MAX_HOURS"] * 3600
    idle = now - session.get("seen", 0) > cfg["SESSION_IDLE_MINUTES"] * 60
    from webapp.auth.accounts import user_by_id
    from webapp.db import get_session

    user = user_by_id(get_session(), uid) if not (too_old or idle) else None
    if user is None or not user.active or user.session_version != session.get("sv"):
        csrf = session.get("csrf")
        session.clear()
        if csrf:
            session["csrf"] = (
                csrf  # a queued offline form can still be posted after signing in again
            )
        g.session_expired = True
        return
    if now - session.get("seen", 0) > 60:
        session["seen"] = now
    g.user, g.auth_method = user, "session"


# -- the session cookie -----------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _derived_key(secret_key: bytes, salt: bytes, key_derivation: str, digest_method) -> bytes:
    return TimestampSigner(
        secret_key, salt=salt, key_derivation=key_derivation, digest_method=digest_method
    ).derive_key()


class _KeyCachingSigner(TimestampSigner):
    """itsdangerous' signer, deriving each secret's key once per process, not per cookie."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        return _derived_key(key, self.salt, self.key_derivation, self.digest_method)


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions (same cookie, same signature) with the signer made once.

    Flask builds a serializer on every request and itsdangerous derives the HMAC key
    from the secret for every signature it checks or makes: per request, a fifth of the
    cookie's cost. Here the serializer is kept per secret (and fallbacks) and the key
    derived once per secret.
    """

    _cached: tuple[tuple, URLSafeTimedSerializer] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        cached = self._cached
        if cached is not None and cached[0] == keys:
            return cached[1]
        serializer = URLSafeTimedSerializer(
            list(keys),
            salt=self.salt,
            serializer=self.serializer,
            signer=_KeyCachingSigner,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )
        self._cached = (keys, serializer)
        return serializer


# -- CSRF -----------------------------------------------------------------------


def csrf_token() -> str:
    """The CSRF token of this session (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_hex(16)
    return session["csrf"]


def _check_csrf() -> None:
    if request.method not in UNSAFE_METHODS or g.get("auth_method") == "token":
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "csrf_exempt", False):
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    expected = session.get("csrf")
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError,
    # a 500), and a forged token may have any.
    if not expected or not sent or not hmac.compare_digest(_utf8(sent), _utf8(expected)):
        raise AppError(
            "csrf_failed",
            "页面已过期或来源不明，请刷新页面后重试",
            400,
            "missing or wrong CSRF token",
        )


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def csrf_exempt(view: Callable) -> Callable:
    """Mark a view that authenticates by other means (an API key) as exempt from CSRF."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


# -- guards ---------------------------------------------------------------------


def _unauthenticated():
    if wants_json() or g.get("auth_method") == "token":
        code = "session_expired" if g.get("session_expired") else "login_required"
        message = "登录已过期，请重新登录" if g.get("session_expired") else "请先登录"
        raise AppError(code, message, 401, "sign-in required")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def login_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return _unauthenticated()
        return view(*args, **kwargs)

    return wrapped


def roles_required(*roles: Role) -> Callable[[Callable], Callable]:
    """Allow only the given roles (403 with a Chinese message for the others)."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = g.get("user")
            if user is None:
                return _unauthenticated()
            if user.role_enum not in roles:
                raise AppError(
                    "forbidden_role", "您的角色无权执行此操作", 403, "not allowed for this role"
                )
            return view(*args, **kwargs)

        return wrapped

    return decorate


def public(view: Callable) -> Callable:
    """Mark a view that anyone may open without signing in (sign-in page, health check)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def anonymous(view: Callable) -> Callable:
    """Mark a public view that never asks who is asking (health check, static files).

    No user is loaded for it (no database round trip for a session cookie or a bearer
    token it would not look at), and ``current_user()`` is None there. Only for views
    whose answer is the same for everyone; it implies :func:`public`. Unsafe methods
    are still CSRF-checked (as for anyone not signed in).
    """
    view.anonymous = True  # type: ignore[attr-defined]
    return public(view)


PUBLIC_ENDPOINTS = {"static"}
# Flask's own static files: anonymous as :func:`anonymous` views are.
ANONYMOUS_ENDPOINTS = {"static"}


def _require_sign_in():
    """Default deny: every view needs a signed-in user unless it is marked public."""
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    view = current_app.view_functions.get(request.endpoint)
    if view is None or getattr(view, "public", False):
        return None
    if g.get("user") is None:
        return _unauthenticated()
    return None


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_MAX_HOURS", 12)
    app.config.setdefault("SESSION_IDLE_MINUTES", 120)
    from datetime import timedelta

    app.permanent_session_lifetime = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    app.session_interface = CookieSessionInterface()

    @app.before_request
    def identify():
        view = app.view_functions.get(request.endpoint or "")
        if request.endpoint in ANONYMOUS_ENDPOINTS or getattr(view, "anonymous", False):
            g.user, g.auth_method, g.session_expired = None, None, False
        else:
            _load_user()
        _check_csrf()
        return _require_sign_in()

    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user
