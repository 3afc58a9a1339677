"""The plan map builder: local assets only, user text made inert, pure data in."""

from __future__ import annotations

import json
import re

import folium
import folium.plugins
import pytest

from webapp.maps.assets import KNOWN_CSS, KNOWN_JS, AssetPrefixes, ForeignAsset, use_local_assets
from webapp.visits.builders import MapRoute, MapStop, PlanMap, plan_map

EVIL = "</script><img src=x onerror=alert(1)>`${document.cookie}`"
OUTLINE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "第一网格" + EVIL},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [114.20, 35.23],
                        [114.21, 35.23],
                        [114.21, 35.24],
                        [114.20, 35.24],
                        [114.20, 35.23],
                    ]
                ],
            },
        }
    ],
}


def _data(**kw) -> PlanMap:
    route = MapRoute(
        label="张网格" + EVIL,
        start_lon=114.201,
        start_lat=35.231,
        start_label="朝阳社区居委会",
        stops=(
            MapStop(114.205, 35.235, "410726-2026-0000001 " + EVIL, "案件走访：" + EVIL, 1),
            MapStop(114.207, 35.236, "网格巡访：第一网格", "网格内没有任何走访记录", 2, "done"),
        ),
        length_m=1234.0,
    )
    defaults = dict(
        routes=(route,),
        outline=OUTLINE,
        unassigned=(MapStop(114.209, 35.238, "未分配" + EVIL, EVIL),),
    )
    defaults.update(kw)
    return PlanMap(**defaults)


def render(m) -> str:
    return m.get_root().render()


def test_only_local_assets_are_linked():
    """The maps module's one table of local files, under the prefixes the app serves them at."""
    prefixes = AssetPrefixes("/root/vendor/", "/root/static/")
    html = render(plan_map(_data(), prefixes))
    links = set(re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html))
    known = {prefixes.url(a) for a in (*KNOWN_JS.values(), *KNOWN_CSS.values())}
    assert links <= known
    assert {
        "/root/vendor/leaflet/dist/leaflet.js",
        "/root/vendor/leaflet/dist/leaflet.css",
    } <= links
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)


def test_user_text_is_inert_in_html_and_in_javascript():
    html = render(plan_map(_data()))
    assert "<img src=x" not in html
    assert "${document.cookie}" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("</script>") == html.count("<script")  # no script closed early by user text


def test_stops_are_numbered_and_routes_drawn():
    html = render(plan_map(_data()))
    icons = [json.loads(f'"{raw}"') for raw in re.findall(r'"html": "((?:[^"\\]|\\.)*)"', html)]
    assert '<div class="vs-start">起</div>' in icons
    assert '<div class="vs-stop " style="background:#1b9e77">1</div>' in icons
    assert '<div class="vs-stop vs-done" style="background:#1b9e77">2</div>' in icons
    assert html.count("L.polyline(") == 1


def test_an_empty_plan_shows_its_area():
    html = render(plan_map(_data(routes=(), unassigned=())))
    assert "fitBounds" in html and "L.polyline(" not in html


def test_folium_defaults_are_left_alone():
    before = list(folium.Map.default_js)
    plan_map(_data())
    assert folium.Map.default_js == before
    assert any("cdn" in url for _, url in folium.Map.default_js)


def test_an_unknown_asset_fails_loudly():
    m = folium.Map(tiles=None)
    folium.plugins.Draw().add_to(m)
    with pytest.raises(ForeignAsset):
        use_local_assets(m)
