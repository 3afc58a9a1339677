"""Signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlalchemy import func

from webapp.auth import accounts, audit
from webapp.auth.identity import current_user, public, sign_in, sign_out
from webapp.db import get_session

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect a user to another site after signing in."""
    if not target:
        return url_for("grid.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("grid.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if request.method == "GET":
        if current_user() is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("auth/login.html", next=request.args.get("next", ""), error=None)
    session = get_session()
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    nxt = request.form.get("next", "")
    ip = audit.client_ip()
    limits = accounts.SignInLimits(**current_app.config.get("SIGN_IN_LIMITS", {}))
    if accounts.sign_in_blocked(session, username, ip, limits):
        accounts.note_attempt(session, username, ip, False)
        session.commit()
        return render_template(
            "auth/login.html", next=nxt, error="登录失败次数过多，请 15 分钟后再试。"
        ), 429
    user = accounts.get_user(session, username)
    ok = accounts.check_password(user, password) and user is not None and user.active
    accounts.note_attempt(session, username, ip, ok)
    if not ok:
        session.commit()
        return render_template("auth/login.html", next=nxt, error="用户名或密码错误。"), 401
    user.last_login_at = func.now()
    audit.record(session, "sign_in", user)
    session.commit()
    sign_in(user)
    return redirect(_safe_next(nxt))


@bp.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("auth.login"))
