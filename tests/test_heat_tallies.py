"""The heat tally and the maps' counts from the tallies: equal to the cases, after every write.

Two properties, on the demo county (3,000 synthetic cases) and after every kind of
write: the stored heat tally equals a fresh ``GROUP BY`` over the cases
(``stats.tallies.differences`` covers both tallies), and a heat lattice or a case
count read from the tallies equals, cell for cell, the same read from the cases
alone (``raw=True``), for the lattices of each map level and the periods, filters
and scopes the maps offer.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from tests.tallies_fixtures import new_case, walk_workflow
from webapp.auth.permissions import case_scope_sql
from webapp.cases import queries as cq
from webapp.cases.bulk import bulk_insert_cases
from webapp.demo import synthetic
from webapp.hotspots.queries import CaseFilter
from webapp.maps import queries as mq
from webapp.maps.views import AGGREGATE_CELL_M, HEAT_CELL_M
from webapp.stats import tallies
from webapp.stats.models import HEAT_COARSE
from webapp.stats.queries import LOCAL_TZ, local_midnight

COUNTY = "410726"
COUNTY_SCOPE = ("c.county_code = :scope_county", {"scope_county": COUNTY})
# The views drawn from the (coarse) tally: county and township; villages and grids read
# their cases.
TALLIED_LEVELS = ("county", "township")


def today() -> date:
    return datetime.now(LOCAL_TZ).date()


def days(start: date, end: date, **kinds) -> CaseFilter:
    """The maps' filter for the local days ``start`` to ``end`` (both included)."""
    return CaseFilter(local_midnight(start), local_midnight(end + timedelta(days=1)), **kinds)


def default_period() -> CaseFilter:
    """The maps' default: the last 12 whole months and this month so far."""
    t = today()
    return days(date(t.year - 1, t.month, 1), t)


def periods() -> dict[str, CaseFilter]:
    t = today()
    first = date(t.year, t.month, 1)
    return {
        "default": default_period(),
        "12-months": days(date(t.year - 1, t.month, 1), first - timedelta(days=1)),
        "365-days": days(t - timedelta(days=364), t),
        "ragged": days(date(t.year - 2, 2, 10), date(t.year - 1, 3, 20)),
        "february": days(date(t.year - 1, 2, 1), date(t.year - 1, 2, 28)),
        "to-year-end": days(date(t.year - 3, 1, 1), date(t.year, 12, 31)),
        "ten-days": days(t - timedelta(days=9), t),
    }


def areas(session) -> dict[str, mq.AreaInfo]:
    """The county, its busiest township and village, and a grid of that village."""
    township, village, grid = session.execute(
        text(
            "SELECT township_code, village_code, min(grid_code) FROM cases "
            "GROUP BY township_code, village_code ORDER BY count(*) DESC, village_code LIMIT 1"
        )
    ).one()
    return {
        name: mq.area_info(session, code)
        for name, code in [
            ("county", COUNTY),
            ("township", township),
            ("village", village),
            ("grid", grid),
        ]
    }


def same_heat(session, area, cf, scope=COUNTY_SCOPE, cell_m=None, min_cell_m=0.0, tallied=True):
    """The lattice from the tallies equals the one from the cases; return the plan used.

    ``tallied``: whether the tally must (True) or must not (False) be read.
    """
    cell_m = cell_m or mq_cell(area)
    lattice = mq.lattice_for(area.bounds, cell_m, min_cell_m)
    plan = mq.heat_plan(session, area, lattice, cf, scope)
    if tallied is not None:
        assert (plan is not None) is tallied, plan
    fast = mq.heat_lattice(session, area, cell_m, cf, scope, "people", min_cell_m)
    raw = mq.heat_lattice(session, area, cell_m, cf, scope, "people", min_cell_m, raw=True)
    assert (fast.west, fast.south, fast.dx, fast.dy) == (raw.west, raw.south, raw.dx, raw.dy)
    assert fast.weights.shape == raw.weights.shape
    assert (fast.cases, fast.people) == (raw.cases, raw.people)
    assert np.array_equal(fast.weights, raw.weights)
    cases_only = mq.heat_lattice(session, area, cell_m, cf, scope, "cases", min_cell_m)
    assert cases_only.weights.sum() == raw.cases
    return plan


def same_count(session, area, cf, scope=COUNTY_SCOPE) -> int:
    fast = mq.count_cases(session, area.code, cf, scope)
    raw = mq.count_cases(session, area.code, cf, scope, raw=True)
    assert fast == raw
    return fast


def mq_cell(area) -> float:
    return HEAT_CELL_M[area.level]


def assert_all_paths_agree(session) -> None:
    """The tallies equal the cases, and every level's heat and count read both ways agree."""
    session.flush()
    assert tallies.differences(session) == []
    for name, area in areas(session).items():
        cf = default_period()
        plan = same_heat(session, area, cf, tallied=name in TALLIED_LEVELS)
        if plan is not None:
            assert plan.scale == HEAT_COARSE
        same_count(session, area, cf)


def busiest_grids(session, n: int = 3) -> list[str]:
    village = areas(session)["village"].code
    return (
        session.execute(
            text(
                "SELECT code FROM areas WHERE level = 'grid' AND code LIKE :p ORDER BY code LIMIT :n"
            ),
            {"p": village + "%", "n": n},
        )
        .scalars()
        .all()
    )


# -- the lattice ------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["county", "township", "village", "grid"])
def test_each_level_gets_a_lattice_of_whole_tally_cells(session, level):
    area = areas(session)[level]
    lat = mq.lattice_for(area.bounds, HEAT_CELL_M[area.level])
    w, s, e, n = area.bounds
    assert (
        lat.west <= w < lat.west + lat.cols * lat.dx
        and lat.south <= s < lat.south + lat.rows * lat.dy
    )
    assert e < lat.west + lat.cols * lat.dx and n < lat.south + lat.rows * lat.dy
    assert lat.cols * lat.rows <= mq.MAX_HEAT_CELLS
    expected = {
        "county": (HEAT_COARSE, 1),
        "township": (HEAT_COARSE, 1),
        "village": (1, 1),
        "grid": (1, 2),
    }
    assert (lat.cells, lat.split) == expected[level]
    assert abs(lat.cell_m - HEAT_CELL_M[area.level]) / HEAT_CELL_M[area.level] < 0.25


def test_a_minimum_cell_and_the_cap_make_cells_bigger(session):
    village = areas(session)["village"]
    lat = mq.lattice_for(village.bounds, 100.0, min_cell_m=AGGREGATE_CELL_M)
    assert lat.dy * mq.METRES_PER_DEGREE >= AGGREGATE_CELL_M and lat.split == 1
    county = areas(session)["county"]
    lat = mq.lattice_for(county.bounds, 20.0)  # would be far over the cap
    assert lat.cols * lat.rows <= mq.MAX_HEAT_CELLS < 4 * lat.cols * lat.rows and lat.split == 1


# -- both paths agree -------------------------------------------------------------------------


def test_the_demo_load_is_heat_tallied(session):
    assert (
        session.execute(
            text("SELECT sum(cases), sum(people) FROM heat_tallies WHERE scale = :s"),
            {"s": HEAT_COARSE},
        ).one()
        == session.execute(text("SELECT count(*), sum(people_count) FROM cases")).one()
    )
    # coarse cells only, keyed by township: one row per township, month and cell
    assert (
        session.execute(
            text(
                "SELECT count(*) FROM heat_tallies WHERE scale <> :s OR township_code = '' "
                "OR village_code <> '' OR grid_code <> ''"
            ),
            {"s": HEAT_COARSE},
        ).scalar()
        == 0
    )
    coarse = session.execute(text("SELECT count(*) FROM heat_tallies")).scalar()
    assert 0 < coarse < session.execute(text("SELECT count(*) FROM cases")).scalar()
    assert_all_paths_agree(session)


@pytest.mark.parametrize("period", list(periods()), ids=list(periods()))
@pytest.mark.parametrize("level", ["county", "township", "village", "grid"])
def test_heat_from_the_tally_equals_the_cases(session, period, level):
    cf = periods()[period]
    area = areas(session)[level]
    # ten days hold a whole month only when they start on its first day
    tallied = None if period == "ten-days" else level in TALLIED_LEVELS
    same_heat(session, area, cf, tallied=tallied)
    same_count(session, area, cf)


def test_ragged_days_are_read_from_the_cases(session):
    t = today()
    cf = days(date(t.year - 2, 2, 10), date(t.year - 1, 3, 20))
    county = areas(session)["county"]
    plan = same_heat(session, county, cf)
    assert plan.months == (date(t.year - 2, 3, 1), date(t.year - 1, 3, 1))
    assert [
        (lo.astimezone(LOCAL_TZ).date(), hi.astimezone(LOCAL_TZ).date()) for lo, hi in plan.ragged
    ] == [
        (date(t.year - 2, 2, 10), date(t.year - 2, 3, 1)),
        (date(t.year - 1, 3, 1), date(t.year - 1, 3, 21)),
    ]
    assert same_count(session, county, cf) > 0
    # the default period reaches now: its last month is read whole, nothing ragged
    assert same_heat(session, county, default_period()).ragged == ()


@pytest.mark.parametrize(
    "kinds",
    [{"category_ids": (1, 2)}, {"channels": ("visit",)}, {"statuses": ("closed", "resolved")}],
    ids=["category", "channel", "status"],
)
def test_kinds_of_case_read_the_cases(session, kinds):
    t = today()
    cf = days(date(t.year - 1, t.month, 1), t, **kinds)
    for area in areas(session).values():
        same_heat(session, area, cf, tallied=False)
        same_count(session, area, cf)


@pytest.mark.parametrize(
    "role, area, tallied",
    [
        ("county_staff", None, True),
        ("admin", None, True),
        ("planner", None, True),
        ("township_leader", None, True),  # a township: its rows of the tally
        ("township_leader", "unit", False),  # an accused body's cases are hidden per case
        ("leader_in_charge", None, False),
        ("grid_worker", None, False),
    ],
)
def test_only_area_scopes_read_the_heat_tally(session, make_user, role, area, tallied):
    user = make_user(role, None, **({"unit": "城关镇人民政府"} if area == "unit" else {}))
    session.execute(
        text(
            "UPDATE cases SET leader_id = :u WHERE id IN (SELECT id FROM cases ORDER BY id DESC LIMIT 40)"
        ),
        {"u": user.id},
    )
    root = mq.area_info(
        session, user.area_code if len(user.area_code) <= 12 else user.area_code[:12]
    )
    min_cell = AGGREGATE_CELL_M if role == "planner" else 0.0
    plan = same_heat(
        session, root, default_period(), case_scope_sql(user), min_cell_m=min_cell, tallied=tallied
    )
    if plan is not None:
        assert root.level.value in TALLIED_LEVELS and plan.scale == HEAT_COARSE
    same_count(session, root, default_period(), case_scope_sql(user))


def test_a_township_scope_over_the_county_reads_its_rows_of_the_tally(session):
    """The tally's rows carry the township: a township scope over a county lattice reads them."""
    county = areas(session)["county"]
    township = areas(session)["township"].code
    scope = ("c.township_code = :scope_area", {"scope_area": township})
    plan = same_heat(session, county, default_period(), scope, tallied=True)
    assert plan.scale == HEAT_COARSE


@pytest.mark.parametrize("level", ["village", "grid"])
def test_a_village_or_grid_scope_reads_the_cases(session, level):
    """Coarse cells cross village borders: a village's or grid's scope reads the cases."""
    area = areas(session)[level]
    scope = (f"c.{level}_code = :scope_area", {"scope_area": area.code})
    for root in (areas(session)["county"], areas(session)["township"], area):
        same_heat(session, root, default_period(), scope, tallied=False)


def test_every_township_from_the_tally_equals_its_cases(session):
    """Each township's view, and its leader's scope, cell for cell from the tally as from its cases."""
    codes = (
        session.execute(
            text("SELECT code FROM areas WHERE level = 'township' AND code LIKE :c ORDER BY code"),
            {"c": COUNTY + "%"},
        )
        .scalars()
        .all()
    )
    assert len(codes) > 5
    t = today()
    cf = days(date(t.year - 2, 2, 10), date(t.year - 1, 3, 20))  # whole months and ragged days
    for code in codes:
        township = mq.area_info(session, code)
        own = ("c.township_code = :scope_area", {"scope_area": code})
        for scope in (COUNTY_SCOPE, own):
            for period in (default_period(), cf):
                assert (
                    same_heat(session, township, period, scope, tallied=True).scale == HEAT_COARSE
                )
        same_count(session, township, default_period(), own)


def test_cells_crossing_a_township_border_are_summed_for_the_county(session):
    """A cell holding cases of two townships is two rows; the county's view adds them."""
    crossing = session.execute(
        text(
            "SELECT count(*) FROM (SELECT 1 FROM heat_tallies GROUP BY scale, county_code, month, cx, cy "
            "HAVING count(DISTINCT township_code) > 1) x"
        )
    ).scalar()
    assert crossing > 0
    same_heat(session, areas(session)["county"], periods()["to-year-end"], tallied=True)


def test_a_time_ahead_of_the_clock_sends_the_heat_to_the_cases(session):
    grid = busiest_grids(session, 1)[0]
    new_case(
        session, grid, reported_at=datetime.now(LOCAL_TZ) + timedelta(hours=30), people_count=3
    )
    session.flush()
    for area in areas(session).values():
        same_heat(session, area, default_period(), tallied=False)
        same_count(session, area, default_period())


# -- after every kind of write ----------------------------------------------------------------


def test_every_kind_of_write_keeps_the_heat_tally(session, make_user):
    staff = make_user("county_staff")
    rules = cq.rules_for(COUNTY)
    grids = busiest_grids(session)
    # insert_case (desk registration and field reports store through it)
    first = new_case(session, grids[0], people_count=6)
    other = new_case(session, grids[1], channel="letter", people_count=2)
    assert_all_paths_agree(session)
    # the workflow, action by action
    walk_workflow(session, staff, [first], rules)
    assert_all_paths_agree(session)
    version = session.execute(
        text("SELECT version FROM cases WHERE id = :i"), {"i": other}
    ).scalar()
    cq.link_repeat(session, staff, other, version, first)
    assert_all_paths_agree(session)
    # a case moved a few hundred metres (another cell), its people changed, and one
    # moved to another grid and month
    session.execute(
        text(
            "UPDATE cases SET location = ST_Translate(location, 0.004, -0.003), people_count = 11 "
            "WHERE id = :i"
        ),
        {"i": first},
    )
    assert_all_paths_agree(session)
    session.execute(
        text(
            "UPDATE cases c SET location = g.label_point, grid_code = g.code, village_code = g.village_code,"
            " township_code = g.township_code, reported_at = c.reported_at - interval '40 days'"
            " FROM areas g WHERE g.code = :g AND c.id = :i"
        ),
        {"g": grids[2], "i": other},
    )
    assert_all_paths_agree(session)
    # many rows in one statement: moved, their people changed, others left as they were
    session.execute(
        text(
            "UPDATE cases SET location = ST_Translate(location, 0.0007, 0.0005), "
            "people_count = people_count + (id % 3) WHERE id % 11 = 0"
        )
    )
    session.execute(
        text(
            "UPDATE cases SET status = 'closed', resolved_at = concluded_at "
            "WHERE id % 7 = 0 AND status = 'concluded'"
        )
    )
    assert_all_paths_agree(session)
    # deletes: one case, then several in one statement
    gone = [new_case(session, grids[i % 3], people_count=1 + i) for i in range(5)]
    assert_all_paths_agree(session)
    session.execute(text("DELETE FROM cases WHERE id = :i"), {"i": gone[0]})
    assert_all_paths_agree(session)
    session.execute(text("DELETE FROM cases WHERE id = ANY(:ids)"), {"ids": gone[1:]})
    assert_all_paths_agree(session)


def test_a_bulk_load_keeps_the_heat_tally(session):
    rows, _ = synthetic.generate(session, 160, seed=23)
    result = bulk_insert_cases(session, rows)
    assert result.inserted > 100 and "tallies" in result.timings
    assert_all_paths_agree(session)


def digests(session) -> dict[str, str]:
    """Each tally table's rows, as one digest per table."""
    return {
        table: session.execute(
            text(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            )
        ).scalar()
        for table in tallies.ALL_TABLES
    }


def empty_the_cases(session) -> None:
    # The case event log refuses TRUNCATE while it holds rows (h01); this transaction
    # lifts that (it is rolled back after the test).
    session.execute(text("ALTER TABLE case_events DISABLE TRIGGER case_events_no_truncate"))
    session.execute(text("TRUNCATE cases CASCADE"))
    session.execute(text("ALTER TABLE case_events ENABLE TRIGGER case_events_no_truncate"))


@pytest.mark.parametrize("empty", [False, True], ids=["beside-the-cases", "into-an-empty-table"])
def test_a_loads_one_pass_equals_a_rebuild_and_the_triggers(session, empty):
    """The three tallies a bulk load adds in one pass are those a rebuild and the row triggers give."""
    if empty:
        empty_the_cases(session)
    before = digests(session)
    rows, _ = synthetic.generate(session, 300, seed=37)
    result = bulk_insert_cases(session, rows, rebuild_indexes=empty)
    assert result.inserted > 200
    assert tallies.differences(session) == []
    loaded = digests(session)
    assert loaded != before
    tallies.rebuild(session)
    assert digests(session) == loaded
    # The same cases taken out and written again, one statement each, through the triggers.
    session.execute(
        text(
            "CREATE TEMP TABLE reloaded ON COMMIT DROP AS SELECT * FROM cases WHERE id BETWEEN :lo AND :hi"
        ),
        {"lo": result.first_id, "hi": result.last_id},
    )
    session.execute(text("DELETE FROM cases WHERE id IN (SELECT id FROM reloaded)"))
    assert digests(session) == before
    # Every column but the generated number (PostgreSQL computes it again, the same).
    columns = ", ".join(
        session.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'cases' "
                "AND is_generated = 'NEVER' ORDER BY ordinal_position"
            )
        ).scalars()
    )
    session.execute(text(f"INSERT INTO cases ({columns}) SELECT {columns} FROM reloaded"))
    assert digests(session) == loaded


def test_truncate_empties_the_heat_tally_and_a_load_into_the_empty_table_fills_it(session):
    empty_the_cases(session)
    assert session.execute(text("SELECT count(*) FROM heat_tallies")).scalar() == 0
    assert session.execute(text("SELECT count(*) FROM case_tallies")).scalar() == 0
    rows, _ = synthetic.generate(session, 400, seed=29)
    for rebuild in (True, False):  # into the empty table (indexes rebuilt), then beside it
        result = bulk_insert_cases(
            session,
            rows if rebuild else synthetic.generate(session, 200, seed=31)[0],
            rebuild_indexes=rebuild,
        )
        assert result.inserted > 100
        assert_all_paths_agree(session)


def test_rebuild_gives_the_same_heat_tally(session):
    def digest():
        return session.execute(
            text("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM heat_tallies t")
        ).scalar()

    before = digest()
    session.execute(
        text(
            "UPDATE heat_tallies SET people = people + 1 "
            "WHERE month = (SELECT max(month) FROM heat_tallies)"
        )
    )
    session.execute(
        text(
            "DELETE FROM heat_tallies WHERE ctid = (SELECT min(ctid) FROM heat_tallies WHERE scale = 5)"
        )
    )
    wrong = tallies.differences(session)
    assert wrong and {r["tally"] for r in wrong} == {"heat_tallies"}
    assert {r["side"] for r in wrong} == {"stored", "fresh"}
    tallies.rebuild(session)
    assert tallies.differences(session) == []
    assert digest() == before


def test_the_cases_map_counts_from_the_tallies(client, login, session):
    """The cases map's total is the same whichever way it is counted, and shown."""
    login("county_staff")
    county = areas(session)["county"]
    cf = default_period()
    assert mq.heat_plan(session, county, mq.lattice_for(county.bounds, 500.0), cf, COUNTY_SCOPE)
    total = same_count(session, county, cf)
    assert total > 0
    r = client.get("/maps/frame?map=cases&area=" + COUNTY)
    assert r.status_code == 200 and f"{total:,}" in r.get_data(as_text=True)
