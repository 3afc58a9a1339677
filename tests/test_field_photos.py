"""Photos of field reports: checked by content, cleaned of metadata, idempotent, served in scope."""

from __future__ import annotations

import io
import os
import struct
import uuid
import zlib

import pytest
from PIL import Image
from sqlalchemy import text

from tests import field_fixtures
from tests.conftest import CSRF_HEADERS
from tests.field_fixtures import GPS_IFD, image_bytes, other_grid, report_payload
from webapp.field.photos import photo_path

photo_dir = field_fixtures.photo_dir  # the fixture, by name


@pytest.fixture
def case_id(client, login, session, demo_areas):
    """A case the signed-in grid worker just reported."""
    login("grid_worker")
    r = client.post(
        "/api/v1/field/reports",
        json=report_payload(session, demo_areas["grid_worker"]),
        headers=CSRF_HEADERS,
    )
    assert r.status_code == 201
    return r.get_json()["report"]["case_id"]


def upload(client, case_id, data: bytes, name="photo.jpg", client_photo_id=None):
    form = {
        "client_photo_id": client_photo_id or str(uuid.uuid4()),
        "photo": (io.BytesIO(data), name),
    }
    return client.post(
        f"/api/v1/field/cases/{case_id}/photos",
        data=form,
        headers=CSRF_HEADERS,
        content_type="multipart/form-data",
    )


def photo_rows(session, case_id) -> int:
    return session.execute(
        text("SELECT count(*) FROM case_photos WHERE case_id = :c"), {"c": case_id}
    ).scalar_one()


def stored_image(photo_dir, sha256, thumb=False) -> Image.Image:
    img = Image.open(photo_path(photo_dir, sha256, thumb))
    img.load()
    return img


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_good_photos_are_stored_as_clean_jpegs(client, session, case_id, photo_dir, fmt):
    data = image_bytes(fmt, size=(800, 600))
    # the name says nothing: the content decides
    r = upload(client, case_id, data, name="IMG_0001.bin")
    assert r.status_code == 201, r.get_json()
    photo = r.get_json()["photo"]
    assert (photo["width"], photo["height"]) == (800, 600) and photo["created"] is True
    row = session.execute(
        text(
            "SELECT sha256, size_bytes, width, height, original_format, original_bytes "
            "FROM case_photos WHERE id = :i"
        ),
        {"i": photo["id"]},
    ).one()
    path = photo_path(photo_dir, row.sha256)
    assert path.is_file() and path.stat().st_size == row.size_bytes
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() == row.sha256
    assert (
        row.original_bytes == len(data)
        and row.original_format == {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}[fmt]
    )
    img = stored_image(photo_dir, row.sha256)
    assert img.format == "JPEG" and img.size == (800, 600)
    thumb = stored_image(photo_dir, row.sha256, thumb=True)
    assert max(thumb.size) == 320


def test_exif_and_gps_are_stripped(client, session, case_id, photo_dir):
    data = image_bytes("JPEG", gps=True)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)  # the upload has a position
    r = upload(client, case_id, data)
    assert r.status_code == 201
    sha = r.get_json()["photo"]["sha256"]
    raw = photo_path(photo_dir, sha).read_bytes()
    assert b"Exif" not in raw and b"SecretPhone" not in raw
    img = stored_image(photo_dir, sha)
    assert not img.getexif() and not img.getexif().get_ifd(GPS_IFD)
    assert not img.info.get("exif") and not img.info.get("icc_profile") and not img.info.get("xmp")


def test_orientation_is_applied_before_the_exif_goes(client, case_id, photo_dir):
    r = upload(client, case_id, image_bytes("JPEG", size=(640, 480), orientation=6))
    assert r.status_code == 201
    assert (r.get_json()["photo"]["width"], r.get_json()["photo"]["height"]) == (480, 640)


def test_transparent_png_is_flattened(client, case_id, photo_dir):
    r = upload(client, case_id, image_bytes("PNG", mode="RGBA"))
    assert r.status_code == 201
    assert stored_image(photo_dir, r.get_json()["photo"]["sha256"]).mode == "RGB"


def test_large_photos_are_scaled_down(app, client, case_id, photo_dir, monkeypatch):
    monkeypatch.setitem(app.config, "PHOTO_STORED_SIDE", 500)
    r = upload(client, case_id, image_bytes("PNG", size=(1000, 800)))
    assert (r.get_json()["photo"]["width"], r.get_json()["photo"]["height"]) == (500, 400)


def test_the_same_photo_sent_again_is_one_photo(client, session, case_id, photo_dir):
    pid = str(uuid.uuid4())
    data = image_bytes("JPEG")
    answers = [upload(client, case_id, data, client_photo_id=pid) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 200, 200]
    assert len({a.get_json()["photo"]["id"] for a in answers}) == 1
    assert photo_rows(session, case_id) == 1
    # the same picture under a new id is a second photo but still one file
    r = upload(client, case_id, data)
    assert (
        r.status_code == 201
        and r.get_json()["photo"]["sha256"] == answers[0].get_json()["photo"]["sha256"]
    )
    assert len(list(photo_dir.rglob("*.jpg"))) == 2  # the photo and its thumbnail


def test_a_photo_id_of_another_case_is_a_conflict(
    client, session, login, case_id, demo_areas, photo_dir
):
    pid = str(uuid.uuid4())
    assert upload(client, case_id, image_bytes(), client_photo_id=pid).status_code == 201
    r = client.post(
        "/api/v1/field/reports",
        json=report_payload(session, demo_areas["grid_worker"]),
        headers=CSRF_HEADERS,
    )
    other = r.get_json()["report"]["case_id"]
    r = upload(client, other, image_bytes(), client_photo_id=pid)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "client_photo_id_conflict"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size (a bomb needs no real pixels to claim a huge one)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


BAD_PHOTOS = [
    pytest.param(lambda: image_bytes("GIF"), "photo_type", 415, id="gif"),
    pytest.param(lambda: image_bytes("BMP", size=(200, 150)), "photo_type", 415, id="bmp"),
    pytest.param(
        lambda: b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "photo_type", 415, id="pdf-named-jpg"
    ),
    pytest.param(lambda: b"<script>alert(1)</script>", "photo_type", 415, id="html-named-jpg"),
    pytest.param(
        lambda: image_bytes("JPEG", size=(1200, 900))[:3000],
        "photo_broken",
        400,
        id="truncated-jpeg",
    ),
    pytest.param(lambda: image_bytes("PNG")[:200], "photo_broken", 400, id="truncated-png"),
    pytest.param(
        lambda: _png_header_only(30000, 30000),
        "photo_too_many_pixels",
        413,
        id="bomb-over-pillow-limit",
    ),
    pytest.param(
        lambda: _png_header_only(9000, 9000), "photo_too_many_pixels", 413, id="bomb-over-our-limit"
    ),
    pytest.param(
        lambda: _png_header_only(30000, 10), "photo_too_many_pixels", 413, id="absurd-side"
    ),
    pytest.param(lambda: b"", "photo_empty", 400, id="empty"),
]


@pytest.mark.parametrize(("make", "code", "status"), BAD_PHOTOS)
def test_bad_photos_are_refused_and_the_report_stands(
    client, session, case_id, photo_dir, make, code, status
):
    r = upload(client, case_id, make())
    assert r.status_code == status, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == code and any("\u4e00" <= ch <= "\u9fff" for ch in err["message"])
    assert photo_rows(session, case_id) == 0
    assert not photo_dir.exists() or not list(photo_dir.rglob("*.jpg"))
    assert (
        session.execute(
            text("SELECT count(*) FROM cases WHERE id = :i"), {"i": case_id}
        ).scalar_one()
        == 1
    )


def test_a_real_decompression_bomb_is_refused(
    app, client, session, case_id, photo_dir, monkeypatch
):
    # A genuine, highly compressible image: few bytes on the wire, many pixels in memory.
    monkeypatch.setitem(app.config, "PHOTO_MAX_PIXELS", 1_000_000)
    out = io.BytesIO()
    Image.new("L", (2000, 2000)).save(out, "PNG", optimize=True)
    assert len(out.getvalue()) < 20_000
    r = upload(client, case_id, out.getvalue())
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "photo_too_many_pixels"
    assert photo_rows(session, case_id) == 0


def test_an_oversize_photo_is_refused_with_the_limit(
    app, client, session, case_id, photo_dir, monkeypatch
):
    monkeypatch.setitem(app.config, "PHOTO_MAX_BYTES", 50_000)
    out = io.BytesIO()
    Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(
        out, "PNG"
    )  # noise: incompressible
    data = out.getvalue()
    assert 50_000 < len(data) < 500_000
    r = upload(client, case_id, data)
    assert r.status_code == 413
    err = r.get_json()["error"]
    assert err["code"] == "photo_too_large" and "MB" in err["message"]
    assert photo_rows(session, case_id) == 0


def test_missing_file_or_photo_id(client, case_id, photo_dir):
    r = client.post(
        f"/api/v1/field/cases/{case_id}/photos",
        data={"client_photo_id": str(uuid.uuid4())},
        headers=CSRF_HEADERS,
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "missing_photo"
    r = client.post(
        f"/api/v1/field/cases/{case_id}/photos",
        data={"photo": (io.BytesIO(image_bytes()), "a.jpg")},
        headers=CSRF_HEADERS,
        content_type="multipart/form-data",
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_client_photo_id"


# -- serving: only through the case scope ------------------------------------------


def test_photos_are_served_only_within_the_case_scope(
    client, login, session, case_id, demo_areas, photo_dir
):
    r = upload(client, case_id, image_bytes("JPEG", size=(800, 600)))
    photo = r.get_json()["photo"]
    for url in (photo["url"], photo["thumb_url"]):
        r = client.get(url)
        assert r.status_code == 200 and r.mimetype == "image/jpeg"
        assert "private" in r.headers["Cache-Control"]
        r.close()
    missing = session.execute(
        text("SELECT coalesce(max(id), 0) + 1000 FROM case_photos")
    ).scalar_one()
    # a grid worker of another township: the photo is as absent as one that never existed
    login("grid_worker", area=other_grid(session, demo_areas["grid_worker"]))
    for url in (photo["url"], photo["thumb_url"], f"/field/photos/{missing}"):
        r = client.get(url)
        assert r.status_code == 404
        assert "不存在或您无权查看" in r.get_data(as_text=True)
    assert client.get(f"/api/v1/field/cases/{case_id}/photos").status_code == 404
    r = upload(client, case_id, image_bytes())
    assert r.status_code == 404 and photo_rows(session, case_id) == 1
    # the township leader of the case's township and the county staff see it
    for role in ("township_leader", "county_staff"):
        login(role)
        r = client.get(photo["url"])
        assert r.status_code == 200
        r.close()
    login("leader_in_charge")  # owns no case: sees none
    assert client.get(photo["url"]).status_code == 404


def test_the_case_photos_partial_lists_thumbnails_in_scope(
    app, client, login, session, case_id, demo_areas, photo_dir
):
    from flask import g, render_template_string

    from webapp.cases.models import Case

    first = upload(client, case_id, image_bytes()).get_json()["photo"]
    second = upload(client, case_id, image_bytes("PNG")).get_json()["photo"]
    case = session.get(Case, case_id)
    staff = login("county_staff")
    stranger = login("grid_worker", area=other_grid(session, demo_areas["grid_worker"]))
    with app.test_request_context("/cases/x"):
        g.user = staff
        html = render_template_string('{% include "field/_case_photos.html" %}', case=case)
        assert "2 张" in html
        for p in (first, second):
            assert f'href="{p["url"]}"' in html and f'src="{p["thumb_url"]}"' in html
        g.user = stranger
        html = render_template_string('{% include "field/_case_photos.html" %}', case=case)
        assert "暂无现场照片" in html and first["url"] not in html


def test_the_reporter_adds_photos_to_a_report_outside_their_scope(
    client, login, session, photo_dir
):
    # a township leader reports a point in another township: the case is not in their
    # scope, but the photos of their own report go with it
    township = session.execute(
        text("SELECT min(code) FROM areas WHERE level = 'township'")
    ).scalar_one()
    login("township_leader", area=township)
    elsewhere = other_grid(session, township + "000000")
    r = client.post(
        "/api/v1/field/reports", json=report_payload(session, elsewhere), headers=CSRF_HEADERS
    )
    case_id = r.get_json()["report"]["case_id"]
    assert r.status_code == 201 and r.get_json()["report"]["in_own_area"] is False
    assert upload(client, case_id, image_bytes()).status_code == 201
    # other cases out of scope stay out of reach
    stranger = session.execute(
        text("SELECT id FROM cases WHERE township_code <> :t AND reporter_id IS NULL LIMIT 1"),
        {"t": township},
    ).scalar_one()
    assert upload(client, stranger, image_bytes()).status_code == 404
