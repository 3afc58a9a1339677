"""Security headers on every response (CSP, no sniffing, no framing by others), and the proxy.

Behind a TLS-terminating proxy (``GRIDCASE_PROXY_COUNT=1``) the app trusts that many
proxies' ``X-Forwarded-For``, ``-Proto``, ``-Host`` and ``-Port``: the scheme is https
(links, redirects), and the sign-in limit and the audit log see the real client
address. Without it those headers are ignored, so a client cannot forge them.
``GRIDCASE_SECURE_COOKIES=1`` marks the session cookie ``Secure`` and sends HSTS.
Answers to a signed-in account are ``Cache-Control: no-store`` unless the view says
otherwise (photos: ``private``).
"""

from __future__ import annotations

import re

from flask import Flask, g, request

from webapp.errors import AppError

DEFAULT_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "worker-src": "'self'",
    "manifest-src": "'self'",
    "frame-src": "'self'",
    "frame-ancestors": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}


def _csp_header(csp: dict[str, str]) -> str:
    return "; ".join(f"{k} {v}" for k, v in csp.items())


# Made once: most responses send the default policy.
_DEFAULT_CSP_HEADER = _csp_header(DEFAULT_CSP)
# Sent with every response unless the view set the header itself.
_FIXED_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "geolocation=(self), camera=(self)"),
)


def relax_csp(**directives: str) -> None:
    """Let one response widen its CSP (e.g. a folium map page needs inline scripts)."""
    csp = g.setdefault("csp", dict(DEFAULT_CSP))
    for key, value in directives.items():
        csp[key.replace("_", "-")] = value


# C0 controls but tab, line feed and carriage return; DEL; C1 controls. PostgreSQL cannot
# store NUL in text at all, and none of them belongs in anything a person types.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# What a decoder leaves for bytes that were not UTF-8 (Werkzeug decodes forms and query
# strings with errors="replace"): the text was not what the person typed. And a lone
# surrogate, which only a JSON escape (\ud800) can make: no UTF-8 encodes it, so
# PostgreSQL's driver cannot send it and a view storing it would answer 500.
_UNDECODABLE = re.compile("[\ufffd\ud800-\udfff]")
_MAX_DEPTH = 32
_HIGH_ESCAPES = re.compile(rb"(?:%[89a-fA-F][0-9a-fA-F])+")


def _strings(value, field: str = "", depth: int = 0):
    """(top-level field, string) for every string in a JSON value, keys too; no absurd nesting."""
    if depth > _MAX_DEPTH:
        raise AppError("invalid_json", "提交的 JSON 嵌套过深", 400, "JSON nested too deeply")
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for k, v in value.items():
            name = field or str(k)
            yield name, str(k)
            yield from _strings(v, name, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, field, depth + 1)


def check_text_input() -> None:
    """Refuse control characters and undecodable bytes in any text a request carries.

    The path, query strings, form fields, uploaded files' names (not their content) and
    JSON bodies are checked before any view runs, so no feature can store, search for or
    choke on them (a NUL in a filter or a note would otherwise reach PostgreSQL and fail
    as a 500; so would a lone surrogate, which only a JSON escape can make). Features
    check their own fields further (lengths, line breaks, bidi overrides).
    """
    if not _utf8(request.query_string):
        raise _undecodable()
    # The path too: a route's <string> part (a case number, an area code) reaches SQL.
    texts = [("path", request.path)]
    texts += [(k, t) for k, v in request.args.items(multi=True) for t in (k, v)]
    unsafe = request.method in ("POST", "PUT", "PATCH")
    if unsafe and request.mimetype == "application/x-www-form-urlencoded":
        if not _utf8(request.get_data(cache=True)):
            raise _undecodable()
    if unsafe and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        texts += [(k, t) for k, v in request.form.items(multi=True) for t in (k, v)]
        # A file's name is kept (the ledger import stores it): a NUL in it failed as a 500.
        texts += [(k, f.filename or "") for k, f in request.files.items(multi=True)]
    for field, text in texts:
        _check(field, text)
    if request.is_json and request.content_length:
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            raise AppError(
                "invalid_json", "提交的 JSON 嵌套过深", 400, "JSON nested too deeply"
            ) from None
        if body is not None and _json_may_hold_unsafe_text(request.get_data(cache=True)):
            for field, text in _strings(body):
                _check(field, text)


# What every JSON text that parses to a string with a refused character (or nested deeper
# than _MAX_DEPTH) must contain: an escape that can make a control character (\b, \f,
# \uXXXX), a raw DEL, C1 control or U+FFFD (JSON refuses raw C0 controls in strings),
# a NUL byte (every UTF-16 or UTF-32 text has them), or more than _MAX_DEPTH brackets.
_UNSAFE_JSON_BYTES = re.compile(rb"\\[bfu]|[\x00\x7f]|\xc2[\x80-\x9f]|\xef\xbf\xbd")


def _json_may_hold_unsafe_text(raw: bytes) -> bool:
    """False only if no string in the JSON text ``raw`` can fail :func:`_check` (one scan
    of the bytes instead of walking every string: most bodies have none of these)."""
    return (
        raw.count(b"[") + raw.count(b"{") > _MAX_DEPTH or _UNSAFE_JSON_BYTES.search(raw) is not None
    )


def _utf8(raw: bytes) -> bool:
    """Whether percent-encoded ``raw`` decodes as UTF-8 (Werkzeug keeps bad escapes as text).

    A character beyond ASCII is a run of bytes of 0x80 and above, sent raw or as a run of
    ``%XX`` escapes; each run must decode (regex and ``bytes.fromhex``: fast on megabytes).
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    for run in _HIGH_ESCAPES.findall(raw):
        try:
            bytes.fromhex(run.replace(b"%", b"").decode("ascii")).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _undecodable() -> AppError:
    return AppError(
        "invalid_encoding",
        "提交的内容不是有效的 UTF-8 文本，请检查编码后重试",
        400,
        "the request contains bytes that are not UTF-8",
    )


def unsafe_text(text: str) -> str | None:
    """``control_characters`` or ``invalid_encoding`` if ``text`` may not be stored, else None.

    For text that comes in other than by a request (the account commands' arguments:
    bytes that are not UTF-8 reach Python as lone surrogates).
    """
    if CONTROL_CHARACTERS.search(text):
        return "control_characters"
    if _UNDECODABLE.search(text):
        return "invalid_encoding"
    return None


def _check(field: str | None, text: str | None) -> None:
    if not isinstance(field, str) or not isinstance(text, str):
        # A multipart part whose header the parser could not read has no name.
        raise AppError(
            "invalid_form", "提交的表单格式不正确，无法读取", 400, "a form part could not be read"
        )
    if CONTROL_CHARACTERS.search(text):
        message = "提交的内容含有不可见的控制字符，请删除后重试"
        raise AppError(
            "control_characters",
            message,
            400,
            f"control characters in {field[:64]!r}",
            [{"field": field[:64], "code": "control_characters", "message": message}],
        )
    if _UNDECODABLE.search(text):
        raise _undecodable()


def init_app(app: Flask) -> None:
    # First of all before_request functions: before the CSRF check reads (and so consumes)
    # the form, while the raw body can still be checked for bytes that are not UTF-8.
    app.before_request_funcs.setdefault(None, []).insert(0, check_text_input)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )

    @app.after_request
    def headers(response):
        # Each header unless the view set its own: one pass over the response's headers
        # and one extend (five setdefault calls scanned them five times; every request
        # pays this).
        present = {name.lower() for name in response.headers.keys()}
        added = [(name, value) for name, value in _FIXED_HEADERS if name.lower() not in present]
        if app.config.get("SESSION_COOKIE_SECURE") and "strict-transport-security" not in present:
            added.append(("Strict-Transport-Security", "max-age=31536000"))
        if "cache-control" not in present and g.get("user") is not None:
            # What a signed-in account is shown (petitioners, cases) is kept by no cache: not
            # the browser's, not its back button's after signing out on a shared computer.
            added.append(("Cache-Control", "no-store"))
        if "content-security-policy" not in present:
            csp = g.get("csp")
            added.append(
                (
                    "Content-Security-Policy",
                    _DEFAULT_CSP_HEADER if csp is None else _csp_header(csp),
                )
            )
        response.headers.extend(added)
        return response
