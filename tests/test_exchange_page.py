"""The exchange page: upload a ledger, read the dry-run report, confirm, see the result."""

from __future__ import annotations

import io
import re

from sqlalchemy import text

from tests.conftest import CSRF
from tests.test_ledger_import import EXPECTED, every_kind, places, write_ledger  # noqa: F401


def _upload(client, path):
    data = {"csrf_token": CSRF, "crs": "wgs84", "file": (io.BytesIO(path.read_bytes()), path.name)}
    return client.post("/exchange/imports", data=data, content_type="multipart/form-data")


def test_upload_check_confirm_import(client, login, session, tmp_path, places):
    user = login("county_staff")
    path = write_ledger(tmp_path / "台账.xlsx", every_kind(places))
    r = _upload(client, path)
    assert r.status_code == 302
    page_url = r.headers["Location"]
    import_id = int(re.search(r"/imports/(\d+)", page_url)[1])
    progress = client.get(f"/exchange/imports/{import_id}/progress").get_json()
    assert progress["state"] == "checked" and progress["done"] == len(EXPECTED), progress
    page = client.get(page_url).get_data(as_text=True)
    good = sum(status == "ok" for status in EXPECTED.values())
    assert "试运行" in page and f"确认导入 {good} 行" in page and "最接近的是：征地拆迁" in page
    report = client.get(f"/exchange/imports/{import_id}/report.csv")
    assert (
        report.status_code == 200
        and report.get_data().decode("utf-8-sig").count("\n") == len(EXPECTED) + 1
    )
    before = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    r = client.post(f"/exchange/imports/{import_id}/run", data={"csrf_token": CSRF})
    assert r.status_code == 302
    assert client.get(f"/exchange/imports/{import_id}/progress").get_json()["imported"] == good
    assert f"已导入 <strong>{good}</strong> 个案件" in client.get(page_url).get_data(as_text=True)
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == before + good
    audit = (
        session.execute(
            text("SELECT action FROM audit_log WHERE user_id = :u ORDER BY id"), {"u": user.id}
        )
        .scalars()
        .all()
    )
    assert audit == ["ledger_upload", "ledger_import"]
    # Confirming twice does nothing more.
    assert (
        client.post(
            f"/exchange/imports/{import_id}/run",
            data={"csrf_token": CSRF},
            headers={"Accept": "application/json"},
        ).status_code
        == 409
    )
    # The same file uploaded again: every good row is already imported.
    r = _upload(client, path)
    again = int(re.search(r"/imports/(\d+)", r.headers["Location"])[1])
    assert "确认导入 0 行" in client.get(f"/exchange/imports/{again}").get_data(as_text=True)


def test_unreadable_files_fail_with_a_reason(client, login, tmp_path):
    login("county_staff")
    path = tmp_path / "x.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    r = _upload(client, path)
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "失败" in page and "表头" in page
    bad = {"csrf_token": CSRF, "file": (io.BytesIO(b"x"), "a.xls")}
    assert (
        client.post("/exchange/imports", data=bad, content_type="multipart/form-data").status_code
        == 400
    )


def test_only_county_staff_import(client, login):
    login("planner")
    assert client.get("/exchange/").status_code == 200
    assert client.post("/exchange/imports", data={"csrf_token": CSRF}).status_code == 403
    assert client.get("/exchange/imports/1").status_code == 403


def test_a_ledger_import_stays_with_its_county(client, login, session, tmp_path, places):
    """One database may hold several counties (docs/scaling.md): a county's ledger (its
    petitioners, places and problems) is its own desk's, never seen or run by another's."""
    from tests.builders import COUNTY, import_test_county

    import_test_county(session, tmp_path)
    login("county_staff")
    path = write_ledger(tmp_path / "本县台账.xlsx", every_kind(places))
    r = _upload(client, path)
    import_id = int(re.search(r"/imports/(\d+)", r.headers["Location"])[1])
    urls = [
        f"/exchange/imports/{import_id}",
        f"/exchange/imports/{import_id}/progress",
        f"/exchange/imports/{import_id}/report.csv",
    ]
    before = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
    for role in ("county_staff", "admin"):
        login(role, COUNTY)
        assert "本县台账" not in client.get("/exchange/").get_data(as_text=True), role
        for url in urls:
            assert client.get(url).status_code == 404, (role, url)
        r = client.post(
            f"/exchange/imports/{import_id}/run",
            data={"csrf_token": CSRF},
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 404, role
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == before
    # A colleague of the same county sees it and may confirm it.
    login("county_staff")
    assert "本县台账" in client.get("/exchange/").get_data(as_text=True)
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert (
        client.post(f"/exchange/imports/{import_id}/run", data={"csrf_token": CSRF}).status_code
        == 302
    )
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() > before
