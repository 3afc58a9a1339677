"""The app shell: health check, home page, area pages, errors."""

from __future__ import annotations

import re
import subprocess
import sys

from sqlalchemy import text

from webapp import create_app


def test_the_app_starts_without_folium_openpyxl_or_a_password_hash():
    """Every ``flask`` command (``demo load`` among them) makes the app, which imports every
    view: the libraries only a map or a workbook needs (~0.6 s) wait for one, and no
    scrypt hash is made at import (0.1-0.2 s)."""
    code = (
        "import sys, werkzeug.security as ws\n"
        "ws.generate_password_hash = lambda *a, **k: sys.exit('hashed at import')\n"
        "from webapp import create_app\n"
        "app = create_app()\n"
        "assert 'maps.frame' in app.view_functions, 'the map views are registered'\n"
        "print(sorted(m for m in ('folium', 'branca', 'openpyxl') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["db"] == "ok"
    assert body["postgis"].startswith("3.")


def test_healthz_reports_an_unreachable_database(tmp_path):
    url = f"postgresql+psycopg2://nobody@/nowhere?host={tmp_path}&port=1"
    app = create_app(
        {"DATABASE_URL": url, "EMBEDDED_DB": False, "AUTO_MIGRATE": False, "SECRET_KEY": "x"}
    )
    r = app.test_client().get("/healthz")
    assert r.status_code == 503
    body = r.get_json()
    assert body["db"] == "error" and body["reason"]


def test_the_icon_is_served_where_browsers_look_for_it(client):
    # Signed out: the sign-in page names the icon, and /favicon.ico (which browsers ask
    # for when a document names none) answers with it rather than a 404.
    html = client.get("/login").get_data(as_text=True)
    href = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', html).group(1)
    with client.get(href) as named, client.get("/favicon.ico") as r:
        assert named.status_code == 200 and b"<svg" in named.data
        assert r.status_code == 200
        assert r.mimetype == "image/svg+xml" and r.data == named.data


def test_home_lists_townships_with_case_counts(client, session, login):
    login("county_staff")
    r = client.get("/")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "延津县" in html and "演示数据" in html
    townships = session.execute(
        text(
            "SELECT a.code, a.name, count(c.id) FROM areas a LEFT JOIN cases c ON c.township_code = a.code "
            "WHERE a.level = 'township' GROUP BY a.code, a.name ORDER BY a.code"
        )
    ).all()
    assert len(townships) == 12
    for code, name, n in townships:
        assert f'href="/areas/{code}">{name}</a>' in html
        assert f'<td class="num">{n}</td>' in html
    total = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    assert f'<th class="num">{total}</th>' in html


def test_area_page_drills_down(client, session, login):
    login("county_staff")
    township = session.execute(
        text("SELECT code, name FROM areas WHERE level = 'township' ORDER BY code LIMIT 1")
    ).one()
    html = client.get(f"/areas/{township.code}").get_data(as_text=True)
    villages = session.execute(
        text("SELECT code, name FROM areas WHERE level = 'village' AND township_code = :t"),
        {"t": township.code},
    ).all()
    assert villages
    for code, name in villages:
        assert f'href="/areas/{code}">{name}</a>' in html
    grid = session.execute(text("SELECT code FROM areas WHERE level = 'grid' LIMIT 1")).scalar_one()
    assert client.get(f"/areas/{grid}").status_code == 200


def test_unknown_area_is_a_chinese_404(client, login):
    login("county_staff")
    r = client.get("/areas/999999999")
    assert r.status_code == 404
    assert "不存在" in r.get_data(as_text=True)
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
