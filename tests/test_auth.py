"""Accounts, sign-in, sessions, CSRF, tokens, scoping and masking."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select, text

from tests.conftest import CSRF_HEADERS, TEST_PASSWORD
from webapp.auth.masking import mask_id_number, mask_name, mask_phone
from webapp.auth.models import AuditEntry, User
from webapp.auth.permissions import case_scope, case_scope_sql
from webapp.auth.roles import Role
from webapp.cases.models import Case


def sign_in(client, username, password=TEST_PASSWORD, next_=""):
    client.get("/login")  # a session with a CSRF token, as a browser would have
    with client.session_transaction() as s:
        token = s["csrf"]
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": next_, "csrf_token": token},
    )


def test_sign_in_and_out(client, make_user, session):
    user = make_user("county_staff")
    r = sign_in(client, user.username, next_="/areas/410726100")
    assert r.status_code == 302 and r.headers["Location"] == "/areas/410726100"
    assert client.get("/").status_code == 200
    assert (
        session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.user_id == user.id, AuditEntry.action == "sign_in")
        )
        == 1
    )
    with client.session_transaction() as s:
        token = s["csrf"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_an_unknown_account_is_checked_against_a_hash_of_the_accounts_own_method_and_cost():
    """The dummy hash (written out, not made at import) costs what a real account's does."""
    from werkzeug.security import generate_password_hash

    from webapp.auth import accounts

    method = accounts._DUMMY_HASH.split("$")[0]
    assert method == generate_password_hash("x").split("$")[0]
    assert method == accounts.hash_password("x").split("$")[0]
    assert not accounts.check_password(None, "not-a-password-")


def test_wrong_password_is_refused_in_chinese(client, make_user):
    user = make_user("county_staff")
    r = sign_in(client, user.username, "wrong-password")
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)
    r = sign_in(client, "nobody-like-this", "wrong-password")
    assert r.status_code == 401 and "用户名或密码错误" in r.get_data(as_text=True)


def test_failed_sign_ins_are_limited(client, make_user):
    user = make_user("county_staff")
    for _ in range(5):
        assert sign_in(client, user.username, "wrong-password").status_code == 401
    r = sign_in(client, user.username)  # even the right password, for a while
    assert r.status_code == 429 and "次数过多" in r.get_data(as_text=True)


# Targets that leave the site, some only as a browser reads them: it takes ``\\`` for
# ``/`` and drops tabs and line breaks, so ``/\\evil`` and ``/<tab>/evil`` are ``//evil``.
LEAVING = [
    "https://evil.example/",
    "//evil.example/x",
    "javascript:alert(1)",
    "/\\evil.example/x",
    "/\\/evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
]


def _stays_on_site(location: str) -> bool:
    """Whether a browser following ``location`` stays on this site (WHATWG URL parsing)."""
    seen = location.replace("\\", "/").replace("\t", "").replace("\n", "").replace("\r", "")
    return seen.startswith("/") and not seen.startswith("//")


def test_next_never_leaves_the_site(client, make_user):
    user = make_user("county_staff")
    for target in LEAVING:
        r = sign_in(client, user.username, next_=target)
        assert r.status_code == 302 and _stays_on_site(r.headers["Location"]), target
    # Signed in already, the sign-in page sends on at once: the same check.
    for target in LEAVING:
        r = client.get("/login", query_string={"next": target})
        assert r.status_code == 302 and _stays_on_site(r.headers["Location"]), target
    r = client.get("/login", query_string={"next": "/cases/?q=案件&page=2"})
    assert r.headers["Location"] == "/cases/?q=%E6%A1%88%E4%BB%B6&page=2"


def test_pages_need_sign_in(client):
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=")
    r = client.get("/api/v1/locate?lon=114.2&lat=35.25")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "login_required"
    assert client.get("/healthz").status_code == 200
    assert client.get("/login").status_code == 200


def test_csrf_is_required_on_every_form(client, login):
    login("county_staff")
    r = client.post("/logout")
    assert r.status_code == 400
    assert "页面已过期" in r.get_data(as_text=True)
    assert client.post("/logout", headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert client.post("/logout", headers=CSRF_HEADERS).status_code == 302


def test_sessions_expire(app, client, login):
    login("county_staff")
    with client.session_transaction() as s:
        s["seen"] = int(time.time()) - app.config["SESSION_IDLE_MINUTES"] * 60 - 5
    assert client.get("/").status_code == 302
    login("county_staff")
    with client.session_transaction() as s:
        s["at"] = int(time.time()) - app.config["SESSION_MAX_HOURS"] * 3600 - 5
    r = client.get("/api/v1/locate?lon=114.2&lat=35.25")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "session_expired"


def test_password_change_signs_out_everywhere(client, login, session):
    from webapp.auth.accounts import set_password

    user = login("county_staff")
    assert client.get("/").status_code == 200
    set_password(session, user, "another-password-456")
    assert client.get("/").status_code == 302


def test_session_cookie_flags(client, make_user):
    user = make_user("county_staff")
    r = sign_in(client, user.username)
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_security_headers(client):
    r = client.get("/login")
    csp = r.headers["Content-Security-Policy"]
    assert (
        "default-src 'self'" in csp
        and "frame-ancestors 'self'" in csp
        and "script-src 'self'" in csp
    )
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_api_tokens(app, client, make_user, session):
    from webapp.auth.accounts import issue_token

    user = make_user("grid_worker")
    token = issue_token(session, user, "手机")
    r = client.get(
        "/api/v1/locate?lon=114.2&lat=35.25", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200
    r = client.get(
        "/api/v1/locate?lon=114.2&lat=35.25", headers={"Authorization": "Bearer gc_forged"}
    )
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "invalid_token"
    stored = session.execute(
        text("SELECT token_hash FROM api_tokens WHERE user_id = :u"), {"u": user.id}
    ).scalar_one()
    assert token not in stored and len(stored) == 64


def test_user_cli(app, connection, session, demo_areas):
    runner = app.test_cli_runner()
    r = runner.invoke(
        args=[
            "user",
            "create",
            "cli_worker",
            "--role",
            "grid_worker",
            "--area",
            demo_areas["grid_worker"],
        ],
        input="a-long-password\na-long-password\n",
    )
    assert r.exit_code == 0, r.output
    assert "已创建用户 cli_worker" in r.output
    r = runner.invoke(
        args=[
            "user",
            "create",
            "cli_bad",
            "--role",
            "grid_worker",
            "--area",
            "410726",
            "--password",
            "a-long-password",
        ]
    )
    assert r.exit_code == 1 and "辖区应为网格" in r.output
    r = runner.invoke(
        args=[
            "user",
            "create",
            "cli_short",
            "--role",
            "planner",
            "--area",
            "410726",
            "--password",
            "short",
        ]
    )
    assert r.exit_code == 1 and "密码至少" in r.output
    r = runner.invoke(args=["user", "token", "cli_worker"])
    assert r.exit_code == 0 and r.output.strip().startswith("gc_")
    user = session.scalar(select(User).where(User.username == "cli_worker"))
    assert user.password_hash.startswith("scrypt:")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["cli_bell\x07"], "用户名含有不可见的控制字符"),
        # Bytes that are not UTF-8 (a GBK terminal) reach Python as lone surrogates.
        (["cli_\udcff"], "用户名不是有效的 UTF-8 文本"),
        (["cli_long_name", "--display-name", "长" * 101], "显示名不能超过 100 个字符"),
        (["cli_long_unit", "--unit", "单位" * 51], "所在单位不能超过 100 个字符"),
        (["cli_ok", "--display-name", "名\x1b[31m字"], "显示名含有不可见的控制字符"),
    ],
    ids=["control character", "not UTF-8", "long display name", "long unit", "ANSI escape"],
)
def test_user_cli_refuses_text_it_cannot_store_in_chinese(app, session, args, said):
    """An account's text is checked as the web forms' are: a clear refusal, not a traceback."""
    runner = app.test_cli_runner()
    before = session.scalar(select(func.count()).select_from(User))
    r = runner.invoke(
        args=["user", "create", *args, "--role", "planner", "--area", "410726"]
        + ["--password", "a-long-password"]
    )
    assert r.exit_code == 1 and said in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert session.scalar(select(func.count()).select_from(User)) == before
    for command in (["user", "token", "cli_\udcff"], ["user", "password", "cli_\udcff"]):
        r = runner.invoke(args=command)
        assert r.exit_code == 1 and "不存在" in r.output, r.output


SCOPE_CASES = [
    "grid_worker",
    "village_informant",
    "township_leader",
    "county_staff",
    "leader_in_charge",
    "planner",
    "admin",
]


@pytest.mark.parametrize("role", SCOPE_CASES)
def test_scope_in_sql_and_orm_agree(session, make_user, role):
    user = make_user(role)
    # Give the grid worker a report outside their grid, and the leader a case to own.
    other = (
        session.execute(text("SELECT id FROM cases WHERE township_code <> '410726100' LIMIT 2"))
        .scalars()
        .all()
    )
    if role == "grid_worker":
        session.execute(
            text("UPDATE cases SET reporter_id = :u WHERE id = :c"), {"u": user.id, "c": other[0]}
        )
    if role == "leader_in_charge":
        session.execute(
            text("UPDATE cases SET leader_id = :u WHERE id = ANY(:c)"), {"u": user.id, "c": other}
        )
    orm = set(session.scalars(select(Case.id).where(case_scope(user))))
    cond, params = case_scope_sql(user)
    raw = set(session.execute(text(f"SELECT c.id FROM cases c WHERE {cond}"), params).scalars())
    assert orm == raw and orm
    codes = (
        session.execute(text(f"SELECT DISTINCT township_code FROM cases c WHERE {cond}"), params)
        .scalars()
        .all()
    )
    if role in ("township_leader", "village_informant"):
        assert codes == ["410726100"]
    if role == "grid_worker":
        assert other[0] in orm
    if role == "leader_in_charge":
        assert orm == set(other)


def test_accusations_are_hidden_from_the_accused_unit(session, make_user):
    staff = make_user("county_staff", unit="县住建局")
    case_id = session.execute(text("SELECT id FROM cases LIMIT 1")).scalar_one()
    session.execute(
        text("UPDATE cases SET case_class = 'accusation', accused_unit = '县住建局' WHERE id = :c"),
        {"c": case_id},
    )
    assert case_id not in set(session.scalars(select(Case.id).where(case_scope(staff))))
    other = make_user("county_staff", unit="县信访局")
    assert case_id in set(session.scalars(select(Case.id).where(case_scope(other))))


def test_area_pages_are_scoped(client, login, demo_areas, session):
    login("township_leader")
    assert client.get(f"/areas/{demo_areas['township_leader']}").status_code == 200
    other = session.execute(
        text("SELECT code FROM areas WHERE level = 'township' AND code <> :t LIMIT 1"),
        {"t": demo_areas["township_leader"]},
    ).scalar_one()
    r = client.get(f"/areas/{other}")
    assert r.status_code == 404  # exactly like an area that does not exist
    assert client.get("/areas/410726").status_code == 404
    assert client.get("/").headers["Location"] == f"/areas/{demo_areas['township_leader']}"


def test_masks():
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("410726199001011234") == "4107**********1234"
    assert mask_name(None) is None and mask_phone("") == ""


@pytest.mark.parametrize(
    "phone, masked",
    [
        ("13812345678", "138****5678"),  # mobile
        ("03735551234", "037****1234"),  # landline with its area code
        ("0105551234", "01****1234"),
        ("55512345", "****2345"),  # an 8-digit local number: not 555*2345
        ("5551234", "*******"),
    ],
)
def test_a_masked_phone_always_hides_four_digits_or_more(phone, masked):
    """Every number the desk accepts (a mobile, a landline with or without its area code)
    is masked with at least four digits hidden: never one digit to guess."""
    from webapp.cases.petitioners import phone_problem

    assert phone_problem(phone) is None
    assert mask_phone(phone) == masked and masked.count("*") >= 4


def test_a_short_id_number_is_masked_with_four_hidden_too():
    """ID numbers come through Open311 and ledgers as typed: a short one hides four too."""
    assert mask_id_number("410726900101123") == "4107*******1123"  # 15 digits, the old form
    assert mask_id_number("123456789") == "1****6789"


def test_audit_log_is_append_only(session):
    from sqlalchemy.exc import DBAPIError

    from webapp.auth.audit import record

    entry = record(session, "test", username="x")
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text("UPDATE audit_log SET action = 'y' WHERE id = :i"), {"i": entry.id})


def test_roles_have_chinese_labels():
    assert all(r.label for r in Role)
