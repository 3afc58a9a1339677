"""The demo county in PostGIS: its counts, exact nesting, and the cases in it."""

from __future__ import annotations

import pytest
from sqlalchemy import text


def test_counts(session):
    counts = dict(
        session.execute(
            text("SELECT level, count(*) FROM areas WHERE county_code = '410726' GROUP BY level")
        ).all()
    )
    assert counts["county"] == 1
    assert counts["township"] == 12
    assert counts["village"] == 342
    assert 900 <= counts["grid"] <= 1100  # about three per village


@pytest.mark.parametrize(
    ("child", "parent"), [("township", "county"), ("village", "township"), ("grid", "village")]
)
def test_children_tile_their_parent_exactly(session, child, parent):
    """Union of the children equals the parent; siblings do not overlap; all valid."""
    rows = session.execute(
        text(
            """
            SELECT p.code,
                   ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))::geography) AS symdiff_m2,
                   sum(c.area_m2) - p.area_m2 AS overlap_m2,
                   bool_and(ST_IsValid(c.geom)) AS valid,
                   bool_and(c.code LIKE p.code || '%') AS prefixed
            FROM areas p JOIN areas c ON c.parent_id = p.id
            WHERE p.level = :parent AND c.level = :child AND p.county_code = '410726'
            GROUP BY p.code, p.geom, p.area_m2
            """
        ),
        {"parent": parent, "child": child},
    ).all()
    assert rows
    for code, symdiff, overlap, valid, prefixed in rows:
        assert valid and prefixed, code
        assert symdiff < 1e-3, (code, symdiff)  # under a thousandth of a square metre
        assert abs(overlap) < 1e-2, (code, overlap)


def test_no_sibling_overlaps(session):
    n = session.execute(
        text(
            """
            SELECT count(*) FROM areas a JOIN areas b
              ON a.parent_id = b.parent_id AND a.id < b.id AND a.geom && b.geom
            WHERE a.county_code = '410726' AND ST_Relate(a.geom, b.geom, '2********')
              AND ST_Area(ST_Intersection(a.geom, b.geom)::geography) > 1e-3
            """
        )
    ).scalar_one()
    assert n == 0


def test_every_case_sits_in_its_grid(session):
    row = session.execute(
        text(
            """
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE NOT ST_Covers(g.geom, c.location)) AS misplaced,
                   count(*) FILTER (WHERE c.village_code <> g.village_code
                                    OR c.township_code <> g.township_code) AS wrong_codes
            FROM cases c JOIN areas g ON g.id = c.grid_id
            WHERE c.county_code = '410726'
            """
        )
    ).one()
    assert row.n > 0 and row.misplaced == 0 and row.wrong_codes == 0


def test_township_counts_add_up_to_the_county(session):
    per_township = session.execute(
        text(
            "SELECT sum(n) FROM (SELECT count(*) n FROM cases WHERE county_code = '410726' GROUP BY township_code) t"
        )
    ).scalar_one()
    assert (
        per_township
        == session.execute(
            text("SELECT count(*) FROM cases WHERE county_code = '410726'")
        ).scalar_one()
    )


def test_demo_cases_look_real(session):
    """Mostly resolved, with backlog, repeats, collective petitions, quiet grids and hot spots."""
    r = session.execute(
        text(
            """
            SELECT count(*) AS n,
                   avg((status IN ('resolved','closed'))::int) AS resolved,
                   count(*) FILTER (WHERE NOT is_first AND repeat_of_id IS NOT NULL) AS repeats,
                   count(*) FILTER (WHERE people_count >= 5) AS collective,
                   count(*) FILTER (WHERE reported_at < now() - interval '3 years'
                                    AND status NOT IN ('resolved','closed','not_accepted')) AS backlog,
                   count(DISTINCT status) AS statuses,
                   min(reported_at) < now() - interval '1000 days' AS spans_years
            FROM cases WHERE county_code = '410726'
            """
        )
    ).one()
    assert 0.80 < r.resolved < 0.99
    assert r.repeats > 0 and r.collective > 0 and r.backlog > 0
    assert r.statuses >= 5 and r.spans_years
    quiet = session.execute(
        text(
            "SELECT count(*) FROM areas g WHERE g.level = 'grid' AND g.county_code = '410726' "
            "AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.grid_id = g.id)"
        )
    ).scalar_one()
    assert quiet > 0
    # The busiest grid has far more cases than the average grid (a hot spot).
    top, mean = session.execute(
        text("SELECT max(n), avg(n) FROM (SELECT count(*) n FROM cases GROUP BY grid_id) t")
    ).one()
    assert top > 10 * mean
    # Every case with its events: the history starts with registration.
    first = session.execute(
        text(
            "SELECT count(*) FROM cases c WHERE NOT EXISTS "
            "(SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.action = 'register')"
        )
    ).scalar_one()
    assert first == 0


def test_demo_cases_led_to_a_few_sanwu_events(session):
    """Some demo cases led to 三无 events, each after the case was raised and never later than now."""
    r = session.execute(
        text(
            """
            SELECT count(beijing_abnormal_at) AS beijing, count(province_collective_at) AS province,
                   count(*) FILTER (WHERE province_collective_at IS NOT NULL AND people_count < 5) AS small,
                   count(*) FILTER (WHERE beijing_abnormal_at IS NOT NULL AND is_first AND NOT skip_level)
                       AS first_in_beijing,
                   count(*) FILTER (WHERE least(beijing_abnormal_at, province_collective_at,
                                                extreme_incident_at) < reported_at
                                    OR greatest(beijing_abnormal_at, province_collective_at,
                                                extreme_incident_at) > now()) AS misdated,
                   count(*) AS n
            FROM cases WHERE county_code = '410726'
            """
        )
    ).one()
    assert 0 < r.beijing < r.n * 0.01 and 0 < r.province < r.n * 0.01
    assert r.small == 0 and r.first_in_beijing == 0 and r.misdated == 0


def test_demo_load_is_idempotent_for_boundaries(app_ctx, session):
    from webapp.demo.loader import load_boundaries

    reports = load_boundaries(session)
    assert all(r.inserted == 0 and r.updated == 0 for r in reports)


def test_demo_load_command_loads_cases_and_one_account_per_role(
    app, connection, session, tmp_path, monkeypatch
):
    """`flask demo load` as `make run` calls it: cases once, an account per role, passwords kept private."""
    import stat

    from webapp.auth import accounts
    from webapp.auth.roles import Role
    from webapp.demo.accounts import DEMO_ACCOUNTS

    monkeypatch.setitem(app.config, "VAR_DIR", str(tmp_path))
    count = "SELECT count(*) FROM cases"
    before = connection.execute(text(count)).scalar_one()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load", "--cases", "300", "--seed", "7"])
    assert result.exit_code == 0, result.output
    added = connection.execute(text(count)).scalar_one() - before
    assert added == 300 and "演示案件：300 个已入库" in result.output
    # Demo cases are placed by PostGIS and carry where they were sent.
    assigned = connection.execute(
        text(
            "SELECT count(*) FILTER (WHERE assigned_unit IS NULL), count(*) FROM cases "
            "WHERE id > (SELECT max(id) - 300 FROM cases) AND status NOT IN ('registered','accepted','not_accepted')"
        )
    ).one()
    assert assigned[1] > 0 and assigned[0] == 0

    path = tmp_path / "demo-accounts.txt"
    assert str(path) in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    assert [u for u, _, _ in lines] == [a.username for a in DEMO_ACCOUNTS]
    assert {r.label for r in Role} == {label for _, _, label in lines}
    passwords = [p for _, p, _ in lines]
    assert len(set(passwords)) == len(passwords) and min(map(len, passwords)) >= 12
    for username, password, _ in lines:
        user = accounts.get_user(session, username)
        assert accounts.check_password(user, password)
        assert not accounts.check_password(user, password + "x")

    # `make run` again: the cases are there, so none are added and no password changes.
    result = runner.invoke(args=["demo", "load", "--cases", "300", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "不再加载演示案件" in result.output
    assert connection.execute(text(count)).scalar_one() == before + 300
    assert [
        line.split("\t")[1] for line in path.read_text(encoding="utf-8").splitlines()
    ] == passwords


def test_a_big_demo_load_writes_the_history_of_its_open_cases(session):
    """Above FULL_HISTORY_MAX cases the default history is that of the open cases, complete."""
    from webapp.cases.bulk import bulk_insert_cases
    from webapp.demo import loader, synthetic

    assert loader.history_for(loader.FULL_HISTORY_MAX, "auto") == "all"
    assert loader.history_for(loader.FULL_HISTORY_MAX + 1, "auto") == "open"
    assert loader.history_for(10**6, "all") == "all"
    cols, _ = synthetic.generate(session, 2000, seed=11)
    r = bulk_insert_cases(session, cols)
    written = loader.synthesize_events(session, r.first_id, r.last_id, only_open=True)
    counts = session.execute(
        text(
            """
            SELECT count(*) FILTER (WHERE open AND registered) AS open_with,
                   count(*) FILTER (WHERE open AND NOT registered) AS open_without,
                   count(*) FILTER (WHERE NOT open AND events > 0) AS closed_with,
                   sum(events) AS events
            FROM (SELECT c.status NOT IN ('resolved', 'closed', 'not_accepted') AS open,
                         EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = c.id
                                 AND e.action = 'register') AS registered,
                         (SELECT count(*) FROM case_events e WHERE e.case_id = c.id) AS events
                  FROM cases c WHERE c.id BETWEEN :lo AND :hi) x
            """
        ),
        {"lo": r.first_id, "hi": r.last_id},
    ).one()
    assert counts.open_with > 0 and counts.open_without == 0 and counts.closed_with == 0
    assert counts.events == written


def test_demo_accounts_work_keeps_the_tallies_and_their_trigger(session):
    """The accounts' updates of cases stand the tallies' trigger aside: they touch no tally."""
    from webapp.auth import accounts
    from webapp.auth.roles import Role
    from webapp.demo.accounts import DemoPasswords, create_demo_accounts, demo_areas
    from webapp.stats import tallies

    session.execute(text("DELETE FROM users WHERE username IN ('wanggeyuan', 'baoan')"))
    passwords = DemoPasswords.for_missing(session)
    assert {"wanggeyuan", "baoan"} <= set(passwords.passwords)
    created = create_demo_accounts(session, "410726", passwords)
    assert set(created) == set(passwords.passwords)
    for username, password in created.items():
        assert accounts.check_password(accounts.get_user(session, username), password)
    worked = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE reporter_id IS NOT NULL), "
            "count(*) FILTER (WHERE leader_id IS NOT NULL) FROM cases"
        )
    ).one()
    assert worked[0] > 0 and worked[1] > 0
    session.flush()
    assert tallies.differences(session) == []
    # The trigger is on again for the writes that follow.
    assert (
        session.execute(
            text("SELECT current_setting('gridcase.defer_case_tallies', true)")
        ).scalar()
        == "off"
    )
    # The busiest grid of the county seat, from the tallies, is the one the cases say.
    busiest = session.execute(
        text(
            """
            SELECT g.code FROM areas g LEFT JOIN cases c ON c.grid_id = g.id
            WHERE g.level = 'grid' AND g.township_code = (
                SELECT min(code) FROM areas WHERE level = 'township' AND county_code = '410726')
            GROUP BY g.code ORDER BY count(c.id) DESC, g.code LIMIT 1
            """
        )
    ).scalar_one()
    assert demo_areas(session, "410726")[Role.GRID_WORKER] == busiest
