"""Accounts: creating them, checking passwords, API tokens, limiting failed sign-ins."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.auth.models import ApiToken, LoginAttempt, User
from webapp.auth.roles import Role
from webapp.db import Prepared
from webapp.errors import AppError
from webapp.grid.models import Area, AreaLevel
from webapp.security import unsafe_text

MIN_PASSWORD = 10

# A hash to check against when the account does not exist, so that the answer takes
# as long as for a real account (no user enumeration by timing): made once by
# ``generate_password_hash`` (Werkzeug's default method and cost, those of every
# account's hash, tests/test_auth.py) of a random password thrown away.
# Written out rather than made at import, where its scrypt cost 0.1-0.2 s at the
# start of every ``flask`` command.
_DUMMY_HASH = (
    "scrypt:32768:8:1$TMH7SM8TG1TwYVsl$0fdabc4b89244e89dbce47460f7997c4d97718b94640e8a7626ee7d333"
    "eff0ab38ee5cc987dbb28fad2a981140f41af42bf01082c4630615b2a401dba5aa26a5"
)


def hash_password(password: str) -> str:
    """Hash with scrypt (Werkzeug's default: memory-hard, salted)."""
    return generate_password_hash(password)


def check_password(user: User | None, password: str) -> bool:
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(user.password_hash, password)


def new_password() -> str:
    """A random password people can type: 16 characters without look-alikes."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


# (attribute, column) of every column of User, in the order of _USER_BY_ID's columns.
_USER_FIELDS = tuple((prop.key, prop.columns[0].name) for prop in User.__mapper__.column_attrs)
# Prepared once per connection, as the field report's statement: every signed-in request
# runs it, and parsing and planning it cost the database more than reading the row.
_USER_BY_ID = Prepared(
    "gridcase_user_by_id",
    f"SELECT {', '.join(column for _, column in _USER_FIELDS)} FROM users WHERE id = :id",
    {"id": "integer"},
)


def user_by_id(session: Session, user_id: int) -> User | None:
    """The user with this id, as ``session.get(User, user_id)`` but by one plain statement.

    Every signed-in request loads its user: the ORM's query machinery around that one
    row cost more than the row itself. The row becomes a persistent ``User`` of
    ``session`` exactly as if the ORM had loaded it (nothing marked changed; changes to
    it are flushed as usual). A user already in the session is returned as it is.
    """
    known = session.identity_map.get(identity_key(User, user_id))
    if known is not None:
        return known
    if not isinstance(user_id, int) or not 0 < user_id < 2**31:  # no row has such an id
        return None
    row = _USER_BY_ID.execute(session, {"id": user_id}).first()
    if row is None:
        return None
    user = User.__mapper__.class_manager.new_instance()
    user.__dict__.update(zip((key for key, _ in _USER_FIELDS), row, strict=True))
    make_transient_to_detached(user)  # loaded state: every attribute as in the row
    session.add(user)
    return user


def create_user(
    session: Session,
    username: str,
    role: Role | str,
    area_code: str,
    password: str,
    display_name: str | None = None,
    unit: str | None = None,
    phone: str | None = None,
    password_hash: str | None = None,
) -> User:
    """Create an account after checking the role against the area's level.

    ``password_hash``: ``hash_password(password)`` made beforehand (the demo loader
    hashes its accounts' passwords in a thread while the cases load).
    """
    role = Role(role)
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise AppError("invalid_username", "用户名不能为空、不能含空格，且不超过 64 个字符")
    _check_text("用户名", username, 64)
    _check_text("显示名", display_name, 100)
    _check_text("所在单位", unit, 100)
    _check_text("电话", phone, 32)
    _check_text("密码", password, None)
    if get_user(session, username) is not None:
        raise AppError("username_taken", f"用户名 {username} 已存在", 409)
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None:
        raise AppError("area_not_found", f"区划 {area_code} 不存在", 404)
    if AreaLevel(area.level) not in role.area_levels:
        allowed = "、".join(lv.label for lv in role.area_levels)
        raise AppError(
            "area_level_mismatch",
            f"{role.label}的辖区应为{allowed}，而 {area.name} 是{AreaLevel(area.level).label}",
        )
    if len(password) < MIN_PASSWORD:
        raise AppError("password_too_short", f"密码至少 {MIN_PASSWORD} 个字符")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role.value,
        area_code=area.code,
        unit=unit,
        phone=phone,
        password_hash=password_hash or hash_password(password),
    )
    session.add(user)
    session.flush()
    return user


def _check_text(label: str, value: str | None, max_len: int | None) -> None:
    """An account's text as the web forms' is checked (the commands' arguments are not):
    no control characters nor bytes that were not UTF-8, and as long as its column."""
    if not value:
        return
    problem = unsafe_text(value)
    if problem == "control_characters":
        raise AppError(problem, f"{label}含有不可见的控制字符，请删除后重试")
    if problem is not None:
        raise AppError(problem, f"{label}不是有效的 UTF-8 文本，请检查终端的编码后重试")
    if max_len is not None and len(value) > max_len:
        raise AppError("text_too_long", f"{label}不能超过 {max_len} 个字符")


def set_password(session: Session, user: User, password: str) -> None:
    _check_text("密码", password, None)
    if len(password) < MIN_PASSWORD:
        raise AppError("password_too_short", f"密码至少 {MIN_PASSWORD} 个字符")
    user.password_hash = hash_password(password)
    user.session_version += 1  # signs the account out everywhere
    session.flush()


# -- API tokens -----------------------------------------------------------------

TOKEN_PREFIX = "gc_"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, label: str = "") -> str:
    """Create a bearer token for ``user``; only its hash is stored, so show it now."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), label=label))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == _token_hash(token),
            ApiToken.revoked.is_(False),
            User.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    api_token, user = row
    session.execute(
        text(
            "UPDATE api_tokens SET last_used_at = now() WHERE id = :i "
            "AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
        ),
        {"i": api_token.id},
    )
    return user


# -- sign-in limits -------------------------------------------------------------


@dataclass(frozen=True)
class SignInLimits:
    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_address: int = 30


def sign_in_blocked(session: Session, username: str, ip: str | None, limits: SignInLimits) -> bool:
    """Whether too many recent sign-ins failed for this account or from this address."""
    since = func.now() - limits.window
    by_user = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.username == username,
            LoginAttempt.success.is_(False),
            LoginAttempt.at > since,
        )
    )
    if by_user >= limits.per_account:
        return True
    if ip:
        by_ip = session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.ip == ip, LoginAttempt.success.is_(False), LoginAttempt.at > since)
        )
        if by_ip >= limits.per_address:
            return True
    return False


def note_attempt(session: Session, username: str, ip: str | None, success: bool) -> None:
    session.add(LoginAttempt(username=username[:64], ip=ip, success=success))
    session.flush()
