"""The simplified areas kept in process (grid.queries.area_features): never stale, never shared."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.builders import GRIDS, VILLAGE, import_test_county, ubox
from webapp.grid import queries
from webapp.grid.models import AreaLevel
from webapp.grid.queries import area_features, boundaries_version


def grids(session):
    return area_features(session, AreaLevel.GRID, VILLAGE, 0.0, digits=6)


def by_code(fc: dict) -> dict:
    return {f["properties"]["code"]: f for f in fc["features"]}


def test_served_from_the_cache_until_an_import_changes_the_boundaries(session, tmp_path):
    import_test_county(session, tmp_path)
    first = grids(session)
    assert [f["properties"]["name"] for f in first["features"]] == [n for n, _ in GRIDS.values()]
    misses = queries._features.misses
    again = grids(session)
    assert queries._features.misses == misses  # no second simplification
    assert again == first
    # The text kept for the map document is the geometry itself.
    geometry = again["features"][0]["geometry"]
    assert isinstance(geometry, queries.GeoJSONGeometry) and json.loads(geometry.json) == geometry

    # Re-import: one grid renamed, the border between two others moved.
    stamp = boundaries_version(session)
    changed = dict(GRIDS)
    changed[f"{VILLAGE}001"] = ("新甲网格", GRIDS[f"{VILLAGE}001"][1])
    changed[f"{VILLAGE}002"] = ("乙网格", ubox(2, 0, 4, 1.5))
    changed[f"{VILLAGE}004"] = ("丁网格", ubox(2, 1.5, 4, 2))
    import_test_county(session, tmp_path, grids=changed)
    assert boundaries_version(session) != stamp
    after = by_code(grids(session))
    assert queries._features.misses == misses + 1
    assert after[f"{VILLAGE}001"]["properties"]["name"] == "新甲网格"
    old = by_code(first)
    for code in (f"{VILLAGE}002", f"{VILLAGE}004"):
        assert after[code]["geometry"] != old[code]["geometry"]
    assert after[f"{VILLAGE}003"]["geometry"] == old[f"{VILLAGE}003"]["geometry"]


def test_any_change_to_the_areas_by_any_process_gives_a_new_stamp(session, tmp_path):
    """Another worker's change reaches this one through the stamp it reads from the database."""
    import_test_county(session, tmp_path)
    grids(session)
    stamp = boundaries_version(session)
    session.execute(text("UPDATE areas SET name = '改' WHERE code = :c"), {"c": f"{VILLAGE}003"})
    assert boundaries_version(session) != stamp
    assert by_code(grids(session))[f"{VILLAGE}003"]["properties"]["name"] == "改"
    session.execute(text("DELETE FROM areas WHERE code = :c"), {"c": f"{VILLAGE}004"})
    assert f"{VILLAGE}004" not in by_code(grids(session))


def test_a_rolled_back_change_leaves_no_stamp_to_reuse(session, tmp_path):
    import_test_county(session, tmp_path)
    before = grids(session)
    stamp = boundaries_version(session)
    with session.begin_nested() as nested:
        session.execute(
            text("UPDATE areas SET name = '临时' WHERE code = :c"), {"c": f"{VILLAGE}001"}
        )
        inside = boundaries_version(session)
        assert by_code(grids(session))[f"{VILLAGE}001"]["properties"]["name"] == "临时"
        nested.rollback()
    assert boundaries_version(session) == stamp
    assert grids(session) == before
    # The next change gets a stamp of its own, never the rolled-back one (cached with '临时').
    session.execute(text("UPDATE areas SET population = 5 WHERE code = :c"), {"c": f"{VILLAGE}002"})
    assert boundaries_version(session) not in (stamp, inside)
    assert by_code(grids(session))[f"{VILLAGE}001"]["properties"]["name"] == "甲网格"


def test_callers_get_their_own_features(session, tmp_path):
    import_test_county(session, tmp_path)
    mine = grids(session)
    mine["features"][0]["properties"]["name"] = "乱改"
    mine["features"][0]["properties"]["label"].append(0)
    mine["features"].pop()
    fresh = grids(session)
    assert fresh["features"][0]["properties"]["name"] == "甲网格"
    assert len(fresh["features"][0]["properties"]["label"]) == 2
    assert len(fresh["features"]) == len(GRIDS)
