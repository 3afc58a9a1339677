"""A direct load places its points in sessions of their own, and a first load computes its
tallies in one: the cases and tallies it stores must be those of one session doing it all
(``cases.placing``, ``cases.tallies_beside``)."""

from __future__ import annotations

import numpy as np
import psycopg2
import pytest
from sqlalchemy import text

from tests.test_bulk_direct import _lonlat
from tests.test_heat_tallies import digests, empty_the_cases
from webapp.cases import bulk, pgcopy, placing, tallies_beside
from webapp.demo import synthetic
from webapp.stats import tallies


def _grids_of(session, result: bulk.BulkResult) -> list[tuple]:
    return session.execute(
        text(
            "SELECT grid_id, grid_code, village_code FROM cases "
            "WHERE id BETWEEN :lo AND :hi ORDER BY id"
        ),
        {"lo": result.first_id, "hi": result.last_id},
    ).all()


def test_a_first_load_tallies_beside_as_the_tally_function_does(session):
    empty_the_cases(session)
    cols, _ = synthetic.generate(session, 3000, seed=53)
    result = bulk.bulk_insert_cases(session, cols, rebuild_indexes=True)
    assert result.copied_directly and result.inserted > 2900
    assert result.timings["tallies_beside"] > 0  # computed in the second session
    assert result.tallies_beside is None  # and copied in by put_back
    assert tallies.differences(session) == []
    loaded = digests(session)
    assert session.execute(text("SELECT count(*) FROM heat_tallies")).scalar_one() > 0
    tallies.rebuild(session)  # the function itself, in this session, on the stored cases
    assert digests(session) == loaded
    # The tallies' keys and indexes are back (taken off while their groups went in).
    keys = session.execute(
        text("SELECT count(*) FROM pg_index WHERE indrelid = ANY(CAST(:t AS regclass[]))"),
        {"t": list(tallies.ALL_TABLES)},
    ).scalar_one()
    assert keys >= 3


def test_a_deferred_restore_copies_the_tallies_in_with_the_indexes(session):
    empty_the_cases(session)
    cols, _ = synthetic.generate(session, 800, seed=59)
    result = bulk.bulk_insert_cases(session, cols, rebuild_indexes=True, defer_restore=True)
    assert result.tallies_beside is not None
    assert session.execute(text("SELECT count(*) FROM case_tallies")).scalar_one() == 0
    bulk.put_back(session, result)
    assert result.tallies_beside is None and result.restore == []
    assert tallies.differences(session) == []


def test_points_are_placed_in_parts_as_one_session_places_them(session):
    cols, _ = synthetic.generate(session, 2000, seed=61)
    own = session.connection().connection.dbapi_connection
    with own.cursor() as cur:
        alone, alone_border = placing.place_rows(cur, cols.point_columns, 0, cols.n)
    parts, parts_border = placing.place_beside(session, cols.point_columns, cols.n, parts=3)
    assert sorted(map(tuple, parts[["ord", "grid"]].tolist())) == sorted(
        map(tuple, alone[["ord", "grid"]].tolist())
    )
    assert parts_border == alone_border
    assert len(np.unique(parts["ord"])) > 1900


def test_grids_changed_in_the_loads_own_transaction_are_placed_by_it(session):
    """The placing sessions see only committed grids: a load that moved one places itself."""
    cols, _ = synthetic.generate(session, 1500, seed=67)
    code = session.execute(
        text("SELECT grid_code FROM cases GROUP BY grid_code ORDER BY count(*) DESC LIMIT 1")
    ).scalar_one()
    # Move the grid far off: its points are then outside every grid, for this transaction.
    session.execute(
        text("UPDATE areas SET geom = ST_Translate(geom, 5, 0) WHERE code = :c"), {"c": code}
    )
    assert placing.place_beside(session, cols.point_columns, cols.n) is None
    lon, lat = _lonlat(cols)
    inside = session.execute(
        text(
            "SELECT count(*) FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) p(x, y) "
            "JOIN areas g ON g.level = 'grid' "
            "AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))"
        ),
        {"x": lon.tolist(), "y": lat.tolist()},
    ).scalar_one()
    result = bulk.bulk_insert_cases(session, cols, rebuild_indexes=True)
    assert result.copied_directly
    assert result.inserted == inside < cols.n  # the moved grid's points stayed out
    assert code not in {r[1] for r in _grids_of(session, result)}


def test_a_failure_in_the_tally_session_fails_the_load_that_waits_for_it(session):
    """A column the tally session cannot read: its error reaches the load, nothing is copied."""
    names = sorted(tallies_beside.read_columns(session))
    columns = [pgcopy.Text(["x"] * 300) for _ in names]  # text where numbers are due
    beside = tallies_beside.TalliesBeside.start(session, names, columns, [(0, 300)])
    assert beside is not None
    with pytest.raises(psycopg2.Error):
        beside.copy_into(session)
    beside.cancel()  # ended already: returns at once
    assert session.execute(text("SELECT count(*) FROM case_tallies")).scalar_one() > 0
