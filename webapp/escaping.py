"""Make user text safe for HTML and for JavaScript string contexts.

folium writes popup and tooltip text into HTML and into JavaScript template
literals, and Leaflet's GeoJSON tooltips insert property values as HTML. The text
made here is safe in all of those places: HTML metacharacters become entities, and
the characters that end or interpolate a JS string (quotes, backquote, backslash,
``$``, ``{``, line breaks, ``</``) are escaped too.
"""

from __future__ import annotations

from markupsafe import escape

_JS_SAFE = {
    "\\": "&#92;",
    "`": "&#96;",
    "$": "&#36;",
    "{": "&#123;",
    "}": "&#125;",
    "\n": " ",
    "\r": " ",
    "\u2028": " ",
    "\u2029": " ",
}
_JS_TABLE = str.maketrans(_JS_SAFE)


def html_text(value: object) -> str:
    """Return ``value`` as text that is inert in HTML and inside any JS string literal."""
    if value is None:
        return ""
    out = str(escape(str(value)))
    return out.translate(_JS_TABLE)


def spreadsheet_text(value: object) -> object:
    """Neutralise text a spreadsheet would run as a formula (=, +, -, @, tab, CR)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
