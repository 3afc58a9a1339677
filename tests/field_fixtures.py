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


@pytest.fixture
def phone(request, browser, live_server):
    """Run a scenario on a phone-sized page: ``phone(lambda page: ...)``.

    Options of the test's ``phone`` mark (e.g. geolocation) apply to the context.
    """
    from tests.browser import PHONE, open_page

    marker = request.node.get_closest_marker("phone")
    options = {**PHONE, **(marker.kwargs if marker else {})}

    def run(scenario) -> None:
        page = open_page(browser, live_server, **options)
        try:
            scenario(page)
        finally:
            page.context.close()

    return run
