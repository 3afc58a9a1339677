"""The plan map: numbered stops and the route of each person's day (pure: data in, folium.Map out).

User-typed text (case titles, names) is made safe with ``escaping.html_text``: folium
puts tooltips into JavaScript template literals and Leaflet shows layer names and
GeoJSON tooltips as HTML. No personal data is ever drawn on the map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import shapely
import shapely.geometry

from webapp.escaping import html_text
from webapp.maps.assets import AssetPrefixes, use_local_assets

if TYPE_CHECKING:  # imported by plan_map: folium takes ~0.5 s, not to be paid at app start
    import folium

DEFAULT_ASSETS = AssetPrefixes()
# Distinct colours for people (ColorBrewer Dark2 + Set1, readable on white).
PALETTE = (
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#e41a1c",
    "#377eb8",
    "#4daf4a",
    "#984ea3",
    "#ff7f00",
    "#a65628",
    "#f781bf",
)
DASHES = (None, "10 6", "3 6", "14 4 3 4", "1 5")
STATE_STYLE = {
    "pending": "",
    "done": "vs-done",
    "nobody_home": "vs-away",
    "refused": "vs-refused",
}

MAP_CSS = """
<style>
.vs-stop { width: 24px; height: 24px; border-radius: 50%; color: #fff;
  font: 700 12px/24px sans-serif;
  text-align: center; border: 2px solid #fff; box-shadow: 0 0 2px rgba(0,0,0,.6); }
.vs-stop.vs-done { opacity: .55; text-decoration: line-through; }
.vs-stop.vs-away { border-color: #f0b400; }
.vs-stop.vs-refused { border-color: #222; }
.vs-start { width: 26px; height: 26px; border-radius: 4px; background: #8f1d17; color: #fff;
  font: 700 13px/26px sans-serif; text-align: center; border: 2px solid #fff;
      box-shadow: 0 0 2px #000; }
.vs-loose { width: 14px; height: 14px; border-radius: 50%; background: #9aa3ad;
  border: 2px solid #fff; }
.leaflet-container { background: #f4f1ea; font-family: "Noto Sans CJK SC", "Microsoft YaHei",
  sans-serif; }
</style>
"""


@dataclass(frozen=True)
class MapStop:
    lon: float
    lat: float
    title: str  # user text: escaped when drawn
    detail: str = ""  # user text: escaped when drawn
    seq: int | None = None
    state: str = "pending"


@dataclass(frozen=True)
class MapRoute:
    label: str  # e.g. "张网格 · 11月24日"
    start_lon: float
    start_lat: float
    start_label: str
    stops: tuple[MapStop, ...]
    colour: str = PALETTE[0]
    length_m: float = 0.0
    dash: str | None = None  # a person's later days are dashed differently
    # The line walked, (lat, lon), along roads where measured so; empty: straight legs.
    path: tuple[tuple[float, float], ...] = ()
    route_label: str = "直线"  # how the route was measured: 沿道路 / 直线 / ...


@dataclass(frozen=True)
class PlanMap:
    routes: tuple[MapRoute, ...]
    outline: dict  # GeoJSON FeatureCollection of the area's grids (properties: name)
    unassigned: tuple[MapStop, ...] = ()
    tiles: str | None = None  # a tile URL template inside the network; None: outlines only
    attribution: str = ""


def colour_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def dash_for(day_index: int) -> str | None:
    return DASHES[day_index % len(DASHES)]


def _safe_outline(outline: dict) -> dict:
    """The outline with its tooltip text escaped (Leaflet inserts it as HTML)."""
    features = []
    for f in outline.get("features", []):
        props = {"name": html_text((f.get("properties") or {}).get("name", ""))}
        features.append({"type": "Feature", "properties": props, "geometry": f.get("geometry")})
    return {"type": "FeatureCollection", "features": features}


def _bounds(data: PlanMap) -> list[list[float]] | None:
    lats, lons = [], []
    for r in data.routes:
        lats.append(r.start_lat)
        lons.append(r.start_lon)
        for s in r.stops:
            lats.append(s.lat)
            lons.append(s.lon)
    for s in data.unassigned:
        lats.append(s.lat)
        lons.append(s.lon)
    if not lats and data.outline.get("features"):
        w, s_, e, n = shapely.GeometryCollection(
            [
                shapely.geometry.shape(f["geometry"])
                for f in data.outline["features"]
                if f.get("geometry")
            ]
        ).bounds
        return [[s_, w], [n, e]]
    if not lats:
        return None
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


def plan_map(data: PlanMap, assets: AssetPrefixes = DEFAULT_ASSETS) -> folium.Map:
    """Draw the plan: grid outlines, each route as a line with numbered stops, its start.

    Its scripts and styles are the app's own files (``webapp.maps.assets``, served
    under ``assets``).
    """
    import folium

    m = folium.Map(tiles=None, control_scale=True, zoom_start=14, prefer_canvas=False)
    if data.tiles:
        folium.TileLayer(data.tiles, attr=html_text(data.attribution) or " ", name="底图").add_to(m)
    m.get_root().header.add_child(folium.Element(MAP_CSS), name="visits_css")
    if data.outline.get("features"):
        folium.GeoJson(
            _safe_outline(data.outline),
            name="网格边界",
            style_function=lambda _f: {
                "color": "#7b8794",
                "weight": 1,
                "fillColor": "#ffffff",
                "fillOpacity": 0.35,
            },
            highlight_function=lambda _f: {"weight": 2, "color": "#3e4c59"},
            tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
            control=True,
        ).add_to(m)
    for route in data.routes:
        layer = folium.FeatureGroup(name=html_text(route.label), show=True)
        points = [[route.start_lat, route.start_lon]] + [[s.lat, s.lon] for s in route.stops]
        if route.path and route.stops:
            points = [[lat, lon] for lat, lon in route.path]
        if len(points) > 1:
            folium.PolyLine(
                points,
                color=route.colour,
                weight=4,
                opacity=0.8,
                dash_array=route.dash,
                tooltip=html_text(
                    f"{route.label}：{route.length_m / 1000:.1f} 公里（{route.route_label}）"
                ),
            ).add_to(layer)
        folium.Marker(
            [route.start_lat, route.start_lon],
            icon=folium.DivIcon(
                html='<div class="vs-start">起</div>', icon_size=(26, 26), icon_anchor=(13, 13)
            ),
            tooltip=html_text(f"起点：{route.start_label}"),
        ).add_to(layer)
        for s in route.stops:
            css = STATE_STYLE.get(s.state, "")
            folium.Marker(
                [s.lat, s.lon],
                icon=folium.DivIcon(
                    html=(
                        f'<div class="vs-stop {css}" style="background:{route.colour}">'
                        f"{int(s.seq or 0)}</div>"
                    ),
                    icon_size=(24, 24),
                    icon_anchor=(12, 12),
                ),
                tooltip=html_text(f"{s.seq}. {s.title}"),
                popup=folium.Popup(
                    html_text(f"{s.seq}. {s.title}") + "<br>" + html_text(s.detail), max_width=320
                ),
            ).add_to(layer)
        layer.add_to(m)
    if data.unassigned:
        layer = folium.FeatureGroup(name="未分配的目标", show=False)
        for s in data.unassigned:
            folium.Marker(
                [s.lat, s.lon],
                icon=folium.DivIcon(
                    html='<div class="vs-loose"></div>', icon_size=(14, 14), icon_anchor=(7, 7)
                ),
                tooltip=html_text(s.title),
                popup=folium.Popup(
                    html_text(s.title) + "<br>" + html_text(s.detail), max_width=320
                ),
            ).add_to(layer)
        layer.add_to(m)
    folium.LayerControl(collapsed=len(data.routes) > 6).add_to(m)
    bounds = _bounds(data)
    if bounds:
        m.fit_bounds(bounds, padding=(20, 20), max_zoom=17)
    return use_local_assets(m, assets)
