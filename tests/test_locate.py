"""Which grid a point is in: the one rule, the same for locate, single and bulk inserts."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.builders import VILLAGE, import_test_county, u
from webapp.cases.bulk import COLUMNS, bulk_insert_cases
from webapp.cases.queries import NewCase, OutsideCounty, insert_case
from webapp.cases.vocab import Channel
from webapp.grid.queries import locate

G1, G2, G3, G4 = (f"{VILLAGE}00{i}" for i in range(1, 5))

CASES = [
    pytest.param((3, 0.5), G2, id="inside"),
    pytest.param((2, 0.5), G1, id="shared-edge"),  # G1 | G2: the lower code wins
    pytest.param((3, 1), G2, id="shared-edge-horizontal"),  # G2 / G4
    pytest.param((2, 1), G1, id="shared-corner"),  # all four grids meet here
    pytest.param((0, 0.1), G1, id="outer-boundary"),
    pytest.param((0.5, 0.5), G1, id="hole-boundary"),  # on the hole's edge: still covered
    pytest.param((0.75, 0.5), None, id="hole"),
    pytest.param((5, 1), None, id="outside"),
]


@pytest.fixture
def test_county(session, tmp_path):
    report = import_test_county(session, tmp_path)
    assert report.ok
    return report


@pytest.mark.parametrize(("point", "grid"), CASES)
def test_locate(session, test_county, point, grid):
    found = locate(session, *u(*point))
    assert (found.grid_code if found else None) == grid
    if found:
        assert found.village_code == VILLAGE
        assert found.township_code == VILLAGE[:9]
        assert found.county_code == VILLAGE[:6]


def _category(session) -> int:
    return session.execute(text("SELECT id FROM categories WHERE code = 'other'")).scalar_one()


@pytest.mark.parametrize(("point", "grid"), CASES)
def test_insert_case_uses_the_same_rule(session, test_county, point, grid):
    new = NewCase(
        title="测试",
        category_id=_category(session),
        channel=Channel.VISIT,
        lon=u(*point)[0],
        lat=u(*point)[1],
    )
    if grid is None:
        with pytest.raises(OutsideCounty):
            insert_case(session, new)
        return
    stored = insert_case(session, new)
    row = session.execute(
        text(
            "SELECT grid_code, village_code, township_code, county_code, number FROM cases WHERE id = :id"
        ),
        {"id": stored.id},
    ).one()
    assert row.grid_code == grid
    assert (row.village_code, row.township_code, row.county_code) == (
        VILLAGE,
        VILLAGE[:9],
        VILLAGE[:6],
    )
    assert row.number == stored.number and row.number.startswith("990100-")


def test_bulk_insert_uses_the_same_rule(session, test_county):
    cat = _category(session)
    rows = []
    for i, p in enumerate(CASES):
        (x, y), _grid = p.values
        lon, lat = u(x, y)
        row = dict.fromkeys(COLUMNS)
        row.update(
            ord=i,
            title=f"批量{i}",
            description="",
            category_id=cat,
            channel="visit",
            case_class="request",
            people_count=1,
            batch_count=1,
            lon=lon,
            lat=lat,
            location_approx=False,
            status="registered",
            reported_at="2026-01-01T00:00:00+00:00",
            is_first=True,
            skip_level=False,
        )
        rows.append(tuple(row[c] for c in COLUMNS))
    result = bulk_insert_cases(session, rows)
    expected = {i: p.values[1] for i, p in enumerate(CASES)}
    assert result.outside == [i for i, g in expected.items() if g is None]
    got = dict(
        session.execute(
            text("SELECT title, grid_code FROM cases WHERE id BETWEEN :a AND :b"),
            {"a": result.first_id, "b": result.last_id},
        ).all()
    )
    assert got == {f"批量{i}": g for i, g in expected.items() if g is not None}
    assert result.on_border == sum(1 for p in CASES if p.id not in {"inside", "hole", "outside"})


def test_bulk_insert_skips_client_ids_already_stored_or_repeated_in_the_load(session, test_county):
    cat = _category(session)
    lon, lat = u(3, 0.5)
    stored, fresh = uuid.uuid4(), uuid.uuid4()
    insert_case(
        session,
        NewCase(
            title="已有",
            category_id=cat,
            channel=Channel.GRID_SWEEP,
            lon=lon,
            lat=lat,
            client_id=stored,
        ),
    )
    rows = []
    for i, cid in enumerate([stored, fresh, None, fresh, None, stored]):
        row = dict.fromkeys(COLUMNS)
        row.update(
            ord=i,
            client_id=str(cid) if cid else None,
            title=f"重发{i}",
            description="",
            category_id=cat,
            channel="visit",
            case_class="request",
            people_count=1,
            batch_count=1,
            lon=lon,
            lat=lat,
            location_approx=False,
            status="registered",
            reported_at="2026-01-01T00:00:00+00:00",
            is_first=True,
            skip_level=False,
        )
        rows.append(tuple(row[c] for c in COLUMNS))
    result = bulk_insert_cases(session, rows)
    assert result.duplicates == 3 and result.inserted == 3  # ords 0, 3, 5 are resends
    titles = (
        session.execute(
            text("SELECT title FROM cases WHERE id BETWEEN :a AND :b ORDER BY title"),
            {"a": result.first_id, "b": result.last_id},
        )
        .scalars()
        .all()
    )
    assert titles == ["重发1", "重发2", "重发4"]


def test_resend_with_same_client_id_returns_the_first_case(session, test_county):
    cid = uuid.uuid4()
    new = NewCase(
        title="重发",
        category_id=_category(session),
        channel=Channel.GRID_SWEEP,
        lon=u(1, 1.5)[0],
        lat=u(1, 1.5)[1],
        client_id=cid,
    )
    first = insert_case(session, new)
    again = insert_case(session, new)
    assert first.created and not again.created
    assert (again.id, again.number) == (first.id, first.number)
    assert (
        session.execute(
            text("SELECT count(*) FROM cases WHERE client_id = :c"), {"c": cid}
        ).scalar_one()
        == 1
    )


def test_locate_api(client, session, test_county, login):
    login("county_staff")
    lon, lat = u(3, 1.5)
    r = client.get(f"/api/v1/locate?lon={lon}&lat={lat}")
    assert r.status_code == 200
    body = r.get_json()
    assert body["grid"] == {"code": G4, "name": "丁网格"}
    assert body["village"]["name"] == "测试村"
    assert body["township"] == {"code": VILLAGE[:9], "name": "测试镇"}


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("lon=100.05&lat=30.05", 404, "outside_county"),
        ("lon=abc&lat=30", 400, "invalid_coordinates"),
        ("lat=30", 400, "invalid_coordinates"),
        ("lon=nan&lat=30", 400, "invalid_coordinates"),
        ("lon=inf&lat=30", 400, "invalid_coordinates"),
        ("lon=200&lat=30", 400, "invalid_coordinates"),
        ("lon=114&lat=-91", 400, "invalid_coordinates"),
    ],
)
def test_locate_api_errors(client, test_county, login, query, status, code):
    login("county_staff")
    r = client.get(f"/api/v1/locate?{query}")
    assert r.status_code == status
    err = r.get_json()["error"]
    assert err["code"] == code
    assert err["message"] and err["message_en"]


def test_demo_point_is_located(client, login):
    login("grid_worker")
    """A point in the demo county answers with its grid, village and township."""
    r = client.get("/api/v1/locate?lon=114.2&lat=35.25")
    assert r.status_code == 200
    body = r.get_json()
    assert body["grid"]["code"].startswith(body["village"]["code"])
    assert body["village"]["code"].startswith(body["township"]["code"])
    assert body["county"]["code"] == "410726"


def test_every_new_case_gets_its_reporter_and_first_deadline(session, test_county, make_user):
    from datetime import UTC, datetime

    user = make_user("county_staff")
    reported = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, no holiday in the next 15 days
    new = NewCase(
        title="期限",
        category_id=_category(session),
        channel=Channel.VISIT,
        lon=u(1, 1.5)[0],
        lat=u(1, 1.5)[1],
        reported_at=reported,
        reporter_id=user.id,
    )
    stored = insert_case(session, new)
    row = session.execute(
        text("SELECT reporter_id, due_at FROM cases WHERE id = :i"), {"i": stored.id}
    ).one()
    assert row.reporter_id == user.id
    # 15 calendar days to register and assign (第22条), ending at local midnight.
    assert row.due_at.astimezone().date().isoformat() >= "2026-03-17"
    assert (row.due_at - reported).days in (15, 16)
