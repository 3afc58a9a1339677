"""Point a folium map's JavaScript and CSS at the app's own ``/vendor/`` files (no CDN).

folium links Leaflet, jQuery, Bootstrap and Font Awesome from CDNs by default. Every
asset a map asks for must be listed here, either with the local file that replaces
it or as not needed (``None``); an asset this module does not know is an error, so a
folium upgrade cannot quietly bring a CDN back. Only the map instance is changed,
never folium's class-wide defaults.

A small local copy of what ``webapp/maps/`` will offer; once that module is merged,
this one can give way to it.
"""

from __future__ import annotations

from branca.element import Element
from folium.elements import JSCSSMixin

from webapp.assets import served_packages

# folium's asset name → (npm package, file) served under /vendor/, or None when the
# map does not need it (this package draws no awesome-markers icons and no Bootstrap).
LOCAL_ASSETS: dict[str, tuple[str, str] | None] = {
    "leaflet": ("leaflet", "dist/leaflet.js"),
    "leaflet_css": ("leaflet", "dist/leaflet.css"),
    "jquery": ("jquery", "dist/jquery.min.js"),  # folium builds popups with $()
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_css": None,
    "awesome_markers_font_css": None,
    "awesome_rotate_css": None,
}


class UnknownAsset(LookupError):
    """A folium element wants a JS or CSS file this module has no local copy for."""


def local_url(name: str) -> str | None:
    """The /vendor/ URL that replaces folium's asset ``name`` (None: not needed)."""
    if name not in LOCAL_ASSETS:
        raise UnknownAsset(f"folium asset {name!r} has no local copy: add it to LOCAL_ASSETS")
    spec = LOCAL_ASSETS[name]
    if spec is None:
        return None
    package, path = spec
    if package not in served_packages():
        raise UnknownAsset(f"npm package {package!r} is not in package.json")
    return f"/vendor/{package}/{path}"


def _walk(element: Element):
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def use_local_assets(m: Element) -> Element:
    """Replace the CDN links of ``m`` and every element under it by local ones; return ``m``."""
    for element in _walk(m):
        if not isinstance(element, JSCSSMixin):
            continue
        for attr in ("default_js", "default_css"):
            links = []
            for name, _url in getattr(element, attr):
                url = local_url(name)
                if url is not None:
                    links.append((name, url))
            setattr(element, attr, links)  # on the instance: folium's class lists stay as they are
    return m
