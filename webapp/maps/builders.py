"""Map builders: pure functions from plain data to a ``folium.Map`` (they never see a session).

Every builder draws the view area's outline and its areas (the children, or the level
asked for) with a tooltip, and a click on an area opens the next level down (the
``drill`` links the view made). User text (area names, case titles, category names)
is made inert with ``escaping.html_text`` here, where it meets HTML and JavaScript.
With a GCJ-02 base map every coordinate is shifted into GCJ-02 here too. Each builder
ends with :func:`webapp.maps.assets.use_local_assets`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import folium
import numpy as np
from folium.utilities import JsCode

from webapp.cases.vocab import Status
from webapp.escaping import html_text
from webapp.hotspots.gistar import BIN_LABELS, INFERENCE
from webapp.maps.assets import UNUSED_BY_AREA_MAPS, AssetPrefixes, use_local_assets
from webapp.maps.basemap import NO_BASEMAP, BaseMap
from webapp.maps.elements import (
    AreaBubbles,
    FrameStyle,
    GeoJsonLayer,
    HeatLattice,
    HtmlControl,
    MarkerClusterLayer,
    script_json,
)
from webapp.maps.figures import FIGURES, NO_DATA_COLOUR, AreaFigures, colour_classes, colour_for
from webapp.maps.queries import AreaInfo, CasePoint, HotSpotAnalysis
from webapp.maps.queries import HeatLattice as HeatData
from webapp.stats import figures as stats_figures

HEAT_LEVELS = 35
HEAT_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# ArcGIS Hot Spot Analysis colours, from cold (-3) to hot (3).
HOTSPOT_COLOURS = {
    3: "#d62f27",
    2: "#ed7551",
    1: "#fab984",
    0: "#eeeeee",
    -1: "#c0ccbe",
    -2: "#849eba",
    -3: "#4575b5",
}
# The figures each map's tooltips read of ``MapFrame.figures`` (the view asks for no more;
# the choropleth reads them all, the hot spots none).
HEAT_FIGURE_KEYS = ("cases", "people")
CASES_FIGURE_KEYS = ("cases",)
_SAFE_HREF = re.compile(r"^/(?![/\\])[A-Za-z0-9/_.\-?=&%+~]*$")


@dataclass(frozen=True)
class MapFrame:
    """What every map shows: the area, the areas drawn in it, where a click goes, the base map.

    ``features`` is a GeoJSON FeatureCollection (properties ``code``, ``name``,
    ``label``) of the areas drawn; ``drill`` maps an area's code to the page a click
    on it opens (a path on this site); ``figures`` gives each area's counts for the
    tooltips. ``title`` and ``notes`` are plain text for the map's info panel.
    """

    area: AreaInfo
    outline: dict
    features: dict
    figures: Mapping[str, AreaFigures] = field(default_factory=dict)
    drill: Mapping[str, str] = field(default_factory=dict)
    basemap: BaseMap = NO_BASEMAP
    assets: AssetPrefixes = AssetPrefixes()
    title: str = ""
    notes: tuple[str, ...] = ()


# -- coordinates ---------------------------------------------------------------------------


def _shift_coords(coords, basemap: BaseMap):
    if not coords:
        return coords
    if isinstance(coords[0], (int, float)):
        lon, lat = basemap.shift(coords[0], coords[1])
        return [round(float(lon), 5), round(float(lat), 5)]
    if isinstance(coords[0][0], (int, float)):
        arr = np.asarray(coords, dtype=float)
        lon, lat = basemap.shift(arr[:, 0], arr[:, 1])
        return np.round(np.column_stack([lon, lat]), 5).tolist()
    return [_shift_coords(c, basemap) for c in coords]


def shift_geometry(geometry: dict, basemap: BaseMap) -> dict:
    """A GeoJSON geometry in the base map's datum (unchanged unless it is GCJ-02)."""
    if not basemap.shifted or geometry is None:
        return geometry
    if geometry["type"] == "GeometryCollection":
        return {
            "type": "GeometryCollection",
            "geometries": [shift_geometry(g, basemap) for g in geometry["geometries"]],
        }
    return {
        "type": geometry["type"],
        "coordinates": _shift_coords(geometry["coordinates"], basemap),
    }


def _point(lon: float, lat: float, basemap: BaseMap) -> tuple[float, float]:
    """(lat, lon) in the base map's datum, for Leaflet."""
    x, y = basemap.shift(lon, lat)
    return round(float(y), 6), round(float(x), 6)


def _href(href: str | None) -> str | None:
    """A drill-down link, refused unless it is a plain path on this site."""
    if href is None:
        return None
    if not _SAFE_HREF.match(href):
        raise ValueError(f"not a path on this site: {href!r}")
    return href


# -- the common frame ------------------------------------------------------------------------


def _new_map(frame: MapFrame) -> folium.Map:
    w, s, e, n = frame.area.bounds
    (s2, w2), (n2, e2) = _point(w, s, frame.basemap), _point(e, n, frame.basemap)
    m = folium.Map(
        location=[(s2 + n2) / 2, (w2 + e2) / 2],
        zoom_start=10,
        tiles=None,
        control_scale=True,
        # Areas and outlines drawn on one canvas, not as an SVG path each: at the county's
        # 1,026 grids the paths took ~50 ms of the document's ~200 ms in chromium (adding
        # an SVG element per area, its styles and events), the canvas ~25 ms. Hover, click
        # and tooltips work the same (Leaflet hit-tests the canvas by geometry).
        prefer_canvas=True,
        zoom_snap=0.25,
        zoom_delta=0.5,
        # On the map itself: without tiles Leaflet has no zoom range, and clustering needs one.
        minZoom=5,
        maxZoom=max([19, *(s.max_zoom for s in frame.basemap.sources)]),
    )
    for i, source in enumerate(frame.basemap.sources):
        folium.TileLayer(
            tiles=source.url,
            attr=html_text(source.attribution),
            name=f"底图{i + 1}",
            max_zoom=source.max_zoom,
            max_native_zoom=source.max_zoom,
            subdomains=source.subdomains or "abc",
            overlay=i > 0,
            control=False,
        ).add_to(m)
    FrameStyle().add_to(m)
    # The area's view is set at once, before any layer is added: an animated zoom from
    # zoom_start made the browser draw every layer twice or more (at the start and at
    # the end of the animation; the heat canvas on each step of its redraws).
    fit = folium.FitBounds([[s2, w2], [n2, e2]], padding=(12, 12))
    fit.options["animate"] = False
    m.add_child(fit)
    return m


def _finish(m: folium.Map, frame: MapFrame, legend_html: str) -> folium.Map:
    if frame.title or frame.notes:
        lines = "".join(f"<div>{html_text(line)}</div>" for line in frame.notes)
        HtmlControl(
            f"<h2>{html_text(frame.title)}</h2>{lines}", "topright", "gc-panel gc-info"
        ).add_to(m)
    if legend_html:
        HtmlControl(legend_html, "bottomright", "gc-panel gc-legend").add_to(m)
    return use_local_assets(m, frame.assets, leave_out=UNUSED_BY_AREA_MAPS)


def _outline(m: folium.Map, frame: MapFrame) -> None:
    GeoJsonLayer(
        {
            "type": "Feature",
            "properties": {"style": {"color": "#3b3b3b", "weight": 3, "fill": False}},
            "geometry": shift_geometry(frame.outline, frame.basemap),
        },
        name="边界",
        interactive=False,
        control=False,
    ).add_to(m)


def _on_each_area(hrefs: Mapping[str, str], base: dict) -> JsCode:
    """Per area: a click opens its drill-down page in the whole window; hover outlines it."""
    return JsCode(
        f"""(function () {{
    var hrefs = {script_json(dict(hrefs))}, base = {script_json(base)};
    return function (feature, layer) {{
        var href = hrefs[feature.properties.to];
        layer.setStyle(Object.assign({{}}, base, feature.properties.style || {{}}));
        if (href) {{
            layer.on("click", function () {{ (window.top || window).location.assign(href); }});
        }}
        // On the canvas, bringToFront only redraws the area last (its whole outline shows);
        // no element moves under the pointer, so the click that follows still lands.
        layer.on("mouseover", function () {{
            layer.setStyle({{weight: 3, color: "#111111"}});
            layer.bringToFront();
        }});
        layer.on("mouseout", function () {{
            layer.setStyle(Object.assign({{}}, base, feature.properties.style || {{}}));
        }});
    }};
}})()"""
    )


def _areas(
    m: folium.Map,
    frame: MapFrame,
    rows: list[tuple[str, str]],
    values: Mapping[str, Mapping[str, str]],
    fills: Mapping[str, str] | None,
    name: str,
    base: dict | None = None,
) -> folium.GeoJson:
    """Draw ``frame.features`` with a tooltip of ``rows`` ((field, Chinese label)) and drill-down.

    ``values[code][field]`` is the tooltip text of a field (escaped here); ``fills``
    the fill colour of each area (None: outlines only); ``base`` the common path style.
    """
    base = base or (
        {"color": "#4d4d4d", "weight": 1, "fillOpacity": 0.75}
        if fills
        else {"color": "#555555", "weight": 1.2, "fillColor": "#ffffff", "fillOpacity": 0.0}
    )
    features, hrefs = [], {}
    inert: dict[str, str] = {}  # the tooltips' texts repeat ("0", "—", ...): each escaped once
    for f in frame.features["features"]:
        code = f["properties"]["code"]
        props = {"code": code, "name": html_text(f["properties"]["name"])}
        href = _href(frame.drill.get(code))
        if href:
            target = hrefs.setdefault(href, str(len(hrefs)))
            props["to"] = target
        if fills:
            props["style"] = {"fillColor": fills[code]}
        shown = values.get(code, {})
        for key, _ in rows:
            value = shown.get(key, "—")
            if value not in inert:
                inert[value] = html_text(value)
            props[key] = inert[value]
        features.append(
            {
                "type": "Feature",
                "properties": props,
                "geometry": shift_geometry(f["geometry"], frame.basemap),
            }
        )
    fields = ["name"] + [k for k, _ in rows]
    aliases = ["名称"] + [html_text(label) for _, label in rows]
    layer = GeoJsonLayer(
        {"type": "FeatureCollection", "features": features},
        name=name,
        tooltip=folium.GeoJsonTooltip(
            fields=fields, aliases=aliases, sticky=True, class_name="gc-tooltip"
        ),
        on_each_feature=_on_each_area({t: h for h, t in hrefs.items()}, base),
    )
    layer.add_to(m)
    return layer


def _figure_values(
    figures: Mapping[str, AreaFigures], first: str | None = None
) -> tuple[list, dict]:
    order = list(FIGURES)
    if first in order:
        order.remove(first)
        order.insert(0, first)
    rows = [(f"f_{k}", FIGURES[k].label) for k in order] + [("population", "户籍人口")]
    values = {}
    for code, fig in figures.items():
        v = {f"f_{k}": FIGURES[k].format(fig.value(k)) for k in order}
        v["population"] = f"{fig.population:,}" if fig.population is not None else "—"
        values[code] = v
    return rows, values


# -- heat map ----------------------------------------------------------------------------------


def heat_levels(weights: np.ndarray) -> tuple[str, float]:
    """Encode cell weights as one character each (0 = empty, 1..35), and the weight of level 35.

    The top level is the 95th percentile of the non-empty cells, so one extreme cell
    does not wash out the rest; anything above it is drawn at full heat.
    """
    flat = np.asarray(weights, dtype=float).ravel()
    nonzero = flat[flat > 0]
    if nonzero.size == 0:
        return "0" * flat.size, 0.0
    top = float(max(np.quantile(nonzero, 0.95), nonzero.min()))
    levels = np.where(flat > 0, np.ceil(np.minimum(flat / top, 1.0) * HEAT_LEVELS), 0).astype(int)
    levels = np.clip(levels, 0, HEAT_LEVELS)
    return "".join(HEAT_DIGITS[v] for v in levels.tolist()), top


def gcj_offsets(west: float, south: float, east: float, north: float, n: int = 9) -> dict:
    """A grid of GCJ-02 offsets over a box, for bilinear interpolation in the browser."""
    from webapp.geo import wgs84_to_gcj02

    lon = np.linspace(west, east, n)
    lat = np.linspace(south, north, n)
    grid_lon, grid_lat = np.meshgrid(lon, lat)  # row j = latitude, column i = longitude
    glon, glat = wgs84_to_gcj02(grid_lon, grid_lat)
    return {
        "west": west,
        "south": south,
        "stepx": (east - west) / (n - 1),
        "stepy": (north - south) / (n - 1),
        "nx": n,
        "ny": n,
        "dlon": np.round(glon - grid_lon, 9).ravel().tolist(),
        "dlat": np.round(glat - grid_lat, 9).ravel().tolist(),
    }


def interpolate_offset(shift: dict, lon: float, lat: float) -> tuple[float, float]:
    """The offset the browser computes for a point (mirrors HeatLattice's script), for tests."""
    fx = (lon - shift["west"]) / shift["stepx"]
    fy = (lat - shift["south"]) / shift["stepy"]
    i = min(max(math.floor(fx), 0), shift["nx"] - 2)
    j = min(max(math.floor(fy), 0), shift["ny"] - 2)
    tx, ty = fx - i, fy - j
    nx = shift["nx"]

    def lerp(a):
        v00, v10 = a[j * nx + i], a[j * nx + i + 1]
        v01, v11 = a[(j + 1) * nx + i], a[(j + 1) * nx + i + 1]
        return (1 - ty) * ((1 - tx) * v00 + tx * v10) + ty * ((1 - tx) * v01 + tx * v11)

    return lerp(shift["dlon"]), lerp(shift["dlat"])


def heat_spec(heat: HeatData, basemap: BaseMap) -> tuple[dict, float]:
    """The lattice as the browser gets it (:class:`elements.HeatLattice`) and the top weight."""
    cells, top = heat_levels(heat.weights)
    spec = {
        "west": round(heat.west, 7),
        "south": round(heat.south, 7),
        "dx": heat.dx,
        "dy": heat.dy,
        "cols": heat.cols,
        "rows": heat.rows,
        "levels": HEAT_LEVELS,
        "cells": cells,
    }
    if basemap.shifted:
        spec["shift"] = gcj_offsets(
            heat.west, heat.south, heat.west + heat.cols * heat.dx, heat.south + heat.rows * heat.dy
        )
    return spec, top


def heat_map(frame: MapFrame, heat: HeatData) -> folium.Map:
    """Heat of the cases in ``frame.area``: a lattice of cells, weighted by people or by cases."""
    m = _new_map(frame)
    spec, top = heat_spec(heat, frame.basemap)
    HeatLattice(spec, name="热力").add_to(m)
    _outline(m, frame)
    rows = [("f_cases", FIGURES["cases"].label), ("people", stats_figures.BY_KEY["people"].name)]
    values = {
        c: {"f_cases": f"{f.cases:,}", "people": f"{f.people:,}"} for c, f in frame.figures.items()
    }
    _areas(m, frame, rows, values, None, "区划")
    unit = "人次" if heat.weight == "people" else "件"
    legend = (
        "<h3>热力（每格 {cell} 米）</h3>"
        '<div class="gc-heat-bar"></div>'
        '<div class="gc-heat-scale"><span>少</span><span>≥ {top} {unit}/格</span></div>'
        "<div>共 {cases} 件，涉及 {people} 人次</div>"
        '<div class="gc-muted">按网格单元汇总，不显示单个案件位置</div>'
    ).format(
        cell=f"{heat.cell_m:,.0f}",
        top=html_text(f"{top:,.0f}"),
        unit=unit,
        cases=f"{heat.cases:,}",
        people=f"{heat.people:,}",
    )
    return _finish(m, frame, legend)


# -- choropleth ----------------------------------------------------------------------------------


def choropleth_map(frame: MapFrame, figure_key: str) -> folium.Map:
    """The areas of ``frame`` coloured by one figure in quantile classes, with a legend."""
    figure = FIGURES[figure_key]
    codes = [f["properties"]["code"] for f in frame.features["features"]]
    values = {c: frame.figures[c].value(figure_key) if c in frame.figures else None for c in codes}
    classes = colour_classes(figure, list(values.values()))
    fills = {c: colour_for(values[c], classes) for c in codes}
    m = _new_map(frame)
    rows, tips = _figure_values(frame.figures, figure_key)
    _areas(m, frame, rows, tips, fills, "区划")
    _outline(m, frame)
    items = "".join(
        f'<div class="gc-row"><i style="background:{c.colour}"></i>{html_text(c.label)}</div>'
        for c in classes
    )
    if any(v is None for v in values.values()):
        items += f'<div class="gc-row"><i style="background:{NO_DATA_COLOUR}"></i>无数据</div>'
    unit = "" if figure.unit == "%" else f"（{figure.unit}）"
    legend = f"<h3>{html_text(figure.label + unit)}</h3>{items or '<div>无数据</div>'}"
    legend += '<div class="gc-muted">分级：分位数</div>'
    return _finish(m, frame, legend)


# -- hot spots -------------------------------------------------------------------------------------


def hotspot_map(frame: MapFrame, analysis: HotSpotAnalysis) -> folium.Map:
    """Gi* hot and cold spots of the areas in ``frame`` (analysed over ``analysis.region``)."""
    result = {}
    if analysis.result is not None:
        result = {r["code"]: r for r in analysis.result.rows()}
    codes = [f["properties"]["code"] for f in frame.features["features"]]
    value_label = FIGURES["per_1000" if analysis.per_1000 else "cases"].label
    rows = [("value", value_label), ("z", "z 得分"), ("p", "p 值（双侧）"), ("bin", "结果")]
    values, fills = {}, {}
    counts = {b: 0 for b in HOTSPOT_COLOURS}
    for c in codes:
        r = result.get(c)
        if r is None:
            values[c] = {
                "value": "—",
                "z": "—",
                "p": "—",
                "bin": "未参与分析（无人口数据或区域过少）",
            }
            fills[c] = NO_DATA_COLOUR
            continue
        counts[r["bin"]] += 1
        values[c] = {
            "value": f"{r['value']:,.2f}" if analysis.per_1000 else f"{r['value']:,.0f}",
            "z": f"{r['z']:.3f}",
            "p": f"{r['p']:.4f}",
            "bin": r["label"],
        }
        fills[c] = HOTSPOT_COLOURS[r["bin"]]
    m = _new_map(frame)
    _areas(
        m,
        frame,
        rows,
        values,
        fills,
        "热点",
        {"color": "#777777", "weight": 0.8, "fillOpacity": 0.8},
    )
    _outline(m, frame)
    items = "".join(
        f'<div class="gc-row"><i style="background:{HOTSPOT_COLOURS[b]}"></i>{html_text(BIN_LABELS[b])}'
        f' <span class="gc-muted">{counts[b]}</span></div>'
        for b in sorted(HOTSPOT_COLOURS, reverse=True)
    )
    fdr = (
        "，已做错误发现率（FDR）校正" if analysis.result is not None and analysis.result.fdr else ""
    )
    legend = (
        f"<h3>Getis-Ord Gi* 热点分析</h3>{items}"
        f'<div class="gc-muted">{html_text(INFERENCE)}{fdr}</div>'
    )
    return _finish(m, frame, legend)


# -- single cases ----------------------------------------------------------------------


def case_popup(point: CasePoint, case_href: str) -> str:
    """A marker's popup: number, title, category, status, a link to the case file; no personal data."""
    try:
        status = Status(point.status).label
    except ValueError:
        status = point.status
    approx = '<div class="gc-muted">位置为近似位置</div>' if point.approximate else ""
    return (
        f'<div class="gc-popup"><b>{html_text(point.number)}</b>'
        f"<div>{html_text(point.title)}</div>"
        f"<div>类别：{html_text(point.category)}</div>"
        f"<div>状态：{html_text(status)}</div>{approx}"
        f'<a href="{html_text(_href(case_href))}" target="_top">查看案卷 ›</a></div>'
    )


_MARKER_CALLBACK = """function (row) {
    var marker = L.marker(new L.LatLng(row[0], row[1]), {title: ""});
    marker.bindPopup(row[2], {maxWidth: 280});
    return marker;
}"""


def cases_map(
    frame: MapFrame,
    total: int,
    points: Sequence[CasePoint] | None,
    case_href: Callable[[int], str],
) -> folium.Map:
    """Cases as clustered markers (``points``), or, when there are too many, counts per area.

    With ``points`` None the view found more cases than a page may carry: each area
    of ``frame`` shows its count as a bubble that opens the next level. ``case_href``
    gives the path of a case's file (the view's ``url_for``).
    """
    m = _new_map(frame)
    rows = [("f_cases", FIGURES["cases"].label)]
    values = {c: {"f_cases": f"{f.cases:,}"} for c, f in frame.figures.items()}
    _areas(m, frame, rows, values, None, "区划")
    _outline(m, frame)
    if points is None:
        bubbles = []
        for f in frame.features["features"]:
            code = f["properties"]["code"]
            n = frame.figures.get(code, AreaFigures()).cases
            if n == 0:
                continue
            lat, lon = _point(*f["properties"]["label"], frame.basemap)
            tip = f"{html_text(f['properties']['name'])}：{n:,} 件"
            bubbles.append([lat, lon, n, tip, _href(frame.drill.get(code))])
        AreaBubbles(bubbles, name=FIGURES["cases"].label).add_to(m)
        legend = (
            f"<h3>案件分布</h3><div>共 {total:,} 件</div>"
            '<div class="gc-muted">案件较多，按区域汇总显示；点击区域查看下一级</div>'
        )
    else:
        data = []
        for p in points:
            lat, lon = _point(p.lon, p.lat, frame.basemap)
            data.append([lat, lon, case_popup(p, case_href(int(p.id)))])
        MarkerClusterLayer(data, callback=_MARKER_CALLBACK, name="案件").add_to(m)
        shown = f"显示最近 {len(points):,} 件" if len(points) < total else "全部显示"
        legend = f"<h3>案件分布</h3><div>共 {total:,} 件（{shown}）</div>"
        legend += '<div class="gc-muted">点击标记查看案件；数字为聚合的案件数</div>'
    return _finish(m, frame, legend)
