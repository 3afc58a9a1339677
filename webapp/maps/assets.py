"""Point a folium map's scripts and stylesheets at the app's own files, and refuse any other.

folium and its plugins name their assets (a name and an external address each) in the
class attributes ``default_js`` / ``default_css``. :func:`use_local_assets` replaces
them, on each element of one map only (instance attributes: folium's class-wide
defaults are never touched), with the files the app serves itself: npm packages
under ``/vendor/`` and the app's own files under ``/static/``. An asset it does not
know raises :class:`ForeignAsset`, so a folium upgrade or a new plugin cannot quietly
bring a CDN back. :func:`render_document` renders the map and checks the result
once more: every script and stylesheet is local, and no other ``http(s)://`` address
appears but the configured tile hosts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Response, url_for

if TYPE_CHECKING:  # folium (~0.5 s to import) only when a map is made: not at app start
    import folium
    from branca.element import Element


class ForeignAsset(RuntimeError):
    """A map would load something the app does not serve itself."""


@dataclass(frozen=True)
class LocalAsset:
    """A file the app serves: an npm package's file (``vendor``) or one of its own (``static``)."""

    kind: str  # "vendor" or "static"
    path: str  # "leaflet/dist/leaflet.js" or "maps/frame.css"

    @property
    def package(self) -> str | None:
        if self.kind != "vendor":
            return None
        parts = self.path.split("/")
        return "/".join(parts[:2]) if parts[0].startswith("@") else parts[0]


def _vendor(path: str) -> LocalAsset:
    return LocalAsset("vendor", path)


def _static(path: str) -> LocalAsset:
    return LocalAsset("static", path)


# Every asset a map may load, by the name folium (or our own elements) give it.
KNOWN_JS: dict[str, LocalAsset] = {
    "leaflet": _vendor("leaflet/dist/leaflet.js"),
    "jquery": _vendor("jquery/dist/jquery.min.js"),
    "bootstrap": _vendor("bootstrap/dist/js/bootstrap.bundle.min.js"),
    "awesome_markers": _vendor("leaflet.awesome-markers/dist/leaflet.awesome-markers.js"),
    # The npm build of Leaflet.heat (folium's own copy carries a patch we do not need:
    # our builders give intensities already scaled to 0..1 and set ``max``).
    "leaflet-heat.js": _vendor("leaflet.heat/dist/leaflet-heat.js"),
    "markerclusterjs": _vendor("leaflet.markercluster/dist/leaflet.markercluster.js"),
}
KNOWN_CSS: dict[str, LocalAsset] = {
    "leaflet_css": _vendor("leaflet/dist/leaflet.css"),
    "bootstrap_css": _vendor("bootstrap/dist/css/bootstrap.min.css"),
    "glyphicons_css": _vendor(
        "@neos21/bootstrap3-glyphicons/dist/css/bootstrap3-glyphicons.min.css"
    ),
    "awesome_markers_font_css": _vendor("@fortawesome/fontawesome-free/css/all.min.css"),
    "awesome_markers_css": _vendor("leaflet.awesome-markers/dist/leaflet.awesome-markers.css"),
    "awesome_rotate_css": _static("maps/leaflet.awesome.rotate.css"),
    "markerclustercss": _vendor("leaflet.markercluster/dist/MarkerCluster.css"),
    "markerclusterdefaultcss": _vendor("leaflet.markercluster/dist/MarkerCluster.Default.css"),
}


# What ``folium.Map`` asks for on every map and the maps of ``webapp.maps`` never use:
# Bootstrap and jQuery (for folium's own popups and controls, not ours), the
# awesome-markers icons and the fonts and glyphs they draw with. Left out of those
# documents (:func:`use_local_assets`' ``leave_out``), they no longer make the
# browser fetch and parse ~560 kB of script and style before it draws the map.
UNUSED_BY_AREA_MAPS = frozenset(
    {
        "jquery",
        "bootstrap",
        "awesome_markers",
        "bootstrap_css",
        "glyphicons_css",
        "awesome_markers_font_css",
        "awesome_markers_css",
        "awesome_rotate_css",
    }
)


@dataclass(frozen=True)
class AssetPrefixes:
    """Where the app serves vendor and static files (``/vendor/``, ``/static/`` by default)."""

    vendor: str = "/vendor/"
    static: str = "/static/"

    def url(self, asset: LocalAsset) -> str:
        return (self.vendor if asset.kind == "vendor" else self.static) + asset.path


def _elements(root: Element) -> Iterator[Element]:
    stack = [root]
    while stack:
        element = stack.pop()
        yield element
        stack.extend(element._children.values())


def _localise(
    pairs: Iterable[tuple[str, str]], known: dict[str, LocalAsset], prefixes: AssetPrefixes, element
):
    out = []
    for name, url in pairs:
        asset = known.get(name)
        if asset is None:
            raise ForeignAsset(
                f"{type(element).__name__} wants asset {name!r} ({url}),"
                " which the app does not serve:"
                " add it to webapp/maps/assets.py (from an npm package in package.json)"
            )
        out.append((name, prefixes.url(asset)))
    return out


def use_local_assets(
    m: folium.Map, prefixes: AssetPrefixes = AssetPrefixes(), leave_out: Collection[str] = ()
) -> folium.Map:
    """Point every asset of ``m``'s elements at the app's own files; raise on an unknown one.

    Assets named in ``leave_out`` (known ones only: :data:`UNUSED_BY_AREA_MAPS`) are
    not loaded at all. Call it last, once every layer is added. Only this map's
    elements change.
    """
    from folium.elements import JSCSSMixin

    unknown = set(leave_out) - set(KNOWN_JS) - set(KNOWN_CSS)
    if unknown:
        raise ValueError(f"cannot leave out unknown assets: {sorted(unknown)}")
    for element in _elements(m.get_root()):
        if isinstance(element, JSCSSMixin):
            js = [(name, url) for name, url in element.default_js if name not in leave_out]
            css = [(name, url) for name, url in element.default_css if name not in leave_out]
            element.default_js = _localise(js, KNOWN_JS, prefixes, element)
            element.default_css = _localise(css, KNOWN_CSS, prefixes, element)
    return m


_RESOURCE = re.compile(r"<(?:script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]+)", re.I)
# Hosts, including tile URL templates such as t{s}.tianditu.gov.cn.
_ADDRESS = re.compile(r"https?://([A-Za-z0-9.{}-]+(?::\d+)?)", re.I)
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc\s*=)((?:\s[^>]*)?)>", re.I)


def foreign_addresses(html: str, allowed_hosts: Iterable[str] = ()) -> list[str]:
    """Return the hosts named in ``html`` (``http(s)://host``) but not in ``allowed_hosts``."""
    allowed = {h.lower() for h in allowed_hosts}
    found = []
    # Every "://" first (a plain substring search), then the address around it: the
    # same as _ADDRESS.finditer, without a case-insensitive scan of a map's 500 kB.
    at = html.find("://")
    while at != -1:
        start = at - 5 if html[at - 5 : at].lower() == "https" else at - 4
        match = _ADDRESS.match(html, start) if start >= 0 else None
        if match is not None and match.start(1) == at + 3:
            host = match.group(1).lower()
            if host not in allowed and host not in found:
                found.append(host)
        at = html.find("://", at + 3)
    return found


def check_document(html: str, prefixes: AssetPrefixes, allowed_hosts: Iterable[str] = ()) -> None:
    """Raise :class:`ForeignAsset` if ``html`` loads a file that is not the app's own."""
    for url in _RESOURCE.findall(html):
        if not url.startswith((prefixes.vendor, prefixes.static)) or url.startswith("//"):
            raise ForeignAsset(
                f"the map document loads {url!r}, which is not one of the app's files"
            )
    foreign = foreign_addresses(html, allowed_hosts)
    if foreign:
        raise ForeignAsset(f"the map document names other hosts: {', '.join(foreign)}")


def render_document(
    m: folium.Map,
    prefixes: AssetPrefixes = AssetPrefixes(),
    allowed_hosts: Iterable[str] = (),
    nonce: str | None = None,
) -> str:
    """Render ``m`` as a whole HTML document, checked to load nothing from outside.

    With ``nonce``, every inline ``<script>`` gets it, so the document can be served
    with a CSP that allows those scripts and no other inline code.
    """
    html = m.get_root().render()
    check_document(html, prefixes, allowed_hosts)
    if nonce:
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,}", nonce):
            raise ValueError("a CSP nonce must be at least 16 URL-safe characters")
        html = _INLINE_SCRIPT.sub(lambda mm: f'<script nonce="{nonce}"{mm.group(1)}>', html)
    return html


def app_prefixes() -> AssetPrefixes:
    """Where this app serves its vendor and static files (for the current request's root)."""
    return AssetPrefixes(
        url_for("vendor.asset", subpath="x")[:-1], url_for("static", filename="x")[:-1]
    )


def document_response(
    m: folium.Map,
    prefixes: AssetPrefixes,
    tile_hosts: Iterable[str] = (),
    tile_origins: Iterable[str] = (),
) -> Response:
    """Serve ``m`` as its own HTML document (a map page frames it).

    Checked by :func:`render_document`; folium's inline scripts run by a nonce made
    for this response, and only this response's CSP allows them and the tiles.
    """
    from webapp.security import relax_csp

    nonce = secrets.token_urlsafe(18)
    html = render_document(m, prefixes, tile_hosts, nonce)
    relax_csp(
        script_src=f"'self' 'nonce-{nonce}'",
        img_src=" ".join(["'self' data: blob:", *tile_origins]),
    )
    return Response(html, mimetype="text/html")
