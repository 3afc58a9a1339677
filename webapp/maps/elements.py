"""folium elements of our own: the frame's stylesheet, HTML panels, the heat lattice, area bubbles.

Text reaches these elements already made inert by the builders (``escaping.html_text``);
the elements put data into scripts only through ``tojson``, which escapes ``<``, ``>``,
``&`` and quotes, so nothing here can end a script or start markup.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import folium
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.plugins import FastMarkerCluster, HeatMap
from folium.template import Template

from webapp.grid.queries import GeoJSONGeometry


class RawText(Element):
    """Text that goes into the document as it is."""

    def __init__(self, text: str) -> None:
        super().__init__()
        # As a Jinja template would give it back: without one trailing newline.
        self._text = text[:-1] if text.endswith("\n") else text

    def render(self, **kwargs) -> str:
        return self._text


class RenderedOnce(MacroElement):
    """A MacroElement whose macros' output goes into the document as it is.

    branca's ``MacroElement.render`` wraps each macro's output in ``Element(output)``,
    which compiles that output as a Jinja template once more before rendering it: for
    the 500 kB of the county's grid polygons that is ~60 ms of a map's time, spent
    lexing data (and any ``{{`` in it would run as template code). Put this class
    after folium's own in the bases (``class X(folium.GeoJson, RenderedOnce)``) so
    that the folium class's ``render`` does its work and its ``super().render()``
    arrives here instead of at ``MacroElement``.
    """

    def render(self, **kwargs) -> None:
        figure = self.get_root()
        module = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = module.get(part)
            if macro is not None:
                target = getattr(figure, part)
                target.add_child(RawText(macro(self, kwargs)), name=self.get_name())
        for element in self._children.values():
            element.render(**kwargs)


def script_json(value) -> str:
    """JSON that is safe inside a <script> element (no ``<``, ``>``, ``&`` or line separators)."""
    return script_safe(_COMPACT_JSON.encode(value))


# One encoder for every call (``json.dumps`` with options makes a new one each time: a map
# of the county's grids encodes ~1,000 features' properties).
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def script_safe(text: str) -> str:
    """JSON text made safe inside a <script> element (the same value, other escapes)."""
    for ch, esc in _SCRIPT_ESCAPES:
        if ch in text:
            text = text.replace(ch, esc)
    return text


_SCRIPT_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def geojson_text(value) -> str:
    """``value`` (GeoJSON) as compact JSON safe in a script.

    A geometry that kept the JSON text it came as (``grid.queries.GeoJSONGeometry``,
    cached per process) goes in as that text: the coordinates of the county's 1,026
    grids are not serialised again for every map.
    """
    if isinstance(value, GeoJSONGeometry):
        return script_safe(value.json)
    if isinstance(value, dict) and value.get("type") == "FeatureCollection":
        features = value["features"]
        batched = _features_text(features)
        if batched is None:
            batched = ",".join(geojson_text(f) for f in features)
        return '{"type":"FeatureCollection","features":[' + batched + "]}"
    if isinstance(value, dict) and value.get("type") == "Feature" and set(value) <= _FEATURE_KEYS:
        return (
            '{"type":"Feature","properties":'
            + script_json(value.get("properties") or {})
            + ',"geometry":'
            + geojson_text(value.get("geometry"))
            + "}"
        )
    return script_json(value)


_FEATURE_KEYS = {"type", "properties", "geometry"}
# Stands for each feature's geometry while the features are encoded in one call. Its JSON
# text starts and ends with a quote, and a quote inside any other string is escaped, so
# the text can only be a whole value; a property that happens to equal it is caught by
# counting (and the features are then written one by one).
_GEOMETRY_SLOT = "\0geometry\0"
_GEOMETRY_SLOT_TEXT = '"\\u0000geometry\\u0000"'


def _features_text(features) -> str | None:
    """The features as :func:`geojson_text` writes each of them, their properties encoded in
    one call (one call per feature cost ~10 µs each: ~10 ms of a map of the county's grids).

    None unless every feature is a plain one (``type``, ``properties``, ``geometry``).
    """
    plain = []
    for f in features:
        if not (isinstance(f, dict) and f.get("type") == "Feature" and set(f) <= _FEATURE_KEYS):
            return None
        plain.append(
            {"type": "Feature", "properties": f.get("properties") or {}, "geometry": _GEOMETRY_SLOT}
        )
    text = script_json(plain)[1:-1]
    parts = text.split(_GEOMETRY_SLOT_TEXT)
    if len(parts) != len(plain) + 1:
        return None
    out = [parts[0]]
    for f, part in zip(features, parts[1:], strict=True):
        out.append(geojson_text(f.get("geometry")))
        out.append(part)
    return "".join(out)


class GeoJsonLayer(folium.GeoJson, RenderedOnce):
    """``folium.GeoJson`` written once (see :class:`RenderedOnce`) and lean.

    The data goes in as compact JSON (:func:`geojson_text`); each feature's style is
    ``properties.style``, given to Leaflet as the layer's ``style`` option (folium
    restyles every feature in a second pass); ``on_each_feature`` is any JavaScript
    expression that gives a function (so it can set up its tables once, not per
    feature). Tooltips and the rest of folium's GeoJson children work as before.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.geoJson(null, {
            style: function (feature) { return feature.properties.style || {}; },
            {%- if this.on_each_feature %}
            onEachFeature: {{ this.on_each_feature.js_code }},
            {%- endif %}
            ...{{ this.options|tojavascript }}
        });
        {{ this.get_name() }}.addData({{ this.data_text() }});
        {% endmacro %}
        """
    )

    def data_text(self) -> str:
        return geojson_text(self.data)


class MarkerClusterLayer(FastMarkerCluster, RenderedOnce):
    """``FastMarkerCluster``, its data written once (see :class:`RenderedOnce`)."""


FRAME_CSS = Path(__file__).resolve().parent.parent / "static" / "maps" / "frame.css"


@lru_cache(maxsize=1)
def frame_css() -> str:
    """The map document's own stylesheet (static/maps/frame.css), read once per process."""
    css = FRAME_CSS.read_text(encoding="utf-8")
    if "<" in css:  # it goes into a <style> element as it is
        raise ValueError(f"{FRAME_CSS} must not contain '<'")
    return css


class FrameStyle(MacroElement):
    """The map document's own stylesheet (legend, panels, tooltips, bubbles), and a plain
    attribution prefix (Leaflet's default links to its website, useless on a closed network).

    The stylesheet goes into the document itself: as a ``<link>`` it held the map's
    scripts (a script waits for the stylesheets before it) for the round trip that
    revalidates it on every map (static files are served ``no-cache``).
    """

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>{{ this.css }}</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        if ({{ this._parent.get_name() }}.attributionControl) {
            {{ this._parent.get_name() }}.attributionControl.setPrefix("Leaflet");
        }
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "FrameStyle"
        self.css = frame_css()


class HtmlControl(MacroElement):
    """A Leaflet control showing ``html`` (already escaped) in a corner of the map."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var control = L.control({position: {{ this.position|tojson }}});
            control.onAdd = function () {
                var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
                div.innerHTML = {{ this.html|tojson }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            control.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self, html: str, position: str = "bottomright", css_class: str = "gc-panel"
    ) -> None:
        super().__init__()
        self._name = "HtmlControl"
        self.html = html
        self.position = position
        self.css_class = css_class


class HeatLattice(HeatMap, RenderedOnce):
    """A Leaflet.heat layer drawn from a lattice of cell intensities, not from case points.

    ``spec`` holds the lattice (origin, cell size in degrees, columns, rows) and its
    cells as one string, one character per cell (``0-9a-z``: intensity 0..35 of 35),
    so the layer's size depends on the area, never on the number of cases. With a
    GCJ-02 base map, ``spec["shift"]`` is a grid of GCJ-02 offsets over the lattice,
    interpolated bilinearly per cell. The radius follows the zoom so that a cell keeps
    about its own size on screen.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var spec = {{ this.spec|tojson }};
            var digits = "0123456789abcdefghijklmnopqrstuvwxyz";
            function lerp(g, a, lon, lat) {
                var fx = (lon - g.west) / g.stepx, fy = (lat - g.south) / g.stepy;
                var i = Math.min(Math.max(Math.floor(fx), 0), g.nx - 2);
                var j = Math.min(Math.max(Math.floor(fy), 0), g.ny - 2);
                var tx = fx - i, ty = fy - j;
                var v00 = a[j * g.nx + i], v10 = a[j * g.nx + i + 1];
                var v01 = a[(j + 1) * g.nx + i], v11 = a[(j + 1) * g.nx + i + 1];
                return (1 - ty) * ((1 - tx) * v00 + tx * v10) + ty * ((1 - tx) * v01 + tx * v11);
            }
            var points = [];
            for (var j = 0; j < spec.rows; j++) {
                for (var i = 0; i < spec.cols; i++) {
                    var level = digits.indexOf(spec.cells.charAt(j * spec.cols + i));
                    if (level <= 0) { continue; }
                    var lon = spec.west + (i + 0.5) * spec.dx, lat = spec.south + (j + 0.5) * spec.dy;
                    if (spec.shift) {
                        var g = spec.shift;
                        var dlon = lerp(g, g.dlon, lon, lat), dlat = lerp(g, g.dlat, lon, lat);
                        lon += dlon; lat += dlat;
                    }
                    points.push([lat, lon, level / spec.levels]);
                }
            }
            var layer = L.heatLayer(points, {{ this.options|tojavascript }});
            var map = {{ this._parent.get_name() }};
            function fit() {
                var lat = spec.south + spec.rows * spec.dy / 2, lon = spec.west + spec.cols * spec.dx / 2;
                var a = map.latLngToContainerPoint([lat, lon]);
                var b = map.latLngToContainerPoint([lat, lon + spec.dx]);
                var px = Math.abs(b.x - a.x);
                var radius = Math.min(Math.max(px * 1.1, 6), 70);
                layer.setOptions({radius: radius, blur: Math.max(radius * 0.8, 4)});
            }
            map.whenReady(fit);
            map.on("zoomend", fit);
            return layer;
        })();
        {% endmacro %}
        """
    )

    def __init__(self, spec: dict, name: str | None = None, **options) -> None:
        # HeatMap's own __init__ wants points; this layer carries a lattice instead.
        Layer.__init__(self, name=name, overlay=True, control=True, show=True)
        self._name = "HeatMap"
        self.spec = spec
        self.data = []
        self.options = {
            "maxZoom": 0,
            "max": 1.0,
            "minOpacity": 0.3,
            "radius": 12,
            "blur": 10,
            **options,
        }

    def _get_self_bounds(self):
        s = self.spec
        return [
            [s["south"], s["west"]],
            [s["south"] + s["rows"] * s["dy"], s["west"] + s["cols"] * s["dx"]],
        ]


class AreaBubbles(Layer, RenderedOnce):
    """Case counts of areas as numbered bubbles at points inside them (server-side clusters).

    ``rows`` are ``[lat, lon, count, tooltip_html, href_or_null]``; a click on a bubble
    with an ``href`` opens it in the whole window (the next level down).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var rows = {{ this.rows|tojson }};
            var group = L.featureGroup();
            rows.forEach(function (row) {
                var n = Number(row[2]);
                var size = Math.round(26 + 10 * Math.log10(Math.max(n, 1)));
                var icon = L.divIcon({className: "gc-bubble", html: "<span>" + n + "</span>",
                                      iconSize: [size, size]});
                var marker = L.marker([row[0], row[1]], {icon: icon, keyboard: true, title: ""});
                marker.bindTooltip(row[3], {direction: "top", className: "gc-tooltip"});
                if (row[4]) {
                    marker.on("click", function () { (window.top || window).location.assign(row[4]); });
                }
                marker.addTo(group);
            });
            return group;
        })();
        {% endmacro %}
        """
    )

    def __init__(self, rows: list[list], name: str | None = None) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = "AreaBubbles"
        self.rows = rows
