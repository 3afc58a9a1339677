"""A rebuilding load of columns copies the cases straight into ``cases`` (no staging of the
whole rows, no INSERT ... SELECT): it must store exactly what the staged INSERT stores,
number included (the table generates it from the copied id, county and time)."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import text

from webapp.cases import bulk, pgcopy
from webapp.demo import synthetic

# Every loaded column but the id (and the number, which ends in it, and the repeat link,
# which names one): compared as they are.
_COMPARED = sorted(c for c in bulk._LOADED_COLUMNS if c not in ("id", "number", "repeat_of_id"))


def _with(cols: bulk.CaseColumns, **changed) -> bulk.CaseColumns:
    by_name = dict(zip(bulk.STAGE_NAMES, cols.columns, strict=True))
    by_name.update(changed)
    return bulk.CaseColumns(by_name)


def _lonlat(cols: bulk.CaseColumns) -> tuple[np.ndarray, np.ndarray]:
    raw = cols.columns[bulk.STAGE_NAMES.index("geom")].bytes
    return raw[:, 9:17].copy().view("<f8")[:, 0], raw[:, 17:25].copy().view("<f8")[:, 0]


def _stored(session, result: bulk.BulkResult) -> list[tuple]:
    """The loaded cases in load order; ids as their rank in the load, numbers without the id."""
    rows = session.execute(
        text(
            f"SELECT id, split_part(number, '-', 1) || '-' || split_part(number, '-', 2), "
            f"lpad(id::text, 7, '0') = split_part(number, '-', 3), repeat_of_id, "
            f"{', '.join(_COMPARED)} FROM cases WHERE id BETWEEN :lo AND :hi ORDER BY id"
        ),
        {"lo": result.first_id, "hi": result.last_id},
    ).all()
    rank = {r[0]: i for i, r in enumerate(rows)}
    return [(r[1], r[2], None if r[3] is None else rank[r[3]], *r[4:]) for r in rows]


@pytest.fixture
def awkward_load(session) -> bulk.CaseColumns:
    """Synthetic cases with a few outside the county, and repeats of those (no target)."""
    cols, _ = synthetic.generate(session, 2500, seed=19)
    lon, lat = _lonlat(cols)
    outside = np.array([0, 7, 1234, 2499])
    lon[outside] = 100.0
    rep = cols.columns[bulk.STAGE_NAMES.index("repeat_ord")]
    values, null = rep.values.astype(np.int64), rep.null.copy()
    values[[8, 1300]], null[[8, 1300]] = [7, 1234], False  # repeat rows that stay out
    return _with(cols, geom=pgcopy.Point(lon, lat), repeat_ord=pgcopy.int8(values, null))


def test_a_direct_load_stores_what_the_staged_insert_stores(session, awkward_load):
    nested = session.begin_nested()
    direct = bulk.bulk_insert_cases(session, awkward_load, rebuild_indexes=True)
    assert direct.copied_directly and direct.rebuilt_indexes
    by_copy = _stored(session, direct)
    nested.rollback()

    staged = bulk.bulk_insert_cases(session, awkward_load, rebuild_indexes=False)
    assert not staged.copied_directly
    by_insert = _stored(session, staged)

    assert direct.outside == staged.outside == [0, 7, 1234, 2499]
    assert direct.inserted == staged.inserted == 2496 == len(by_copy)
    assert by_copy == by_insert
    assert all(r[1] for r in by_copy)  # every number ends in its own id
    assert sum(r[2] is not None for r in by_copy) > 50  # repeats linked (not only NULLs)
    # The repeats of rows left outside link nothing, in both.
    first = session.execute(
        text("SELECT repeat_of_id FROM cases WHERE id = :id"), {"id": staged.first_id + 7}
    ).scalar_one()
    assert first is None


def test_only_rebuilding_loads_of_rising_columns_without_client_ids_go_direct(session):
    cols, _ = synthetic.generate(session, 300, seed=23)
    assert bulk._can_copy_directly(session, cols, True)
    assert not bulk._can_copy_directly(session, cols, False)
    assert not bulk._can_copy_directly(session, cols, None)  # small, and cases not empty
    ords = cols.columns[bulk.STAGE_NAMES.index("ord")].values.astype(np.int64)
    shuffled = _with(cols, ord=pgcopy.int8(ords[::-1].copy()))
    assert not bulk._can_copy_directly(session, shuffled, True)
    rows = [
        (
            i,
            None,
            "t",
            "d",
            1,
            "visit",
            "request",
            1,
            1,
            114.3,
            35.3,
            False,
            "registered",
            "2024-01-01T00:00:00Z",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            True,
            None,
            False,
            None,
            None,
            None,
        )
        for i in range(3)
    ]
    assert bulk._can_copy_directly(session, bulk.columns_from_rows(rows), True)
    with_ids = [(r[0], f"00000000-0000-0000-0000-00000000000{r[0]}", *r[2:]) for r in rows]
    assert not bulk._can_copy_directly(session, bulk.columns_from_rows(with_ids), True)
    assert not bulk._can_copy_directly(session, rows, True)  # tuples: staged


def test_a_first_load_into_empty_cases_takes_the_primary_key_apart_too_and_puts_all_back(
    session, awkward_load
):
    """Into an empty table (nothing refers to a case), the load drops the primary key with
    the other indexes and keys and builds it first when it puts them back; the numbers
    are those the inserts spelt before k01, the tallies those of a fresh GROUP BY."""
    from bench.load import schema_of_cases
    from tests.test_case_number import OLD
    from tests.test_heat_tallies import empty_the_cases
    from webapp.stats import tallies

    empty_the_cases(session)
    before = schema_of_cases(session)
    result = bulk.bulk_insert_cases(session, awkward_load, rebuild_indexes=True, defer_restore=True)
    assert result.copied_directly and result.outside == [0, 7, 1234, 2499]
    assert result.restore[0] == 'ALTER TABLE cases ADD CONSTRAINT "pk_cases" PRIMARY KEY (id)'
    assert not session.execute(
        text("SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'pk_cases')")
    ).scalar_one()
    bulk.put_back(session, result)
    assert schema_of_cases(session) == before
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == 2496
    wrong = session.execute(
        text(f"SELECT count(*) FROM cases WHERE number <> ({OLD})")
    ).scalar_one()
    assert wrong == 0
    assert tallies.differences(session) == []


def test_cases_generated_while_their_points_are_placed_are_those_generated_first(session):
    """The demo loader's pending columns (the points now, the rest made in a thread while
    PostgreSQL places them) store the same cases as the whole columns of the same seed,
    both straight into ``cases``; a load that does not rebuild waits for the rows first."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    whole, spots = synthetic.generate(session, 3000, seed=23, now=now)
    pending, pending_spots = synthetic.generate_in_background(session, 3000, seed=23, now=now)
    assert isinstance(pending, bulk.PendingColumns) and pending_spots == spots

    nested = session.begin_nested()
    first = bulk.bulk_insert_cases(session, pending, rebuild_indexes=True)
    assert first.copied_directly and "generate_rest" in first.timings
    by_pending = _stored(session, first)
    nested.rollback()

    nested = session.begin_nested()
    again = bulk.bulk_insert_cases(session, whole, rebuild_indexes=True)
    assert again.copied_directly
    assert _stored(session, again) == by_pending
    assert again.outside == first.outside and again.inserted == first.inserted > 2900
    nested.rollback()

    later, _ = synthetic.generate_in_background(session, 3000, seed=23, now=now)
    kept = bulk.bulk_insert_cases(session, later, rebuild_indexes=False)
    assert not kept.copied_directly and _stored(session, kept) == by_pending


def test_pending_columns_that_break_their_promise_fail_the_load(session):
    cols, _ = synthetic.generate(session, 200, seed=29)
    shifted = _with(cols, ord=pgcopy.int8(np.arange(200) + 1))
    done: Future = Future()
    done.set_result(shifted)
    pending = bulk.PendingColumns(cols.columns[bulk.STAGE_NAMES.index("geom")], done)
    with pytest.raises(ValueError, match="promised"):
        bulk.bulk_insert_cases(session, pending, rebuild_indexes=True)
