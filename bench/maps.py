"""Workload 3: every county map page against a naive folium map of every case point.

Each map of ``webapp.maps`` for the whole county (heat; figures by township, village
and grid; hot spots by grid and by village; cases, which at county level are counts
per township) and the clustered-markers map of the busiest village is requested
through the app as county staff (``/maps/frame``: queries, folium, the document with
its CSP nonce): server time and HTML size. The naive map is what the app must never
serve: a folium map with every case of the county as a GeoJSON point, built from one
PostGIS query. Then headless chromium (Debian's, via Playwright) opens, from gunicorn,
each map document and each whole map page (``/maps/``, which frames the document);
"ready" is the ``loadEventEnd`` of the Navigation Timing API, read once Leaflet's panes
are on the page (folium draws every layer in inline scripts, before ``load``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import text

from bench.common import Timing, app_for, repeat, stopwatch

# The same browser, with the same switches, as the browser tests.
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from webapp.db import database

PASSWORD = "bench-password-2026"
USER = "bench_county_staff"
# How long the naive map may take to become ready before it counts as never ready.
NAIVE_TIMEOUT_S = 120
BROWSER_SAMPLES = 3


def pages_for(county: str, village: str | None) -> dict[str, dict]:
    """Every county map page (name -> query string), and the clustered markers of one village."""
    pages = {
        "heat": {"map": "heat"},
        "choropleth by township": {"map": "choropleth"},
        "choropleth by village": {"map": "choropleth", "level": "village"},
        "choropleth by grid": {"map": "choropleth", "level": "grid"},
        "hot spots by grid": {"map": "hotspots", "hs_level": "grid"},
        "hot spots by village": {"map": "hotspots", "hs_level": "village"},
        "cases (counts per township)": {"map": "cases"},
    }
    out = {name: {**q, "area": county} for name, q in pages.items()}
    if village:
        out["cases clustered (busiest village)"] = {"map": "cases", "area": village}
    return out


def _county_user(session, county: str) -> int:
    from webapp.auth.accounts import create_user, get_user

    user = get_user(session, USER) or create_user(session, USER, "county_staff", county, PASSWORD)
    session.commit()
    return user.id


def _sign_in(client, session, uid: int) -> None:
    sv = session.execute(
        text("SELECT session_version FROM users WHERE id = :i"), {"i": uid}
    ).scalar_one()
    now = int(time.time())
    with client.session_transaction() as s:
        s.update(uid=uid, sv=sv, at=now, seen=now, csrf="bench")


def busiest_village(session, county: str) -> str | None:
    return session.execute(
        text(
            "SELECT village_code FROM cases WHERE county_code = :c AND village_code IS NOT NULL"
            " GROUP BY village_code ORDER BY count(*) DESC, village_code LIMIT 1"
        ),
        {"c": county},
    ).scalar()


def naive_map(session, county: str, prefixes) -> tuple[str, int]:
    """A folium map with every case point of the county (the thing never to serve)."""
    import folium

    from webapp.maps.assets import use_local_assets

    fc = session.execute(
        text(
            """
            SELECT json_build_object('type', 'FeatureCollection', 'features',
                   coalesce(json_agg(json_build_object('type', 'Feature', 'id', id,
                       'geometry', ST_AsGeoJSON(location, 6)::json,
                       'properties', json_build_object('id', id))), '[]'))
            FROM cases WHERE county_code = :c
            """
        ),
        {"c": county},
    ).scalar_one()
    data = fc if isinstance(fc, dict) else json.loads(fc)
    m = folium.Map(location=[35.3, 114.2], zoom_start=10, tiles=None)
    folium.GeoJson(data, name="全部案件").add_to(m)
    use_local_assets(m, prefixes)
    html = m.get_root().render()
    return html, len(data["features"])


def maps(url: str, repeats: int, log, log_dir: Path, browser: bool = True) -> dict:
    from webapp.maps.assets import AssetPrefixes

    app = app_for(url)
    county = app.config["COUNTY_CODE"]
    pages: dict = {}
    with app.app_context():
        session = database(app).sessions()
        uid = _county_user(session, county)
        client = app.test_client()
        _sign_in(client, session, uid)
        for name, query in pages_for(county, busiest_village(session, county)).items():
            path = "/maps/frame?" + urlencode(query)

            def get(path=path):
                r = client.get(path)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: HTTP {r.status_code} {r.get_data(True)[:300]}")
                return r.get_data()

            body = get()
            pages[name] = {
                "path": path,
                "page": "/maps/?" + urlencode(query),
                "build": repeat(get, repeats).to_dict(),
                "html_bytes": len(body),
            }
        with app.test_request_context():
            from flask import url_for

            prefixes = AssetPrefixes(
                url_for("vendor.asset", subpath="x")[:-1], url_for("static", filename="x")[:-1]
            )
        builds = Timing()
        for _ in range(max(1, repeats // 3)):
            with stopwatch() as t:
                html, points = naive_map(session, county, prefixes)
            builds.samples.append(t())
        naive_path = log_dir / "naive-map.html"
        naive_path.write_text(html, encoding="utf-8")
        naive = {"build": builds.to_dict(), "html_bytes": len(html.encode()), "points": points}
        del html
        session.close()
        database(app).engine.dispose()
    if browser:
        _browser(url, pages, naive, naive_path, log_dir, min(BROWSER_SAMPLES, repeats))
    naive_path.unlink(missing_ok=True)  # up to a few hundred MB at a million cases
    for name, p in pages.items():
        log(
            f"  map {name:34s} {p['build']['median'] * 1000:6.0f} ms"
            f" {p['html_bytes'] / 1e3:7.0f} kB"
            f"  ready {_ms(p.get('ready_ms'))} (whole page {_ms(p.get('page_ready_ms'))})"
        )
    log(
        f"  map naive ({naive['points']:,} points) {naive['build']['median'] * 1000:6.0f} ms "
        f"{naive['html_bytes'] / 1e3:7.0f} kB  ready {_ms(naive.get('ready_ms'))}"
    )
    return {"pages": pages, "naive": naive}


def _ms(x: float | None) -> str:
    return "  —  " if x is None else f"{x:5.0f} ms"


READY_JS = (
    "() => document.readyState === 'complete' && !!document.querySelector('.leaflet-map-pane')"
)
FRAME_READY_JS = (
    "() => { const f = document.querySelector('#map-frame'); const d = f && f.contentDocument;"
    " return document.readyState === 'complete' && !!d && d.readyState === 'complete'"
    " && !!d.querySelector('.leaflet-map-pane'); }"
)
TIMING_JS = "() => performance.getEntriesByType('navigation')[0].loadEventEnd"


def _median_ready(page, url: str, ready_js: str, n: int) -> float:
    samples = []
    for _ in range(n):
        page.goto(url, wait_until="load", timeout=60_000)
        page.wait_for_function(ready_js, timeout=60_000)
        samples.append(page.evaluate(TIMING_JS))
    return sorted(samples)[len(samples) // 2]


def _browser(url: str, pages: dict, naive: dict, naive_path: Path, log_dir: Path, n: int) -> None:
    """Open every map document and page in headless chromium; record the time to ``load``."""
    from playwright.sync_api import sync_playwright

    from bench.field import HOST, Server

    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    with Server(name, 1, 4, log_dir, url) as server, sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            ctx = b.new_context(viewport={"width": 1280, "height": 800})
            page = ctx.new_page()
            origin = f"http://{HOST}:{server.port}"
            page.goto(origin + "/login")
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state("load")
            for p_ in pages.values():
                if n > 1:  # the document alone (the smoke test only opens whole pages)
                    p_["ready_ms"] = _median_ready(page, origin + p_["path"], READY_JS, n)
                p_["page_ready_ms"] = _median_ready(page, origin + p_["page"], FRAME_READY_JS, n)
            ctx.close()
            # The naive document from the same origin (its scripts are the app's files).
            ctx = b.new_context(viewport={"width": 1280, "height": 800})
            page = ctx.new_page()
            page.route(
                origin + "/__naive_map",
                lambda route: route.fulfill(status=200, content_type="text/html", path=naive_path),
            )
            try:
                page.goto(
                    origin + "/__naive_map", wait_until="load", timeout=NAIVE_TIMEOUT_S * 1000
                )
                page.wait_for_function(READY_JS, timeout=NAIVE_TIMEOUT_S * 1000)
                naive["ready_ms"] = page.evaluate(TIMING_JS)
            except Exception as exc:  # a huge document may not become ready at all
                naive["ready_ms"] = None
                naive["ready_error"] = (
                    f"not ready within {NAIVE_TIMEOUT_S} s ({type(exc).__name__})"
                )
        finally:
            b.close()
