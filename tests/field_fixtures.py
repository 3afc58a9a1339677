"""Shared helpers for the field tests: points inside demo grids, report payloads, images."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image
from sqlalchemy import text

# EXIF tags: GPS IFD pointer, and within it latitude/longitude and their refs.
GPS_IFD = 0x8825
ORIENTATION = 0x0112


@pytest.fixture
def photo_dir(app, tmp_path, monkeypatch):
    """Store photos in a temporary directory for this test."""
    directory = tmp_path / "photos"
    monkeypatch.setitem(app.config, "PHOTO_DIR", str(directory))
    return directory


def grid_point(conn_or_session, code: str) -> tuple[float, float]:
    """A point surely inside the grid ``code`` (its label point)."""
    row = conn_or_session.execute(
        text("SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE code = :c"), {"c": code}
    ).one()
    return float(row[0]), float(row[1])


def other_grid(conn_or_session, code: str) -> str:
    """A grid of the same county in another township than ``code``."""
    return conn_or_session.execute(
        text(
            "SELECT code FROM areas WHERE level = 'grid' AND township_code <> :t "
            "AND county_code = :c ORDER BY code LIMIT 1"
        ),
        {"t": code[:9], "c": code[:6]},
    ).scalar_one()


def category_id(conn_or_session, code: str = "neighbour_family") -> int:
    return conn_or_session.execute(
        text("SELECT id FROM categories WHERE code = :c"), {"c": code}
    ).scalar_one()


def report_payload(conn_or_session, grid_code: str, **over) -> dict:
    lon, lat = grid_point(conn_or_session, grid_code)
    body = {
        "client_id": str(uuid.uuid4()),
        "category_id": category_id(conn_or_session),
        "description": "两户村民因宅基地边界发生争执，已初步劝解。",
        "people_count": 2,
        "lon": lon,
        "lat": lat,
        "accuracy_m": 8.5,
    }
    body.update(over)
    return body


def image_bytes(
    fmt: str = "JPEG", size=(640, 480), gps: bool = False, mode: str = "RGB", orientation=None
) -> bytes:
    """A small image in ``fmt``, with EXIF GPS coordinates and a camera model if ``gps``."""
    img = Image.new(mode, size, (200, 40, 40) if mode == "RGB" else (200, 40, 40, 128))
    # a pattern, so the encoders have something to encode
    for x in range(0, size[0], 16):
        for y in range(0, size[1], 16):
            img.putpixel((x, y), (0, 0, 0) if mode == "RGB" else (0, 0, 0, 255))
    kwargs = {}
    if gps or orientation:
        exif = Image.Exif()
        if gps:
            exif[0x0110] = "SecretPhone 9"  # Model
            exif[GPS_IFD] = {1: "N", 2: (35.0, 15.0, 30.0), 3: "E", 4: (114.0, 12.0, 7.0)}
        if orientation:
            exif[ORIENTATION] = orientation
        kwargs["exif"] = exif
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def run_in_browser(base_url: str, scenario, **context_options) -> None:
    """Run ``scenario(page)`` in a fresh chromium in a thread of its own; re-raise its failure.

    Playwright's sync API allows one live instance per thread, and ``tests.browser``'s
    session ``browser`` fixture is made once per module that imports it, so a second
    browser module cannot start its own in the main thread while another's is open.
    This runs the same chromium with the same flags in its own thread, with a page
    that blocks and records requests to other origins (``page.blocked``), failed
    requests and console errors, as ``tests.browser``'s ``page`` does.
    """
    import threading

    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    failure: list[BaseException] = []

    def run() -> None:
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
                )
                try:
                    options = dict(locale="zh-CN", timezone_id="Asia/Shanghai")
                    options.update(context_options)
                    context = browser.new_context(base_url=base_url, **options)
                    context.set_default_timeout(15_000)
                    page = context.new_page()
                    page.blocked, page.failed, page.console_errors = [], [], []

                    def route(r):
                        url = r.request.url
                        if url.startswith(base_url) or url.startswith(("data:", "blob:")):
                            r.continue_()
                        else:
                            page.blocked.append(url)
                            r.abort()

                    context.route("**/*", route)
                    page.on("requestfailed", lambda req: page.failed.append((req.url, req.failure)))
                    page.on(
                        "console",
                        lambda m: page.console_errors.append(m.text) if m.type == "error" else None,
                    )
                    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
                    try:
                        scenario(page)
                    finally:
                        context.close()
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - handed over to the test's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="field-browser", daemon=True)
    thread.start()
    thread.join(timeout=300)
    if thread.is_alive():
        raise AssertionError("the browser scenario did not finish within 5 minutes")
    if failure:
        raise failure[0]


@pytest.fixture
def phone(request, live_server):
    """Run a scenario on a phone-sized page: ``phone(lambda page: ...)``.

    Options of the test's ``phone`` mark (e.g. geolocation) apply to the context.
    """
    from tests.browser import PHONE

    marker = request.node.get_closest_marker("phone")
    options = {**PHONE, **(marker.kwargs if marker else {})}
    return lambda scenario: run_in_browser(live_server, scenario, **options)
