"""The base map under the overlays: none (boundaries only), Tianditu, or any XYZ tile service.

Configured per deployment (``GRIDCASE_MAP_*``, see docs/maps.md). ``none`` is the
default and needs nothing from any network. Tianditu (天地图) serves CGCS2000 tiles,
which are within centimetres of WGS84, so overlays are drawn as stored. Commercial
Chinese maps (AMap/Gaode, Tencent) are drawn in GCJ-02: with ``MAP_TILE_CRS=gcj02``
every overlay is shifted into GCJ-02 before it is drawn, so that a case sits on the
right street of those tiles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from webapp.geo import wgs84_to_gcj02

TIANDITU_STYLES = {
    # style: (base layer, annotation layer, label)
    "vec": ("vec", "cva", "天地图矢量"),
    "img": ("img", "cia", "天地图影像"),
    "ter": ("ter", "cta", "天地图地形"),
}
TIANDITU_URL = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
    "&TILECOL={{x}}&tk={key}"
)
TIANDITU_ATTRIBUTION = "© 天地图 (国家地理信息公共服务平台)"
DATUMS = ("wgs84", "gcj02")


class BaseMapConfigError(ValueError):
    """The base-map settings cannot work (refused when the app starts)."""


@dataclass(frozen=True)
class TileSource:
    """One XYZ tile layer, as Leaflet takes it."""

    name: str
    url: str  # a Leaflet URL template with {z}/{x}/{y} and optionally {s}
    attribution: str  # plain text, shown escaped
    subdomains: str = ""
    max_zoom: int = 18

    @property
    def origins(self) -> tuple[str, ...]:
        """The ``scheme://host[:port]`` the tiles come from, one per subdomain."""
        parts = urlsplit(self.url)
        hosts = (
            [parts.netloc.replace("{s}", s) for s in self.subdomains]
            if "{s}" in parts.netloc
            else [parts.netloc]
        )
        return tuple(f"{parts.scheme}://{h}" for h in hosts)


@dataclass(frozen=True)
class BaseMap:
    """What is drawn under the overlays, and the datum the overlays must be drawn in."""

    kind: str = "none"  # "none", "tianditu" or "xyz"
    sources: tuple[TileSource, ...] = field(default_factory=tuple)
    datum: str = "wgs84"  # "wgs84" (also CGCS2000) or "gcj02"

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(o for s in self.sources for o in s.origins)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The tile hosts a map document may name: each subdomain, and the URL templates' own."""
        templates = tuple(urlsplit(s.url).netloc for s in self.sources)
        return tuple(dict.fromkeys((*(urlsplit(o).netloc for o in self.origins), *templates)))

    @property
    def shifted(self) -> bool:
        return self.datum == "gcj02"

    def shift(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """Return WGS84 coordinates in the base map's datum (GCJ-02 or unchanged)."""
        if self.shifted:
            return wgs84_to_gcj02(lon, lat)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


NO_BASEMAP = BaseMap()


def basemap_from_config(config: Mapping) -> BaseMap:
    """Read the base map from the app's configuration; raise :class:`BaseMapConfigError`."""
    kind = str(config.get("MAP_BASEMAP") or "none").strip().lower()
    if kind == "none":
        return NO_BASEMAP
    if kind == "tianditu":
        key = str(config.get("MAP_TIANDITU_KEY") or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9]{8,64}", key):
            raise BaseMapConfigError(
                "天地图底图需要设置有效的 GRIDCASE_MAP_TIANDITU_KEY。"
                " MAP_BASEMAP=tianditu needs MAP_TIANDITU_KEY (letters and digits)."
            )
        style = str(config.get("MAP_TIANDITU_STYLE") or "vec").strip().lower()
        if style not in TIANDITU_STYLES:
            raise BaseMapConfigError(
                f"MAP_TIANDITU_STYLE must be one of {', '.join(TIANDITU_STYLES)}"
            )
        base, notes, label = TIANDITU_STYLES[style]
        sources = tuple(
            TileSource(
                name,
                TIANDITU_URL.format(layer=layer, key=key),
                TIANDITU_ATTRIBUTION,
                "01234567",
                18,
            )
            for name, layer in ((label, base), (label + "注记", notes))
        )
        return BaseMap("tianditu", sources, "wgs84")
    if kind == "xyz":
        url = str(config.get("MAP_TILE_URL") or "").strip()
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or not all(t in url for t in ("{z}", "{x}", "{y}"))
        ):
            raise BaseMapConfigError(
                "MAP_TILE_URL must be an http(s) tile URL template with {z}, {x} and {y}"
            )
        attribution = str(config.get("MAP_TILE_ATTRIBUTION") or "").strip()
        if not attribution:
            raise BaseMapConfigError(
                "MAP_TILE_ATTRIBUTION is required with MAP_BASEMAP=xyz (the tiles' licence)"
            )
        subdomains = str(config.get("MAP_TILE_SUBDOMAINS") or "").strip()
        if "{s}" in url and not subdomains:
            subdomains = "abc"
        if not re.fullmatch(r"[A-Za-z0-9]*", subdomains):
            raise BaseMapConfigError(
                "MAP_TILE_SUBDOMAINS is a string of letters and digits, e.g. 1234"
            )
        datum = str(config.get("MAP_TILE_CRS") or "wgs84").strip().lower().replace("-", "")
        if datum not in DATUMS:
            raise BaseMapConfigError("MAP_TILE_CRS must be wgs84 (also for CGCS2000) or gcj02")
        try:
            max_zoom = int(config.get("MAP_TILE_MAX_ZOOM") or 18)
        except (TypeError, ValueError) as exc:
            raise BaseMapConfigError("MAP_TILE_MAX_ZOOM must be a whole number") from exc
        return BaseMap("xyz", (TileSource("底图", url, attribution, subdomains, max_zoom),), datum)
    raise BaseMapConfigError("MAP_BASEMAP must be none, tianditu or xyz")
