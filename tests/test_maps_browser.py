"""Maps in a real browser with every other origin blocked: drawn, hoverable, drillable, inert."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from tests.browser import sign_in_page
from tests.maps_fixtures import HOSTILE
from webapp.db import database

pytestmark = pytest.mark.browser

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
    window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""

# The areas (the features of the map's interactive layer) are drawn on Leaflet's canvas, not
# as an SVG path each: the tests find them through the Leaflet layers and check what the
# canvas shows. The map's layers, each interactive area with its fill and its renderer.
AREAS = """() => {
    const map = Object.values(window).find(v => v instanceof L.Map);
    if (!map) { return []; }
    const out = [];
    map.eachLayer(l => {
        if (l.feature && l.feature.properties && l.feature.properties.code !== undefined
                && l.options.interactive !== false) {
            out.push({code: l.feature.properties.code, fill: l.options.fillColor,
                      canvas: map.getRenderer(l) instanceof L.Canvas});
        }
    });
    return out;
}"""

# The colours painted on the areas' canvas: {"#rrggbb": pixels} of the pixels painted at the
# fill opacity of ``alpha`` (0..255, give or take 3), or of every painted pixel without it.
PAINTED = """(alpha) => {
    const c = document.querySelector(".leaflet-overlay-pane canvas:not(.leaflet-heatmap-layer)");
    if (!c || !c.width) { return {}; }
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const hex = v => v.toString(16).padStart(2, "0");
    const out = {};
    for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] === 0 || (alpha !== null && Math.abs(d[i + 3] - alpha) > 3)) { continue; }
        const k = "#" + hex(d[i]) + hex(d[i + 1]) + hex(d[i + 2]);
        out[k] = (out[k] || 0) + 1;
    }
    return out;
}"""

# A point well inside an area's drawn polygon (8 px from any edge, so the pointer hits that area
# and no other), on the areas' canvas with nothing over it (panels, controls), in the frame's
# coordinates; the first drillable area when no code is given. The polygon test is done here on
# the layer's own coordinates (even-odd over every ring), not by Leaflet's hit-test, which
# the pointer then exercises for real.
FIND_AREA = """(code) => {
    const map = Object.values(window).find(v => v instanceof L.Map);
    const layers = [];
    map.eachLayer(l => {
        if (l.feature && l.feature.properties && l.feature.properties.code !== undefined
                && l.options.interactive !== false) { layers.push(l); }
    });
    const rings = [];
    const flatten = (ll, into) => {
        if (ll.length && ll[0].lat !== undefined) {
            into.push(ll.map(p => map.latLngToContainerPoint(p)));
        } else { ll.forEach(x => flatten(x, into)); }
    };
    const ringsOf = new Map(layers.map(l => { const r = []; flatten(l.getLatLngs(), r); return [l, r]; }));
    const inside = (l, x, y) => {
        let odd = false;
        for (const ring of ringsOf.get(l)) {
            for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
                const a = ring[i], b = ring[j];
                if ((a.y > y) !== (b.y > y) && x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x) { odd = !odd; }
            }
        }
        return odd;
    };
    const origin = map.getContainer().getBoundingClientRect();
    const wanted = layers.filter(
        l => code ? l.feature.properties.code === code : l.feature.properties.to !== undefined);
    for (const layer of wanted) {
        const canvas = map.getRenderer(layer)._container;
        const b = layer.getBounds();
        const nw = map.latLngToContainerPoint(b.getNorthWest()), se = map.latLngToContainerPoint(b.getSouthEast());
        for (let i = 1; i < 16; i++) {
            for (let j = 1; j < 16; j++) {
                const x = nw.x + (se.x - nw.x) * i / 16, y = nw.y + (se.y - nw.y) * j / 16;
                const ok = [[0, 0], [8, 0], [-8, 0], [0, 8], [0, -8], [6, 6], [-6, -6], [6, -6], [-6, 6]].every(
                    ([dx, dy]) => {
                        const px = origin.left + x + dx, py = origin.top + y + dy;
                        return px > 0 && py > 0 && px < innerWidth && py < innerHeight &&
                            document.elementFromPoint(px, py) === canvas &&
                            layers.every(l => inside(l, x + dx, y + dy) === (l === layer));
                    });
                if (ok) {
                    const r = canvas.getBoundingClientRect();
                    const cx = Math.floor((origin.left + x - r.left) * canvas.width / r.width);
                    const cy = Math.floor((origin.top + y - r.top) * canvas.height / r.height);
                    const px = canvas.getContext("2d").getImageData(cx, cy, 1, 1).data;
                    return {x: origin.left + x, y: origin.top + y, code: layer.feature.properties.code,
                            pixel: [px[0], px[1], px[2], px[3]], fill: layer.options.fillColor,
                            fillOpacity: layer.options.fillOpacity};
                }
            }
        }
    }
    return null;
}"""

# The style of an area's layer now (the hover highlight restyles it).
AREA_STYLE = """(code) => {
    const map = Object.values(window).find(v => v instanceof L.Map);
    let style = null;
    map.eachLayer(l => {
        if (l.feature && l.feature.properties && l.feature.properties.code === code
                && l.options.interactive !== false) {
            style = {weight: l.options.weight, color: l.options.color};
        }
    });
    return style;
}"""

AREAS_DRAWN = f"""() => {{
    const areas = ({AREAS})();
    return areas.length > 0 && areas.every(a => a.canvas) && Object.keys(({PAINTED})(null)).length > 0;
}}"""

HEAT_PIXELS = """() => {
    const c = document.querySelector("canvas.leaflet-heatmap-layer");
    if (!c || !c.width) { return 0; }
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) { n++; } }
    return n;
}"""


def open_map(page, url: str | None = None):
    """Go to a map page (or stay on this one) and return its map frame once areas are drawn."""
    # The whole map in view (set before the page lays out: a later resize re-centres the map).
    # A click in a frame half out of view scrolls the page between mousedown and mouseup
    # (focus), and the browser then sends no click.
    if page.viewport_size["height"] != 1000:
        page.set_viewport_size({"width": 1280, "height": 1000})
    if url is not None:
        page.goto(url)
    page.wait_for_load_state("networkidle")
    frame = next(f for f in page.frames if "/maps/frame" in f.url)
    frame.wait_for_function(AREAS_DRAWN)
    page.locator("#map-frame").evaluate("e => e.scrollIntoView({block: 'start'})")
    return frame


def frame_spot(page, frame, code=None) -> dict:
    """An area's point (see FIND_AREA) in the page's coordinates, with the canvas pixel there."""
    spot = frame.evaluate(FIND_AREA, code)
    assert spot is not None, f"no visible area {code}"
    box = page.locator("#map-frame").bounding_box()
    return {**spot, "x": box["x"] + spot["x"], "y": box["y"] + spot["y"]}


def frame_point(page, frame, code=None):
    spot = frame_spot(page, frame, code)
    return spot["x"], spot["y"], spot["code"]


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def assert_filled(spot: dict) -> None:
    """The canvas pixel inside the area is the area's fill, at its opacity."""
    *colour, alpha = spot["pixel"]
    assert abs(alpha - round(spot["fillOpacity"] * 255)) <= 3, spot
    assert all(abs(a - b) <= 3 for a, b in zip(colour, rgb(spot["fill"]), strict=True)), spot


def painted_fills(frame, areas: list[dict], opacity: float) -> set[str]:
    """The areas' fill colours that the canvas shows (pixels of that colour at that opacity)."""
    painted = frame.evaluate(PAINTED, round(opacity * 255))
    colours = {rgb(c): n for c, n in painted.items()}
    return {
        a["fill"]
        for a in areas
        if any(
            n >= 20 and all(abs(x - y) <= 3 for x, y in zip(c, rgb(a["fill"]), strict=True))
            for c, n in colours.items()
        )
    }


def assert_clean(page, frame):
    assert page.blocked == [], page.blocked
    assert page.failed == [], page.failed
    assert page.console_errors == [], page.console_errors
    for where in (page, frame):
        assert where.evaluate("() => window.__csp") == []
        assert where.evaluate("() => window.__pwned === undefined")


@pytest.mark.parametrize("kind", ["heat", "choropleth", "hotspots", "cases"])
def test_each_map_draws_hovers_and_drills_down_with_nothing_from_outside(
    page, live_user, artifacts, kind
):
    page.add_init_script(WATCH)
    sign_in_page(page, live_user("county_staff"))
    frame = open_map(page, f"/maps/?map={kind}&from=2020-01-01")
    # Boundaries drawn (on the canvas), and the layer of this map.
    # Townships, or the county's grids for hot spots (the analysis units).
    areas = frame.evaluate(AREAS)
    assert len(areas) == (1026 if kind == "hotspots" else 12) and all(a["canvas"] for a in areas)
    assert frame.locator("path.leaflet-interactive").count() == 0  # no SVG path per area
    if kind == "heat":
        frame.wait_for_function(f"({HEAT_PIXELS})() > 1000")
    elif kind == "cases":
        assert frame.locator(".gc-bubble").count() >= 10  # many cases: counts per township
    else:
        # Coloured by class: at least two classes' colours painted on the canvas.
        opacity = 0.8 if kind == "hotspots" else 0.75
        assert len(painted_fills(frame, areas, opacity)) >= 2
    assert frame.locator(".gc-legend").count() == 1 and frame.locator(".gc-info").count() == 1
    spot = frame_spot(page, frame)
    x, y, code = spot["x"], spot["y"], spot["code"]
    if kind in ("choropleth", "hotspots"):
        assert_filled(spot)  # the pixel under the pointer is this area's own fill
    before = frame.evaluate(AREA_STYLE, code)
    page.mouse.move(x, y)
    tooltip = frame.locator(".leaflet-tooltip")
    tooltip.wait_for(state="visible")
    assert "名称" in tooltip.inner_text()
    # The tooltip is the area's own (hit-tested on the canvas), and hovering outlines it.
    name = frame.evaluate(
        """(code) => { let n = null; const map = Object.values(window).find(v => v instanceof L.Map);
        map.eachLayer(l => { if (l.feature && l.feature.properties.code === code) n = l.feature.properties.name; });
        return n && new DOMParser().parseFromString(n, 'text/html').documentElement.textContent; }""",
        code,
    )
    assert name and name in tooltip.inner_text()
    assert before["weight"] != 3
    assert frame.evaluate(AREA_STYLE, code) == {"weight": 3, "color": "#111111"}
    page.screenshot(path=str(artifacts / f"map-{kind}.png"))
    assert_clean(page, frame)
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"area={code[:9]}(&|$)"))
    frame = open_map(page)
    assert (
        page.locator("nav.breadcrumb span[aria-current]").inner_text()
        in page.locator("h1").inner_text()
    )
    assert len(frame.evaluate(AREAS)) > 1  # the township's villages
    assert page.locator("a.map-back").count() == 1
    page.screenshot(path=str(artifacts / f"map-{kind}-township.png"))
    assert_clean(page, frame)


def test_cases_map_markers_open_a_popup_linking_the_case_file(page, live_app, live_user, artifacts):
    with live_app.app_context():
        s = database(live_app).sessions()
        village = s.execute(
            text("SELECT village_code FROM cases GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
        ).scalar()
        s.close()
    page.add_init_script(WATCH)
    sign_in_page(page, live_user("county_staff"))
    frame = open_map(page, f"/maps/?map=cases&area={village}&from=2020-01-01")
    frame.wait_for_selector(".leaflet-marker-icon")
    opened = frame.evaluate("""() => new Promise(resolve => {
        const key = Object.keys(window).find(k => k.startsWith("fast_marker_cluster_"));
        const cluster = window[key];
        const marker = cluster.getLayers()[0];
        cluster.zoomToShowLayer(marker, () => { marker.openPopup(); resolve(true); });
    })""")
    assert opened
    popup = frame.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    assert "类别" in popup.inner_text() and "状态" in popup.inner_text()
    assert re.fullmatch(r"/cases/\d+", popup.locator("a").get_attribute("href"))
    page.screenshot(path=str(artifacts / "map-cases-village.png"))
    assert_clean(page, frame)


@pytest.fixture
def hostile_village(live_app, demo_areas):
    """A village and a grid renamed to a payload, holding a case with a hostile title and category."""
    from webapp.cases.queries import NewCase, insert_case

    village = demo_areas["village_informant"]
    with live_app.app_context():
        s = database(live_app).sessions()
        grid, old_v, old_g, lon, lat = s.execute(
            text(
                "SELECT g.code, v.name, g.name, ST_X(g.label_point), ST_Y(g.label_point) FROM areas g "
                "JOIN areas v ON v.code = g.village_code WHERE g.level = 'grid' AND g.village_code = :v "
                "ORDER BY g.code LIMIT 1"
            ),
            {"v": village},
        ).one()
        s.execute(
            text("UPDATE areas SET name = :n WHERE code = :c"), {"n": HOSTILE[0], "c": village}
        )
        s.execute(text("UPDATE areas SET name = :n WHERE code = :c"), {"n": HOSTILE[2], "c": grid})
        cat = s.execute(
            text("INSERT INTO categories (code, name) VALUES ('pwn', :n) RETURNING id"),
            {"n": HOSTILE[3]},
        ).scalar_one()
        case = insert_case(
            s,
            NewCase(
                title=HOSTILE[1] + HOSTILE[0],
                category_id=cat,
                channel="visit",
                lon=lon,
                lat=lat,
                people_count=3,
            ),
        )
        s.commit()
        s.close()
    yield village, grid, case.id
    with live_app.app_context():
        s = database(live_app).sessions()
        s.execute(text("DELETE FROM cases WHERE id = :i"), {"i": case.id})
        s.execute(text("DELETE FROM categories WHERE id = :i"), {"i": cat})
        s.execute(text("UPDATE areas SET name = :n WHERE code = :c"), {"n": old_v, "c": village})
        s.execute(text("UPDATE areas SET name = :n WHERE code = :c"), {"n": old_g, "c": grid})
        s.commit()
        s.close()


def test_hostile_names_and_titles_never_run(
    page, live_user, artifacts, hostile_village, demo_areas
):
    village, grid, case_id = hostile_village
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script(WATCH)
    sign_in_page(page, live_user("county_staff"))
    township = demo_areas["township_leader"]
    for kind in ("heat", "choropleth", "hotspots", "cases"):
        extra = "&hs_level=village" if kind == "hotspots" else ""
        frame = open_map(page, f"/maps/?map={kind}&area={township}{extra}")
        x, y, _ = frame_point(page, frame, village)
        page.mouse.move(x, y)
        tooltip = frame.locator(".leaflet-tooltip")
        tooltip.wait_for(state="visible")
        assert HOSTILE[0] in tooltip.inner_text()  # shown as the text it is
        assert frame.locator("img[src=x], svg[onload]").count() == 0
        page.screenshot(path=str(artifacts / f"map-hostile-{kind}.png"))
        assert_clean(page, frame)
    # The village itself: its name in the page title, breadcrumb and the map's info panel.
    frame = open_map(page, f"/maps/?map=cases&area={village}")
    assert HOSTILE[0] in frame.locator(".gc-info").inner_text()
    assert HOSTILE[0] in page.locator("h1").inner_text()
    frame.evaluate(
        """(id) => new Promise(resolve => {
        const key = Object.keys(window).find(k => k.startsWith("fast_marker_cluster_"));
        const cluster = window[key];
        const marker = cluster.getLayers().find(m => m.getPopup().getContent().includes("/cases/" + id + '"'));
        cluster.zoomToShowLayer(marker, () => { marker.openPopup(); resolve(true); });
    })""",
        case_id,
    )
    popup = frame.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    assert HOSTILE[1] + HOSTILE[0] in popup.inner_text() and HOSTILE[3] in popup.inner_text()
    x, y, _ = frame_point(page, frame, grid)
    page.mouse.move(x, y)
    frame.locator(".leaflet-tooltip").wait_for(state="visible")
    assert HOSTILE[2] in frame.locator(".leaflet-tooltip").inner_text()
    page.screenshot(path=str(artifacts / "map-hostile-popup.png"))
    assert frame.locator("img[src=x], svg[onload], script:not([src]):not([nonce])").count() == 0
    assert_clean(page, frame)
    assert dialogs == []


def test_the_heaviest_map_draws_every_grid_and_shows_names_as_text(
    page, live_user, artifacts, hostile_village
):
    """The county's 1,026 grids (the largest document): drawn, coloured, hovered, inert."""
    _, grid, _ = hostile_village
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.add_init_script(WATCH)
    sign_in_page(page, live_user("county_staff"))
    frame = open_map(page, "/maps/?map=choropleth&level=grid&from=2020-01-01")
    areas = frame.evaluate(AREAS)
    assert len(areas) == 1026 and all(a["canvas"] for a in areas)
    assert len(painted_fills(frame, areas, 0.75)) >= 3  # coloured by class, on the canvas
    # The renamed grid (its name from the database as it is now, not from before the rename).
    frame.evaluate(
        """(code) => new Promise(resolve => {
        const map = Object.values(window).find(v => v instanceof L.Map);
        map.eachLayer(l => { if (l.feature && l.feature.properties.code === code) map.fitBounds(l.getBounds()); });
        requestAnimationFrame(() => requestAnimationFrame(resolve));  // redrawn at the new view
    })""",
        grid,
    )
    spot = frame_spot(page, frame, grid)
    assert_filled(spot)
    x, y = spot["x"], spot["y"]
    page.mouse.move(x, y)
    tooltip = frame.locator(".leaflet-tooltip")
    tooltip.wait_for(state="visible")
    assert HOSTILE[2] in tooltip.inner_text() and "信访事项" in tooltip.inner_text()
    assert frame.locator("img[src=x], svg[onload]").count() == 0
    page.screenshot(path=str(artifacts / "map-choropleth-grids.png"))
    assert_clean(page, frame)
    assert dialogs == []


@pytest.mark.phone
def test_a_tap_on_an_area_opens_the_next_level_on_a_phone(page, live_user, artifacts):
    """Phone layout: the canvas is drawn at the phone's pixel ratio and a tap (touch) drills down."""
    sign_in_page(page, live_user("county_staff"))
    page.goto("/maps/?map=choropleth&from=2020-01-01")
    page.wait_for_load_state("networkidle")
    frame = next(f for f in page.frames if "/maps/frame" in f.url)
    frame.wait_for_function(AREAS_DRAWN)
    page.locator("#map-frame").evaluate("e => e.scrollIntoView({block: 'start'})")
    assert frame.evaluate("() => devicePixelRatio") == 2
    spot = frame_spot(page, frame)
    assert_filled(
        spot
    )  # the pixel under the finger (the canvas at twice the CSS size) is the area's fill
    page.screenshot(path=str(artifacts / "map-phone.png"))
    page.touchscreen.tap(spot["x"], spot["y"])
    page.wait_for_url(re.compile(rf"area={spot['code'][:9]}(&|$)"))
    assert page.locator("a.map-back").count() == 1
    assert page.console_errors == [] and page.blocked == []
