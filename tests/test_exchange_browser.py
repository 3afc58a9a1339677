"""The import page in a real browser: upload, watch the check, confirm, see the result."""

from __future__ import annotations

import pytest

from tests.browser import sign_in_page
from tests.test_ledger_import import HEADER, _row


@pytest.mark.browser
def test_ledger_import_in_the_browser(page, live_user, live_app, tmp_path, artifacts):
    import csv

    from sqlalchemy import text

    from webapp.db import database

    with live_app.app_context():
        s = database(live_app).sessions()
        lon, lat = s.execute(
            text(
                "SELECT ST_X(label_point), ST_Y(label_point) FROM areas WHERE level = 'grid' ORDER BY code LIMIT 1"
            )
        ).one()
        s.close()
    path = tmp_path / "浏览器台账.csv"
    rows = [
        _row(i, name=f"测试{i}", lon=lon, lat=lat, date=f"2026-01-{i:02d}") for i in range(1, 21)
    ]
    rows.append(_row(21, name="错行", date="2026-13-01", lon=lon, lat=lat))
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    user = live_user("county_staff")
    sign_in_page(page, user)
    page.goto("/exchange/")
    assert page.locator("nav.mainnav a.active").inner_text() == "数据交换"
    page.set_input_files("input[type=file]", str(path))
    page.click("#import button[type=submit]")
    page.wait_for_selector("#confirm button")
    assert "确认导入 20 行" in page.inner_text("#confirm")
    assert "日期无效" in page.inner_text("#problems")
    page.screenshot(path=str(artifacts / "exchange-dry-run.png"), full_page=True)
    page.click("#confirm button")
    page.wait_for_selector("#result.flash", timeout=30_000)
    assert "已导入 20 个案件" in page.inner_text("#result")
    page.screenshot(path=str(artifacts / "exchange-imported.png"), full_page=True)
    assert page.blocked == [] and page.console_errors == []
