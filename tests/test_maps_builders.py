"""Map builders without a database: data in, folium.Map out; assets, escaping, base maps, GCJ-02."""

from __future__ import annotations

import json
import re

import folium
import numpy as np
import pytest
from coord_convert.transform import wgs2gcj
from folium.plugins import Fullscreen, HeatMap, MarkerCluster

from tests.maps_fixtures import COUNTY, HOSTILE, PWN, features, frame, hosts_in, lattice, points
from webapp.escaping import html_text
from webapp.geo import distance_m, wgs84_to_gcj02
from webapp.hotspots import gistar, weights
from webapp.maps import assets, builders
from webapp.maps.basemap import BaseMapConfigError, basemap_from_config
from webapp.maps.figures import (
    FIGURES,
    SEQUENTIAL,
    AreaFigures,
    class_breaks,
    colour_classes,
    colour_for,
)
from webapp.maps.queries import HotSpotAnalysis
from webapp.stats import figures as stats_figures

ROOT = assets.__file__.rsplit("/webapp/", 1)[0]


def render(m: folium.Map) -> str:
    return assets.render_document(m)


def in_script(text: str) -> str:
    """``text`` as folium's tojson writes it inside a script (ASCII, <>&' escaped)."""
    out = json.dumps(text)[1:-1]
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        out = out.replace(ch, esc)
    return out


def hotspot_analysis(per_1000=False):
    nb = weights.Neighbours(("990200001", "990200002"), np.array([0, 1]), np.array([1, 0]), "queen")
    result = gistar.HotSpots(
        nb.codes,
        np.array([40.0, 10.0]),
        np.array([2.7, -1.7]),
        np.array([0.0069, 0.089]),
        np.array([3, -1]),
        "queen",
        None,
        False,
    )
    return HotSpotAnalysis(result, COUNTY, COUNTY.level, 2, per_1000)


def case_href(case_id: int) -> str:
    return f"/cases/{case_id}"


def all_maps(f=None):
    f = f or frame()
    return {
        "heat": builders.heat_map(f, lattice()),
        "choropleth": builders.choropleth_map(f, "resolution_rate"),
        "hotspots": builders.hotspot_map(f, hotspot_analysis()),
        "cases": builders.cases_map(f, 2, points(), case_href),
        "cases-aggregated": builders.cases_map(f, 50_000, None, case_href),
    }


# -- assets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["heat", "choropleth", "hotspots", "cases", "cases-aggregated"])
def test_every_map_loads_only_the_apps_own_files(kind):
    html = render(all_maps()[kind])
    assert hosts_in(html) == set()  # no CDN, no host of any kind with no base map
    loaded = re.findall(r"<(?:script|link)\b[^>]*(?:src|href)=\"([^\"]+)\"", html)
    assert loaded and all(u.startswith(("/vendor/", "/static/")) for u in loaded)
    assert (
        "/vendor/leaflet/dist/leaflet.js" in loaded and "/vendor/leaflet/dist/leaflet.css" in loaded
    )
    # Only what the map draws with: Leaflet, its plugin for this map, the frame's own
    # stylesheet (inline: a <link> held the scripts for a round trip); none of folium's
    # Bootstrap, jQuery, icon fonts and awesome-markers.
    wanted = {
        "/vendor/leaflet/dist/leaflet.js",
        "/vendor/leaflet/dist/leaflet.css",
    }
    assert html.count(".gc-tooltip th {") == 1  # frame.css, once, in a <style>
    if kind == "heat":
        wanted.add("/vendor/leaflet.heat/dist/leaflet-heat.js")
    if kind == "cases":
        wanted |= {
            "/vendor/leaflet.markercluster/dist/leaflet.markercluster.js",
            "/vendor/leaflet.markercluster/dist/MarkerCluster.css",
            "/vendor/leaflet.markercluster/dist/MarkerCluster.Default.css",
        }
    assert set(loaded) == wanted and len(loaded) == len(wanted)


def test_left_out_assets_are_only_those_of_this_map_and_known_ones():
    m = folium.Map(tiles=None)
    assets.use_local_assets(m, leave_out=assets.UNUSED_BY_AREA_MAPS)
    assert [name for name, _ in m.default_js] == ["leaflet"]
    assert [name for name, _ in m.default_css] == ["leaflet_css"]
    # Another map keeps them (instance attributes only), and a name the app does not
    # know cannot be "left out" (a typo would silently keep the asset).
    other = folium.Map(tiles=None)
    assets.use_local_assets(other)
    assert "jquery" in [name for name, _ in other.default_js]
    with pytest.raises(ValueError, match="jquery.js"):
        assets.use_local_assets(folium.Map(tiles=None), leave_out={"jquery.js"})


@pytest.mark.parametrize("kind", ["heat", "choropleth", "hotspots", "cases", "cases-aggregated"])
def test_every_map_sets_its_view_once_without_animating(kind):
    # An animated zoom from zoom_start to the area's bounds drew every layer twice (the
    # heat canvas several times) before the page settled.
    html = render(all_maps()[kind])
    fits = re.findall(r"\.fitBounds\(\s*(\[\[.*?\]\]),\s*(\{.*?\})\s*\);", html, re.S)
    assert len(fits) == 1
    options = json.loads(fits[0][1])
    assert options == {"animate": False, "padding": [12, 12]}


def test_folium_class_defaults_are_never_changed():
    before = (
        list(folium.Map.default_js),
        list(HeatMap.default_js),
        list(MarkerCluster.default_css),
    )
    all_maps()
    assert (
        list(folium.Map.default_js),
        list(HeatMap.default_js),
        list(MarkerCluster.default_css),
    ) == before
    assert folium.Map.default_js[0][1].startswith("https://")  # still folium's own
    # ... so a map built without use_local_assets still names the CDN (and is refused).
    with pytest.raises(assets.ForeignAsset):
        assets.render_document(folium.Map(tiles=None))


def test_an_unknown_asset_fails_loudly():
    m = folium.Map(tiles=None)
    Fullscreen().add_to(m)
    with pytest.raises(assets.ForeignAsset, match="Fullscreen"):
        assets.use_local_assets(m)


def test_a_document_naming_another_host_is_refused():
    with pytest.raises(assets.ForeignAsset):
        assets.check_document(
            '<script src="https://cdn.example.com/x.js"></script>', assets.AssetPrefixes()
        )
    with pytest.raises(assets.ForeignAsset):
        assets.check_document(
            '<link rel="stylesheet" href="//cdn.example.com/x.css">', assets.AssetPrefixes()
        )
    with pytest.raises(assets.ForeignAsset):
        assets.check_document(
            "<style>a{background:url(http://evil.example/x.png)}</style>", assets.AssetPrefixes()
        )
    assets.check_document(
        "url(https://t0.tianditu.gov.cn/x)", assets.AssetPrefixes(), ["t0.tianditu.gov.cn"]
    )


def test_every_known_asset_is_on_disk():
    from pathlib import Path

    for asset in {**assets.KNOWN_JS, **assets.KNOWN_CSS}.values():
        base = Path(ROOT) / ("node_modules" if asset.kind == "vendor" else "webapp/static")
        assert (base / asset.path).is_file(), asset
    packages = json.loads((Path(ROOT) / "package.json").read_text())["dependencies"]
    assert {a.package for a in [*assets.KNOWN_JS.values(), *assets.KNOWN_CSS.values()]} - {
        None
    } <= set(packages)


def test_inline_scripts_get_the_nonce_and_nothing_else_changes():
    m = all_maps()["heat"]
    html = assets.render_document(m, nonce="abcdefghijklmnop1234")
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert inline and all('nonce="abcdefghijklmnop1234"' in tag for tag in inline)
    assert all("nonce" not in tag for tag in re.findall(r"<script[^>]*\bsrc=[^>]*>", html))
    with pytest.raises(ValueError):
        assets.render_document(m, nonce='x" onload="1')


# -- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["heat", "choropleth", "hotspots", "cases", "cases-aggregated"])
def test_user_text_is_inert_in_every_map(kind):
    html = render(all_maps()[kind])
    for text in HOSTILE:
        assert text not in html
    for bad in ("<img src=x", "<svg onload", "</script><script>window", "${window.__pwned"):
        assert bad not in html
    # The area's name is there, escaped for HTML, written as script data.
    assert in_script(html_text(PWN)) in html
    # The title in the info panel too.
    assert in_script(html_text(PWN + " 标题")) in html


def test_case_popups_escape_title_and_category_and_link_the_case_file():
    p = points()[1]
    popup = builders.case_popup(p, "/cases/102")
    assert (
        "<script>" not in popup and "<svg" not in popup and "`" not in popup and "${" not in popup
    )
    assert html_text(p.title) in popup and html_text(p.category) in popup
    assert 'href="/cases/102" target="_top"' in popup
    assert "已化解" in popup and "近似" in popup
    with pytest.raises(ValueError):
        builders.case_popup(p, "javascript:alert(1)")


def test_drill_links_must_be_paths_on_this_site():
    for bad in (
        "javascript:alert(1)",
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil",
        '/a"b',
    ):
        with pytest.raises(ValueError):
            builders.heat_map(frame(drill={"990200001": bad}), lattice())


# -- layers and legends ------------------------------------------------------------------------------


def geojson_layers(m: folium.Map) -> list[folium.GeoJson]:
    return [c for c in m._children.values() if isinstance(c, folium.GeoJson)]


def test_heat_map_ships_a_lattice_not_points():
    m = all_maps()["heat"]
    heat = [c for c in m._children.values() if type(c).__name__ == "HeatLattice"]
    assert len(heat) == 1
    spec = heat[0].spec
    assert (spec["cols"], spec["rows"]) == (20, 10) and len(spec["cells"]) == 200
    assert set(spec["cells"]) <= set(builders.HEAT_DIGITS)
    # The heaviest cell is at full heat, an empty one is 0, a light one above 0.
    assert (
        spec["cells"][7 * 20 + 15] == "z"
        and spec["cells"][0] == "0"
        and spec["cells"][2 * 20 + 3] != "0"
    )
    html = render(m)
    assert "L.heatLayer(points" in html
    legend = [
        c.html
        for c in m._children.values()
        if type(c).__name__ == "HtmlControl" and "gc-legend" in c.css_class
    ]
    assert "每格 1,000 米" in legend[0] and "共 20 件" in legend[0]
    # Areas drawn with their tooltip and drill-down; the outline on top.
    areas = geojson_layers(m)[-1]
    assert [f["properties"]["to"] for f in areas.data["features"]] == ["0", "1"]
    assert {f["properties"]["f_cases"] for f in areas.data["features"]} == {"40", "10"}


def test_heat_levels_scale_to_the_95th_percentile():
    cells, top = builders.heat_levels(np.array([[0, 1, 2, 100]]))
    assert cells[0] == "0" and cells[3] == "z" and top < 100
    assert builders.heat_levels(np.zeros((2, 2))) == ("0000", 0.0)


def test_choropleth_classes_legend_and_tooltip():
    m = all_maps()["choropleth"]
    areas = geojson_layers(m)[0]
    props = {f["properties"]["code"]: f["properties"] for f in areas.data["features"]}
    # 化解率: 30/40 = 75 %, 9/10 = 90 %; the better area gets the lighter colour.
    assert (
        props["990200001"]["f_resolution_rate"] == "75.0%"
        and props["990200002"]["f_resolution_rate"] == "90.0%"
    )
    assert props["990200001"]["style"]["fillColor"] == SEQUENTIAL[-1]
    assert props["990200002"]["style"]["fillColor"] == SEQUENTIAL[0]
    assert props["990200002"]["f_satisfaction_rate"] == "—"  # no follow-up: no rate
    assert props["990200001"]["population"] == "12,000"
    tooltip = [c for c in areas._children.values() if isinstance(c, folium.GeoJsonTooltip)][0]
    assert (
        tooltip.fields[:3] == ["name", "f_resolution_rate", "f_cases"]
        and tooltip.aliases[1] == "化解率"
    )
    legend = [
        c
        for c in m._children.values()
        if type(c).__name__ == "HtmlControl" and "gc-legend" in c.css_class
    ]
    assert len(legend) == 1 and "化解率" in legend[0].html and legend[0].html.count("<i style") == 2


def test_colour_classes():
    fig = FIGURES["cases"]
    values = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, None]
    classes = colour_classes(fig, values)
    assert len(classes) == 5 and classes[0].lower == 0 and classes[-1].upper == 55
    assert [c.colour for c in classes] == list(SEQUENTIAL)
    assert colour_for(55, classes) == SEQUENTIAL[-1] and colour_for(0, classes) == SEQUENTIAL[0]
    assert colour_for(None, classes) == "#d9d9d9"
    rate = colour_classes(FIGURES["resolution_rate"], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert (
        rate[0].colour == SEQUENTIAL[-1] and rate[-1].colour == SEQUENTIAL[0]
    )  # low rate is worst
    assert class_breaks([4, 4, 4]) == [4.0, 4.0] and class_breaks([None]) == []


def test_a_maps_figures_are_the_statistics_figures():
    """Names, units and definitions come from webapp.stats.figures; the map only formats them."""
    for key, fig in FIGURES.items():
        assert fig.definition is stats_figures.BY_KEY[key]
        assert (
            fig.label == stats_figures.BY_KEY[key].name
            and fig.unit == stats_figures.BY_KEY[key].unit
        )
    assert (
        FIGURES["resolution_rate"].format(0.75) == "75.0%"
        and FIGURES["cases"].format(1234) == "1,234"
    )
    assert (
        FIGURES["per_1000"].format(2.5) == "2.50"
        and FIGURES["satisfaction_rate"].format(None) == "—"
    )
    f = AreaFigures({"cases": 40, "people": 90, "satisfaction_rate": None}, 8000)
    assert f.cases == 40 and f.people == 90 and f.value("satisfaction_rate") is None
    assert AreaFigures().cases == 0 and AreaFigures().value("overdue") is None


def test_hot_spot_map_bins_legend_and_tooltip():
    m = all_maps()["hotspots"]
    areas = geojson_layers(m)[0]
    props = {f["properties"]["code"]: f["properties"] for f in areas.data["features"]}
    assert props["990200001"]["z"] == "2.700" and props["990200001"]["p"] == "0.0069"
    assert props["990200001"]["style"]["fillColor"] == builders.HOTSPOT_COLOURS[3]
    assert props["990200002"]["style"]["fillColor"] == builders.HOTSPOT_COLOURS[-1]
    assert "热点（99% 置信度）" in props["990200001"]["bin"]
    legend = [
        c.html
        for c in m._children.values()
        if type(c).__name__ == "HtmlControl" and "gc-legend" in c.css_class
    ][0]
    assert legend.count("<i style") == 7 and "双侧" in legend and "正态" in legend


def test_cases_map_markers_and_aggregated_bubbles():
    markers = all_maps()["cases"]
    cluster = [c for c in markers._children.values() if isinstance(c, MarkerCluster)]
    assert len(cluster) == 1 and len(cluster[0].data) == 2
    assert 'href="/cases/101"' in cluster[0].data[0][2]
    bubbles = all_maps()["cases-aggregated"]
    layer = [c for c in bubbles._children.values() if type(c).__name__ == "AreaBubbles"][0]
    assert [r[2] for r in layer.rows] == [40, 10] and layer.rows[0][
        4
    ] == "/maps/?map=heat&area=990200001"
    assert not any(isinstance(c, MarkerCluster) for c in bubbles._children.values())


# -- base maps and GCJ-02 --------------------------------------------------------------------------------


def test_base_map_configuration():
    assert basemap_from_config({}).kind == "none" and basemap_from_config({}).sources == ()
    with pytest.raises(BaseMapConfigError):
        basemap_from_config({"MAP_BASEMAP": "tianditu"})
    tdt = basemap_from_config(
        {"MAP_BASEMAP": "tianditu", "MAP_TIANDITU_KEY": "0123456789abcdef0123456789abcdef"}
    )
    assert len(tdt.sources) == 2 and not tdt.shifted and "t7.tianditu.gov.cn" in tdt.hosts
    with pytest.raises(BaseMapConfigError):
        basemap_from_config(
            {"MAP_BASEMAP": "xyz", "MAP_TILE_URL": "https://tiles.example/{z}/{x}/{y}.png"}
        )
    with pytest.raises(BaseMapConfigError):
        basemap_from_config(
            {"MAP_BASEMAP": "xyz", "MAP_TILE_URL": "ftp://x/{z}", "MAP_TILE_ATTRIBUTION": "x"}
        )
    with pytest.raises(BaseMapConfigError):
        basemap_from_config({"MAP_BASEMAP": "google"})
    amap = basemap_from_config(
        {
            "MAP_BASEMAP": "xyz",
            "MAP_TILE_CRS": "gcj02",
            "MAP_TILE_SUBDOMAINS": "1234",
            "MAP_TILE_URL": "https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}",
            "MAP_TILE_ATTRIBUTION": "© 高德地图",
        }
    )
    assert amap.shifted and amap.origins == tuple(
        f"https://webrd0{i}.is.autonavi.com" for i in "1234"
    )


def test_tiles_are_the_only_other_host_and_their_attribution_is_escaped():
    bm = basemap_from_config(
        {
            "MAP_BASEMAP": "xyz",
            "MAP_TILE_URL": "https://tiles.example.org/{z}/{x}/{y}.png",
            "MAP_TILE_ATTRIBUTION": "<b onmouseover=alert(1)>x</b>",
        }
    )
    m = builders.choropleth_map(frame(basemap=bm), "cases")
    html = assets.render_document(m, allowed_hosts=bm.hosts)
    assert hosts_in(html) == {"tiles.example.org"}
    assert "<b onmouseover" not in html
    with pytest.raises(assets.ForeignAsset):
        assets.render_document(m)  # the tile host is allowed only when it is the configured one


AMAP = {
    "MAP_BASEMAP": "xyz",
    "MAP_TILE_CRS": "gcj02",
    "MAP_TILE_SUBDOMAINS": "1234",
    "MAP_TILE_URL": "https://webrd0{s}.is.autonavi.com/appmaptile?style=8&x={x}&y={y}&z={z}",
    "MAP_TILE_ATTRIBUTION": "© 高德地图",
}


def test_a_gcj02_base_map_shifts_a_case_onto_the_right_street():
    # A known WGS84 point in 延津县 and its GCJ-02 position from an independent implementation.
    lon, lat = 114.2054321, 35.2719876
    ref_lon, ref_lat = wgs2gcj(lon, lat)
    p = points()[0]
    moved = type(p)(p.id, p.number, "t", "c", p.status, lon, lat, False)
    m = builders.cases_map(frame(basemap=basemap_from_config(AMAP)), 1, [moved], case_href)
    cluster = [c for c in m._children.values() if isinstance(c, MarkerCluster)][0]
    got_lat, got_lon = cluster.data[0][:2]
    assert distance_m(got_lon, got_lat, ref_lon, ref_lat) < 1.0
    assert (
        distance_m(got_lon, got_lat, lon, lat) > 100
    )  # it did move (GCJ-02 is hundreds of metres off)
    # Without a GCJ-02 base map nothing moves.
    plain = builders.cases_map(frame(), 1, [moved], case_href)
    data = [c for c in plain._children.values() if isinstance(c, MarkerCluster)][0].data[0]
    assert distance_m(data[1], data[0], lon, lat) < 0.2


def test_a_gcj02_base_map_shifts_boundaries_bubbles_and_heat():
    bm = basemap_from_config(AMAP)
    m = builders.heat_map(frame(basemap=bm), lattice())
    areas = geojson_layers(m)[-1]
    x, y = areas.data["features"][0]["geometry"]["coordinates"][0][0]
    src = features()["features"][0]["geometry"]["coordinates"][0][0]
    ref = wgs2gcj(*src)
    assert distance_m(x, y, *ref) < 1.5  # coordinates rounded to 5 decimals
    spec = [c for c in m._children.values() if type(c).__name__ == "HeatLattice"][0].spec
    worst = 0.0
    for j in range(spec["rows"]):
        for i in range(spec["cols"]):
            clon, clat = (
                spec["west"] + (i + 0.5) * spec["dx"],
                spec["south"] + (j + 0.5) * spec["dy"],
            )
            dlon, dlat = builders.interpolate_offset(spec["shift"], clon, clat)
            glon, glat = wgs84_to_gcj02(clon, clat)
            worst = max(worst, distance_m(clon + dlon, clat + dlat, float(glon), float(glat)))
    assert worst < 1.0
    bubbles = builders.cases_map(frame(basemap=bm), 10_000, None, case_href)
    row = [c for c in bubbles._children.values() if type(c).__name__ == "AreaBubbles"][0].rows[0]
    label = features()["features"][0]["properties"]["label"]
    assert distance_m(row[1], row[0], *wgs2gcj(*label)) < 1.0


def test_features_written_in_one_call_are_the_features_one_by_one():
    """A collection's features are encoded in one call, with the same text as feature by feature,
    and a property that equals the geometry's stand-in falls back to one by one."""
    from webapp.grid.queries import GeoJSONGeometry
    from webapp.maps.elements import _GEOMETRY_SLOT, _features_text, geojson_text

    square = '{"type":"Polygon","coordinates":[[[114,35],[114.1,35],[114.1,35.1],[114,35]]]}'
    features = [
        {
            "type": "Feature",
            "properties": {"code": str(i), "name": f"<b>网格{i}</b> & \u2028", "to": None},
            "geometry": GeoJSONGeometry(square) if i % 2 else json.loads(square),
        }
        for i in range(5)
    ]
    one_by_one = ",".join(geojson_text(f) for f in features)
    assert _features_text(features) == one_by_one
    text = geojson_text({"type": "FeatureCollection", "features": features})
    assert text == '{"type":"FeatureCollection","features":[' + one_by_one + "]}"
    assert "<" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text)["features"][3]["properties"]["name"] == "<b>网格3</b> & \u2028"
    features[2]["properties"]["name"] = _GEOMETRY_SLOT
    assert _features_text(features) is None
    text = geojson_text({"type": "FeatureCollection", "features": features})
    data = json.loads(text)
    assert data["features"][2]["properties"]["name"] == _GEOMETRY_SLOT
    assert [f["geometry"]["type"] for f in data["features"]] == ["Polygon"] * 5
    features[4] = {**features[4], "id": 7}  # not a plain feature: one by one, as it is
    assert _features_text(features) is None
