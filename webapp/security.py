"""Security headers on every response (CSP, no sniffing, no framing by others), and the proxy.

Behind a TLS-terminating proxy (``GRIDCASE_PROXY_COUNT=1``) the app trusts that many
proxies' ``X-Forwarded-For``, ``-Proto``, ``-Host`` and ``-Port``: the scheme is https
(links, redirects), and the sign-in limit and the audit log see the real client
address. Without it those headers are ignored, so a client cannot forge them.
``GRIDCASE_SECURE_COOKIES=1`` marks the session cookie ``Secure`` and sends HSTS.
"""

from __future__ import annotations

from flask import Flask, g

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


def relax_csp(**directives: str) -> None:
    """Let one response widen its CSP (e.g. a folium map page needs inline scripts)."""
    csp = g.setdefault("csp", dict(DEFAULT_CSP))
    for key, value in directives.items():
        csp[key.replace("_", "-")] = value


def init_app(app: Flask) -> None:
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )

    @app.after_request
    def headers(response):
        csp = g.get("csp", DEFAULT_CSP)
        response.headers.setdefault("Content-Security-Policy", "; ".join(f"{k} {v}" for k, v in csp.items()))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "geolocation=(self), camera=(self)")
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
