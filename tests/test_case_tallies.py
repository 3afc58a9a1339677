"""The case tallies: kept equal to the cases by every writer, and read only where exact.

Two properties, on the demo county (3,000 synthetic cases) and on cases added by every
kind of write: the stored tallies equal a fresh ``GROUP BY`` over the cases with each
figure's own SQL (``stats.tallies.fresh_sql``), and the statistics read from the
tallies equal, row for row and figure for figure, the same statistics read from the
cases alone (``figure_rows(..., raw=True)``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from tests.tallies_fixtures import new_case, walk_workflow
from webapp.auth.permissions import case_scope_sql
from webapp.cases import queries as cq
from webapp.cases.bulk import bulk_insert_cases
from webapp.demo import synthetic
from webapp.grid.models import AreaLevel
from webapp.grid.queries import get_area
from webapp.stats import figures as F
from webapp.stats import tallies
from webapp.stats.queries import (
    COMPOSED,
    LOCAL_TZ,
    TALLIED,
    Filters,
    Grouping,
    Period,
    StatsQuery,
    build_tally_sql,
    figure_rows,
    month_starts,
    tally_plan,
    whole_months,
)

COUNTY = "410726"


def today() -> date:
    return datetime.now(LOCAL_TZ).date()


def assert_tallies_match(session) -> None:
    session.flush()
    assert tallies.differences(session) == []


def same_rows(session, q: StatsQuery, tallied: bool | None = True) -> list[dict]:
    """figure_rows of ``q`` from the tallies equal those from the cases; return them.

    ``tallied``: whether the tallies must (True) or must not (False) answer ``q``.
    """
    now = datetime.now(UTC)
    probe = (
        q
        if q.period.as_of is not None
        else StatsQuery(
            q.area,
            Period(q.period.start, q.period.end, now),
            q.grouping,
            q.filters,
            q.scope,
            q.backlog_years,
            q.only,
        )
    )
    if tallied is not None:
        assert (tally_plan(session, probe, now) is not None) is tallied
    raw = figure_rows(session, q, raw=True)
    fast = figure_rows(session, q)
    assert len(fast) == len(raw) > 0
    for r, f in zip(raw, fast, strict=True):
        assert f == r, next((k, r[k], f[k]) for k in r if r[k] != f[k])
    return fast


@pytest.fixture
def grids(session) -> list[str]:
    return (
        session.execute(
            text(
                "SELECT code FROM areas WHERE level = 'grid' AND code LIKE :p ORDER BY code LIMIT 3"
            ),
            {"p": COUNTY + "%"},
        )
        .scalars()
        .all()
    )


def test_every_count_figure_has_a_tally_or_a_correction():
    for f in F.COUNTS:
        assert f.key in TALLIED or f.key in COMPOSED or f.basis == "event", f.key


@pytest.mark.parametrize(
    "start, stop, months",
    [
        (date(2025, 1, 1), date(2026, 1, 1), (date(2025, 1, 1), date(2026, 1, 1))),
        (date(2025, 1, 15), date(2025, 3, 10), (date(2025, 2, 1), date(2025, 3, 1))),
        (date(2025, 1, 15), date(2025, 2, 10), (date(2025, 2, 10), date(2025, 2, 10))),
        (date(2024, 12, 31), date(2025, 2, 1), (date(2025, 1, 1), date(2025, 2, 1))),
    ],
    ids=["year", "ragged", "none", "across-years"],
)
def test_whole_months(start, stop, months):
    assert whole_months(start, stop) == months


@pytest.mark.parametrize(
    "start, stop, firsts",
    [
        (date(2025, 1, 1), date(2025, 2, 1), [date(2025, 1, 1)]),
        (
            date(2024, 11, 1),
            date(2025, 2, 1),
            [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1)],
        ),
        (date(2025, 2, 10), date(2025, 2, 10), []),
    ],
    ids=["one", "across-years", "none"],
)
def test_month_starts(start, stop, firsts):
    assert month_starts(start, stop) == firsts
    assert len(month_starts(date(2020, 1, 1), date(2025, 1, 1))) == 60


def test_the_typical_request_reads_its_months_and_categories_by_key(session, make_user):
    """Last month, three categories, by township, as of now: exact, and every whole month
    given as a first day (the key of case_category_tallies positions on month and category)."""
    t = today()
    first = date(t.year, t.month, 1)
    last = first - timedelta(days=1)
    period = Period(date(last.year, last.month, 1), last, datetime.now(UTC) + timedelta(minutes=5))
    cats = Filters(category_ids=_category_ids(session, 3))
    user = make_user("county_staff", unit=UNIT)
    q = StatsQuery(
        get_area(session, COUNTY),
        period,
        Grouping("area", AreaLevel.TOWNSHIP),
        cats,
        case_scope_sql(user),
    )
    rows = same_rows(session, q)
    assert sum(r["cases"] for r in rows) > 0
    plan = tally_plan(session, q, datetime.now(UTC))
    sql, params = build_tally_sql(q, plan)
    assert params["m_months"] == [period.start]
    assert params["l_months"] == [date(period.start.year - 1, period.start.month, 1)]
    assert "c.month >=" not in sql and "c.month = ANY(:m_months)" in sql


def test_the_deadlines_ahead_of_chosen_categories_have_their_own_covering_index(session):
    """ix_cases_due_unconcluded_category answers the deadlines ahead of a few categories
    (the ``ahead`` part of a category filter) alone: both conditions in its key, every
    column read in it (an index-only scan). Which index the planner picks depends on
    the data (at a million cases this one: 5,000 entries read instead of 25,000); the
    other indexes on the deadline are left out here so the plan shows this one's fit."""
    session.execute(text("DROP INDEX ix_cases_due_unconcluded"))  # rolled back with the test
    session.execute(text("DROP INDEX ix_cases_due_at"))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_bitmapscan = off"))
    plan = "\n".join(
        session.execute(
            text(
                "EXPLAIN SELECT c.township_code, count(*) FROM cases c"
                " WHERE c.county_code = :area AND c.category_id = ANY(:cats)"
                " AND (c.accused_unit IS NULL OR c.accused_unit <> 'x')"
                " AND c.reported_at < now() AND c.due_at >= now()"
                " AND c.concluded_at IS NULL AND c.due_at IS NOT NULL GROUP BY 1"
            ),
            {"area": COUNTY, "cats": list(_category_ids(session, 3))},
        ).scalars()
    )
    assert "Index Only Scan using ix_cases_due_unconcluded_category" in plan, plan
    key = r"Index Cond: \(\(category_id = ANY .*\) AND \(due_at >= now\(\)\)\)"
    assert re.search(key, plan), plan


def test_the_demo_load_is_tallied(session):
    """The bulk loader defers the triggers and tallies its cases in one statement."""
    assert (
        session.execute(text("SELECT sum(cases) FROM case_tallies")).scalar()
        == session.execute(text("SELECT count(*) FROM cases")).scalar()
    )
    assert_tallies_match(session)


def test_every_kind_of_write_keeps_the_tallies(session, make_user, grids):
    staff = make_user("county_staff")
    rules = cq.rules_for(COUNTY)
    # insert_case (desk registration and field reports store through it)
    first = new_case(session, grids[0], people_count=6)
    other = new_case(session, grids[1], channel="letter")
    assert_tallies_match(session)
    # the workflow, action by action, up to a resolution with a follow-up
    walk_workflow(session, staff, [first], rules, after_each=lambda: assert_tallies_match(session))
    # a repeat pointing at the resolved first petition: that case is no longer resolved once
    before = session.execute(
        text(
            "SELECT first_once FROM case_tallies t JOIN cases c USING (grid_code) "
            "WHERE c.id = :i AND t.month = date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai')"
        ),
        {"i": first},
    ).scalar()
    version = session.execute(
        text("SELECT version FROM cases WHERE id = :i"), {"i": other}
    ).scalar()
    cq.link_repeat(session, staff, other, version, first)
    assert_tallies_match(session)
    after = session.execute(
        text(
            "SELECT first_once FROM case_tallies t JOIN cases c USING (grid_code) "
            "WHERE c.id = :i AND t.month = date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai')"
        ),
        {"i": first},
    ).scalar()
    assert after == before - 1
    # the repeat link undone again, and a case moved to another grid and month
    session.execute(
        text("UPDATE cases SET repeat_of_id = NULL, is_first = true WHERE id = :i"), {"i": other}
    )
    session.execute(
        text(
            "UPDATE cases SET grid_code = :g, reported_at = reported_at - interval '40 days' WHERE id = :i"
        ),
        {"g": grids[2], "i": other},
    )
    assert_tallies_match(session)
    # many rows in one statement (escalations, closures), and a delete
    session.execute(
        text(
            "UPDATE cases SET beijing_abnormal_at = reported_at + interval '5 days' "
            "WHERE id % 29 = 0 AND reported_at < now() - interval '5 days'"
        )
    )
    session.execute(
        text(
            "UPDATE cases SET status = 'closed', resolved_at = concluded_at "
            "WHERE id % 7 = 0 AND status = 'concluded'"
        )
    )
    assert_tallies_match(session)
    gone = new_case(session, grids[2], people_count=9)
    assert_tallies_match(session)
    session.execute(text("DELETE FROM cases WHERE id = :i"), {"i": gone})
    assert_tallies_match(session)


def _copy_cases(session, where: str, reported_at: str = "c.reported_at", copies: int = 2) -> int:
    """Insert, in ONE statement, a copy of each case matching ``where`` (twice each by
    default, so a statement brings several rows of one tally key); return how many rows
    it inserted."""
    columns = [
        c
        for c in session.execute(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'cases' "
                "AND is_generated = 'NEVER' ORDER BY ordinal_position"
            )
        ).scalars()
        if c not in ("id", "number", "client_id", "reported_at")
    ]
    listed = ", ".join(columns)
    return session.execute(
        text(
            f"""
            INSERT INTO cases (id, reported_at, {listed})
            SELECT new_id, {reported_at}, {listed}
            FROM (
                SELECT nextval(pg_get_serial_sequence('cases', 'id')) AS new_id, c.*
                FROM cases c CROSS JOIN generate_series(1, :copies) AS copy(k)
                WHERE {where}
            ) c
            """
        ),
        {"copies": copies},
    ).rowcount


def test_an_insert_of_many_cases_in_one_statement_keeps_every_tally(session):
    """The insert trigger's one-statement path (q01): no repeat among the rows.

    Rows of one key in one statement (grouped before the upsert), closed and resolved
    first petitions, follow-ups, visits of several people, new months and cells, and a
    report time ahead of the clock: every tally equals the cases afterwards.
    """
    statuses = (
        session.execute(
            text("SELECT DISTINCT status FROM cases WHERE id % 23 = 0 AND repeat_of_id IS NULL")
        )
        .scalars()
        .all()
    )
    assert {"closed", "resolved", "in_progress"} <= set(statuses)
    inserted = _copy_cases(
        session,
        "c.id % 23 = 0 AND c.repeat_of_id IS NULL",
        # some rows a month on (new tally rows), one ahead of the clock
        "CASE WHEN c.id % 3 = 0 THEN c.reported_at + interval '31 days' ELSE c.reported_at END",
    )
    assert inserted > 100
    assert_tallies_match(session)
    # a single report-like row ahead of the clock: the grid tally's ahead_at keeps it
    _copy_cases(
        session,
        "c.id = (SELECT min(id) FROM cases WHERE repeat_of_id IS NULL)",
        "now() + interval '2 days'",
    )
    assert_tallies_match(session)
    assert (
        session.execute(text("SELECT count(*) FROM case_tallies WHERE ahead_at > now()")).scalar()
        >= 1
    )


def test_an_insert_of_one_case_keeps_every_tally(session):
    """The insert trigger's one-row path (u03, every field report): the row's own facts,
    no aggregation. One statement per case, of every status (closed and resolved first
    petitions with and without repeats, follow-ups, visits, not accepted), into existing
    and new months and heat cells, and one ahead of the clock."""
    source = session.execute(
        text("SELECT prosrc FROM pg_proc WHERE proname = 'case_tallies_after_insert'")
    ).scalar_one()
    assert "(u03)" in source  # the path under test is the live one
    picked = (
        session.execute(
            text(
                """
                SELECT DISTINCT ON (status, channel = 'visit', satisfaction IS NULL,
                                    EXISTS (SELECT 1 FROM cases r WHERE r.repeat_of_id = c.id))
                    id
                FROM cases c WHERE repeat_of_id IS NULL
                ORDER BY status, channel = 'visit', satisfaction IS NULL,
                         EXISTS (SELECT 1 FROM cases r WHERE r.repeat_of_id = c.id), id
                """
            )
        )
        .scalars()
        .all()
    )
    assert len(picked) > 15
    for i, case_id in enumerate(picked):
        when = "c.reported_at + interval '400 days'" if i % 3 == 0 else "c.reported_at"
        assert _copy_cases(session, f"c.id = {case_id}", when, copies=1) == 1
    assert _copy_cases(session, f"c.id = {picked[0]}", "now() + interval '3 days'", copies=1) == 1
    assert_tallies_match(session)
    assert (
        session.execute(text("SELECT count(*) FROM case_tallies WHERE ahead_at > now()")).scalar()
        >= 1
    )


def test_an_insert_with_repeats_takes_the_general_path_and_keeps_every_tally(session):
    """Rows with a repeat link among them change the first petitions they point at."""
    assert (
        session.execute(
            text(
                "SELECT count(*) FROM cases c JOIN cases f ON f.id = c.repeat_of_id "
                "WHERE c.id % 5 = 0 AND f.status IN ('closed', 'resolved')"
            )
        ).scalar()
        > 0
    )
    inserted = _copy_cases(
        session, "c.id % 5 = 0 AND (c.repeat_of_id IS NOT NULL OR c.id % 10 = 0)"
    )
    assert inserted > 100
    assert_tallies_match(session)


def test_a_bulk_load_keeps_the_tallies(session):
    rows, _ = synthetic.generate(session, 160, seed=11)
    result = bulk_insert_cases(session, rows)
    assert result.inserted > 100 and "tallies" in result.timings
    assert (
        session.execute(
            text(
                "SELECT count(*) FROM cases WHERE id BETWEEN :lo AND :hi AND repeat_of_id IS NOT NULL"
            ),
            {"lo": result.first_id, "hi": result.last_id},
        ).scalar()
        > 0
    )
    assert_tallies_match(session)
    # the setting that defers the triggers is off again after the load
    assert (
        session.execute(
            text("SELECT current_setting('gridcase.defer_case_tallies', true)")
        ).scalar()
        == "off"
    )


def test_rebuild_gives_the_same_tallies(session):
    before = session.execute(
        text("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM case_tallies t")
    ).scalar()
    session.execute(
        text(
            "UPDATE case_tallies SET cases = cases + 1 WHERE month = (SELECT max(month) FROM case_tallies)"
        )
    )
    assert tallies.differences(session)
    tallies.rebuild(session)
    assert tallies.differences(session) == []
    assert (
        session.execute(
            text("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM case_tallies t")
        ).scalar()
        == before
    )


# The periods' names; each test resolves its period when it runs (not when pytest
# collects it): a run crossing midnight in Shanghai would otherwise ask for "this month
# so far" ending yesterday, a ragged period the tallies rightly do not answer.
PERIOD_NAMES = ("12-months", "365-days", "13-months", "mtd", "ragged", "february", "long")


def _period(name: str) -> Period:
    return _periods()[PERIOD_NAMES.index(name)]


def _periods() -> list[Period]:
    t = today()
    first = date(t.year, t.month, 1)
    year_ago = date(first.year - 1, first.month, 1)
    return [
        Period(year_ago, first - timedelta(days=1)),  # the last 12 whole months
        Period(t - timedelta(days=364), t),  # the maps' old default: 365 ragged days
        Period(year_ago, t),  # 12 whole months and this month so far
        Period(first, t),  # this month so far
        Period(date(t.year - 2, 2, 10), date(t.year - 1, 3, 20)),  # ragged, across years
        Period(date(t.year - 1, 2, 1), date(t.year - 1, 2, 28)),  # one whole February
        Period(date(t.year - 3, 1, 1), date(t.year, 12, 31)),  # to the end of this year
    ]


@pytest.mark.parametrize("period", PERIOD_NAMES)
@pytest.mark.parametrize(
    "grouping",
    [
        Grouping("area", AreaLevel.TOWNSHIP),
        Grouping("area", AreaLevel.VILLAGE),
        Grouping("area", AreaLevel.GRID),
        Grouping("month"),
    ],
    ids=["townships", "villages", "grids", "months"],
)
def test_the_tallies_give_the_cases_figures(session, period, grouping):
    same_rows(session, StatsQuery(get_area(session, COUNTY), _period(period), grouping))


def test_the_tallies_give_the_cases_figures_after_writes(session, make_user, grids):
    """Writes of this transaction (new, resolved, repeated, moved, future deadlines) count too."""
    staff = make_user("county_staff")
    rules = cq.rules_for(COUNTY)
    for i, grid in enumerate(grids):
        case_id = new_case(session, grid, people_count=1 + 4 * i)
        version = session.execute(
            text("SELECT version FROM cases WHERE id = :i"), {"i": case_id}
        ).scalar()
        cq.apply_action(session, staff, case_id, version, "accept", {}, rules)
    old = session.execute(
        text("SELECT id FROM cases WHERE status = 'closed' AND is_first ORDER BY id LIMIT 1")
    ).scalar()
    repeat = new_case(session, grids[0])
    version = session.execute(
        text("SELECT version FROM cases WHERE id = :i"), {"i": repeat}
    ).scalar()
    cq.link_repeat(session, staff, repeat, version, old)
    rows, _ = synthetic.generate(session, 80, seed=5)
    bulk_insert_cases(session, rows)
    area = get_area(session, COUNTY)
    for period in _periods()[:4]:
        for level in (AreaLevel.VILLAGE, AreaLevel.GRID):
            same_rows(session, StatsQuery(area, period, Grouping("area", level), backlog_years=1))


@pytest.mark.parametrize(
    "role, area, tallied",
    [
        ("county_staff", None, True),
        ("admin", None, True),
        ("planner", "township", True),
        ("township_leader", None, True),
        # an accused body's cases are hidden: the tallies less those cases
        ("township_leader", "unit", True),
        ("county_staff", "unit", True),
        ("leader_in_charge", None, False),
        ("grid_worker", None, False),
    ],
)
def test_only_area_scopes_read_the_tallies(session, make_user, demo_areas, role, area, tallied):
    fields = {}
    code = None
    if area == "township":
        code = demo_areas["township_leader"]
    if area == "unit":
        fields["unit"] = "城关镇人民政府"
    user = make_user(role, code, **fields)
    root = get_area(session, user.area_code if len(user.area_code) <= 12 else user.area_code[:12])
    t = today()
    period = Period(date(t.year - 1, 1, 1), date(t.year - 1, 12, 31))
    level = {6: AreaLevel.TOWNSHIP, 9: AreaLevel.VILLAGE}.get(len(root.code), AreaLevel.GRID)
    same_rows(
        session,
        StatsQuery(root, period, Grouping("area", level), scope=case_scope_sql(user)),
        tallied,
    )


def test_channels_a_past_as_of_and_short_periods_read_the_cases(session):
    area = get_area(session, COUNTY)
    t = today()
    year = Period(date(t.year - 1, 1, 1), date(t.year - 1, 12, 31))
    townships = Grouping("area", AreaLevel.TOWNSHIP)
    same_rows(session, StatsQuery(area, year, townships, Filters(channels=("visit",))), False)
    cats = Filters(category_ids=(1, 2))
    same_rows(session, StatsQuery(area, year, townships, Filters((1,), ("visit",))), False)
    # the tallies per category have no grids
    same_rows(session, StatsQuery(area, year, Grouping("area", AreaLevel.GRID), cats), False)
    past = Period(year.start, year.end, datetime(t.year - 1, 12, 1, tzinfo=UTC))
    same_rows(session, StatsQuery(area, past, townships), False)
    same_rows(session, StatsQuery(area, Period(t - timedelta(days=9), t), townships), False)
    # an as_of in the future (the API's as_of=today is the end of today) may use them
    ahead = Period(year.start, year.end, datetime.now(UTC) + timedelta(days=1))
    same_rows(session, StatsQuery(area, ahead, townships), True)


def test_a_time_ahead_of_the_clock_sends_the_figures_to_the_cases(session, grids):
    """A stored time after as_of would be counted by the tallies: until then, the cases answer."""
    area = get_area(session, COUNTY)
    t = today()
    q = StatsQuery(area, Period(date(t.year - 1, 1, 1), t), Grouping("area", AreaLevel.TOWNSHIP))
    same_rows(session, q, True)
    later = datetime.now(UTC) + timedelta(hours=30)
    new_case(session, grids[0], reported_at=later)
    session.flush()
    assert session.execute(text("SELECT max(ahead_at) FROM case_tallies")).scalar() == later
    rows = same_rows(session, q, False)
    ahead = Period(q.period.start, q.period.end, later + timedelta(seconds=1))
    same_rows(session, StatsQuery(area, ahead, q.grouping), True)
    assert sum(r["cases"] for r in rows) > 0
    assert_tallies_match(session)


@pytest.mark.parametrize("level", [AreaLevel.GRID, AreaLevel.VILLAGE])
def test_hot_spot_counts_from_the_tallies_equal_the_cases(session, level):
    from webapp.hotspots.queries import CaseFilter, _tallied_counts, area_counts
    from webapp.stats.queries import local_midnight

    t = today()
    start = date(t.year - 1, t.month, 1)
    flt = CaseFilter(local_midnight(start), local_midnight(t + timedelta(days=1)))
    scope = ("c.county_code = :scope_county", {"scope_county": COUNTY})
    assert _tallied_counts(session, level, COUNTY, flt, scope) is not None
    fast = area_counts(session, level, COUNTY, flt, scope)
    # the same scope in a form the tallies do not recognise: counted from the cases
    raw = area_counts(session, level, COUNTY, flt, ("c.county_code = :c", {"c": COUNTY}))
    assert fast[0] == raw[0]
    assert (fast[1] == raw[1]).all() and fast[1].sum() > 0
    assert ((fast[2] == raw[2]) | (np.isnan(fast[2]) & np.isnan(raw[2]))).all()


# -- a unit's scope (回避) and category filters -------------------------------------------

UNIT = "城关镇人民政府"


def accuse(session, unit: str, every: int) -> int:
    """Make every ``every``-th case of the demo county accuse ``unit``; return how many."""
    return session.execute(
        text("UPDATE cases SET accused_unit = :u WHERE id % :n = 0 AND county_code = :c"),
        {"u": unit, "n": every, "c": COUNTY},
    ).rowcount


@pytest.fixture
def unit_staff(session, make_user):
    """County staff of a unit that some demo cases accuse (and others accuse another unit)."""
    assert accuse(session, UNIT, 13) > 100
    accuse(session, "县公安局", 17)
    assert_tallies_match(session)
    return make_user("county_staff", unit=UNIT)


def _category_ids(session, n: int) -> tuple[int, ...]:
    """The ``n`` categories with the most demo cases (so each filter matches cases)."""
    return tuple(
        session.execute(
            text("SELECT category_id FROM cases GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT :n"),
            {"n": n},
        ).scalars()
    )


@pytest.mark.parametrize("period", ["12-months", "365-days", "13-months", "february"])
@pytest.mark.parametrize(
    "grouping",
    [
        Grouping("area", AreaLevel.TOWNSHIP),
        Grouping("area", AreaLevel.VILLAGE),
        Grouping("area", AreaLevel.GRID),
        Grouping("month"),
    ],
    ids=["townships", "villages", "grids", "months"],
)
def test_a_units_scope_reads_the_tallies_less_its_cases(session, unit_staff, period, grouping):
    scope = case_scope_sql(unit_staff)
    q = StatsQuery(get_area(session, COUNTY), _period(period), grouping, scope=scope)
    rows = same_rows(session, q)
    # the hidden cases are really left out
    everyone = figure_rows(session, replace_scope(q, case_scope_sql_without_unit(unit_staff)))
    assert sum(r["cases"] for r in rows) < sum(r["cases"] for r in everyone)


def replace_scope(q: StatsQuery, scope) -> StatsQuery:
    return StatsQuery(q.area, q.period, q.grouping, q.filters, scope, q.backlog_years, q.only)


def case_scope_sql_without_unit(user):
    return ("c.county_code = :scope_county", {"scope_county": user.county_code})


@pytest.mark.parametrize("unit", [False, True], ids=["area", "unit"])
@pytest.mark.parametrize("period", ["12-months", "365-days", "february"])
@pytest.mark.parametrize(
    "grouping",
    [
        Grouping("area", AreaLevel.TOWNSHIP),
        Grouping("area", AreaLevel.VILLAGE),
        Grouping("month"),
        Grouping("category"),
    ],
    ids=["townships", "villages", "months", "categories"],
)
def test_category_filters_read_the_category_tallies(session, make_user, period, grouping, unit):
    period = _period(period)
    if unit:
        accuse(session, UNIT, 11)
    user = make_user("county_staff", **({"unit": UNIT} if unit else {}))
    scope = case_scope_sql(user)
    area = get_area(session, COUNTY)
    for cats in (_category_ids(session, 3), _category_ids(session, 1)):
        rows = same_rows(
            session, StatsQuery(area, period, grouping, Filters(category_ids=cats), scope)
        )
        assert sum(r["cases"] for r in rows) > 0
    if grouping.by == "category":  # every category: the rows of the categories page
        same_rows(session, StatsQuery(area, period, grouping, scope=scope))


def test_a_township_with_a_unit_and_categories(session, make_user, demo_areas):
    accuse(session, UNIT, 7)
    user = make_user("township_leader", unit=UNIT)
    area = get_area(session, user.area_code)
    t = today()
    period = Period(date(t.year - 1, 1, 1), date(t.year - 1, 12, 31))
    cats = Filters(category_ids=_category_ids(session, 2))
    for grouping in (Grouping("area", AreaLevel.VILLAGE), Grouping("month"), Grouping("category")):
        same_rows(session, StatsQuery(area, period, grouping, cats, case_scope_sql(user)))


def test_every_kind_of_write_keeps_both_paths_equal_for_a_unit_and_categories(
    session, make_user, unit_staff, grids
):
    """After each kind of write the tallies (both tables) equal the cases, and so do the paths."""
    rules = cq.rules_for(COUNTY)
    staff = make_user("county_staff")  # acts on the cases the unit's staff may not see
    area = get_area(session, COUNTY)
    t = today()
    first = date(t.year, t.month, 1)
    cats = _category_ids(session, 3)
    queries = [
        StatsQuery(
            area,
            Period(date(first.year - 1, first.month, 1), t),
            g,
            f,
            case_scope_sql(unit_staff),
            backlog_years=1,
        )
        for g in (Grouping("area", AreaLevel.TOWNSHIP), Grouping("area", AreaLevel.VILLAGE))
        for f in (Filters(), Filters(category_ids=cats))
    ]

    def check() -> None:
        assert_tallies_match(session)
        for q in queries:
            same_rows(session, q)

    # a field report / registration accusing the unit, another in a filtered category
    accused = new_case(session, grids[0], category_id=cats[0], people_count=5)
    session.execute(
        text("UPDATE cases SET accused_unit = :u WHERE id = :i"), {"u": UNIT, "i": accused}
    )
    plain = new_case(session, grids[1], category_id=cats[1], channel="letter")
    check()
    # the workflow on both
    walk_workflow(session, staff, [accused, plain], rules)
    check()
    # reclassified, no longer accusing the unit, accusing it again, moved
    session.execute(
        text("UPDATE cases SET category_id = :c WHERE id = :i"), {"c": cats[2], "i": plain}
    )
    session.execute(text("UPDATE cases SET accused_unit = NULL WHERE id = :i"), {"i": accused})
    check()
    session.execute(
        text("UPDATE cases SET accused_unit = :u, category_id = :c WHERE id = :i"),
        {"u": UNIT, "c": cats[1], "i": plain},
    )
    session.execute(
        text(
            "UPDATE cases SET grid_code = :g, reported_at = reported_at - interval '40 days' "
            "WHERE id = :i"
        ),
        {"g": grids[2], "i": accused},
    )
    check()
    # a repeat of an accused first petition, many rows at once, a delete, a bulk load
    repeat = new_case(session, grids[2], category_id=cats[0])
    version = session.execute(
        text("SELECT version FROM cases WHERE id = :i"), {"i": repeat}
    ).scalar()
    cq.link_repeat(session, staff, repeat, version, plain)
    session.execute(text("UPDATE cases SET category_id = :c WHERE id % 31 = 0"), {"c": cats[0]})
    check()
    gone = new_case(session, grids[1], category_id=cats[2])
    session.execute(
        text("UPDATE cases SET accused_unit = :u WHERE id = :i"), {"u": UNIT, "i": gone}
    )
    check()
    session.execute(text("DELETE FROM cases WHERE id = :i"), {"i": gone})
    rows, _ = synthetic.generate(session, 120, seed=17)
    bulk_insert_cases(session, rows)
    check()


def test_rebuild_keeps_the_category_tallies(session):
    before = session.execute(
        text("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM case_category_tallies t")
    ).scalar()
    assert before is not None
    session.execute(
        text(
            "DELETE FROM case_category_tallies WHERE month = (SELECT max(month) FROM case_category_tallies)"
        )
    )
    assert any(d["tally"] == "case_category_tallies" for d in tallies.differences(session))
    tallies.rebuild(session)
    assert tallies.differences(session) == []
    assert (
        session.execute(
            text(
                "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM case_category_tallies t"
            )
        ).scalar()
        == before
    )


def test_the_planner_setting_is_put_back_after_the_statement(session):
    session.execute(text("SET LOCAL join_collapse_limit = 6"))
    t = today()
    q = StatsQuery(
        get_area(session, COUNTY),
        Period(date(t.year - 1, 1, 1), date(t.year - 1, 12, 31)),
        Grouping("area", AreaLevel.TOWNSHIP),
    )
    assert figure_rows(session, q) and figure_rows(session, q, raw=True)
    assert session.execute(text("SHOW join_collapse_limit")).scalar() == "6"
