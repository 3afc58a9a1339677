"""Security headers on every response: CSP, no sniffing, no framing by others."""

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
