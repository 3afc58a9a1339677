"""Queries for door-to-door visits: the facts targets are scored on, plans, stops, progress.

Functions take the session first, flush but never commit. Facts are measured in set
based SQL (one statement for all case targets of an area, one for the grids); the
weighting of those facts is :mod:`webapp.visits.targeting` (pure).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from webapp.auth import audit
from webapp.auth.models import User
from webapp.auth.permissions import VISITOR_ROLES, case_scope_sql
from webapp.cases.vocab import FINAL_STATUSES, sql_in
from webapp.cases.workflow import Action, allowed_from
from webapp.grid.models import Area, AreaLevel
from webapp.grid.queries import CASE_CODE_COLUMN, area_features
from webapp.hotspots.queries import CaseFilter, hot_spots
from webapp.roads import queries as roads
from webapp.visits.assignment import Room
from webapp.visits.models import VisitPlan, VisitStop
from webapp.visits.targeting import (
    FACTOR_RULES,
    Candidate,
    Facts,
    Rules,
    Target,
    Weights,
    point_table,
    rule_params,
)

FINAL = sql_in(sorted(FINAL_STATUSES))
# A follow-up (回访) stop: the case workflow allows the follow-up action in its status.
FOLLOW_UP_FROM = allowed_from(Action.FOLLOW_UP)
# Statuses in which the body handling the case still has to conclude it by due_at.
BEFORE_CONCLUSION = "('registered','accepted','assigned','in_progress')"


def level_of(code: str) -> AreaLevel:
    return {6: AreaLevel.COUNTY, 9: AreaLevel.TOWNSHIP, 12: AreaLevel.VILLAGE}.get(
        len(code), AreaLevel.GRID
    )


def area_column(code: str) -> str:
    """The column of ``cases`` that holds the code of an area like ``code``."""
    return CASE_CODE_COLUMN[level_of(code)]


def db_now(session: Session) -> datetime:
    return session.execute(text("SELECT now()")).scalar_one()


def local_today(session: Session) -> date:
    return session.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar_one()


# -- facts for targeting ------------------------------------------------------------

# The columns of a family member the facts are made of.
MEMBER = (
    "status",
    "satisfaction",
    "reported_at",
    "due_at",
    "concluded_at",
    "resolved_at",
    "leader_id",
    "accused_unit",
    "grid_code",
)


def _members(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in MEMBER)


# Repeat petitions of one matter form a family (a household), rooted at its first case
# in the area and scope. From the live cases in ``start``, each one's repeat chain is
# walked up to that first case and the chain's members are gathered from there down,
# so the work grows with the live cases and their chains, not with the area's whole
# history. ``chained`` has one row per family: its target (the most recent live case,
# open first) and the family's facts.
CHAINS_SQL = """
up (id, parent, origin, depth, {member}) AS (
    SELECT s.id, s.repeat_of_id, s.id, 0, {member_s} FROM start s
    UNION ALL
    SELECT p.id, p.repeat_of_id, u.origin, u.depth + 1, {member_p}
    FROM up u
    -- one index probe per parent (LIMIT keeps the planner from hashing all cases)
    JOIN LATERAL (
        SELECT * FROM cases p
        WHERE p.id = u.parent AND p.{column} = :area AND {scope_p}
        LIMIT 1
    ) p ON true
    WHERE u.parent IS NOT NULL
) CYCLE id SET looped USING trail,
roots AS (
    SELECT DISTINCT ON (origin) * FROM up WHERE NOT looped ORDER BY origin, depth DESC
),
-- (each member comes with the columns the facts need: no second read of its row)
fam (id, root, {member}) AS (
    SELECT DISTINCT ON (r.id) r.id, r.id, {member_r} FROM roots r
    UNION ALL
    SELECT c.id, f.root, {member_c} FROM fam f JOIN cases c ON c.repeat_of_id = f.id
    WHERE c.{column} = :area AND {scope_c}
) CYCLE id SET looped USING trail,
m AS MATERIALIZED (
    SELECT DISTINCT ON (f.id) f.root, f.id, {member_f}
    FROM fam f
    WHERE NOT f.looped
    ORDER BY f.id, f.root
),
family AS (
    SELECT m.root,
           count(*) - 1 AS repeats,
           min(m.reported_at) AS first_reported,
           array_agg(m.id) AS ids,
           (array_agg(m.satisfaction
                      ORDER BY coalesce(m.resolved_at, m.concluded_at, m.reported_at) DESC,
                               m.id DESC)
               FILTER (WHERE m.satisfaction IS NOT NULL))[1] AS last_satisfaction
    FROM m
    GROUP BY m.root
),
-- The family's target: its most recent live case (open first).
family_target AS (
    SELECT DISTINCT ON (m.root) m.*
    FROM m
    WHERE {live_m}
    ORDER BY m.root, (m.status NOT IN {final}) DESC, m.reported_at DESC, m.id DESC
),
family_visited AS (
    SELECT m.root, max(v.received_at) AS at
    FROM visit_records v JOIN m ON m.id = v.case_id
    WHERE v.outcome = 'done'
    GROUP BY m.root
),
chained AS (
    SELECT t.root, t.id, t.status, t.due_at, t.leader_id, t.accused_unit, t.grid_code,
           fx.repeats, fx.first_reported, fx.last_satisfaction, fx.ids, vi.at AS visited_at
    FROM family_target t
    JOIN family fx ON fx.root = t.root
    LEFT JOIN family_visited vi ON vi.root = t.root
)
"""


def days_since(moment: str) -> str:
    """SQL: whole days (of 24 hours) from ``moment`` to ``:now``, rounded down.

    In double precision (``date_part``), which is exact here: the seconds of a
    difference below a few centuries fall far from a day's end after rounding (tested
    against the numeric ``extract``, three times slower).
    """
    return f"floor(date_part('epoch', :now - {moment}) / 86400)::int"


# The facts of a household ``l`` (a row shaped like ``chained``), named as in
# targeting.Facts.
HOUSEHOLD_FACTS = f"""
       l.status NOT IN {{final}} AS open,
       CASE WHEN l.status IN {{before}} AND l.due_at < :now
            THEN {days_since("l.due_at")} ELSE 0 END AS overdue_days,
       l.repeats,
       coalesce(l.last_satisfaction = 'dissatisfied', false) AS dissatisfied,
       l.status = 'concluded' AS follow_up_due,
       l.status IN {{follow_up_from}} AS follow_up,
       greatest({days_since("coalesce(l.visited_at, l.first_reported)")}, 0) AS unvisited_days,
       l.visited_at IS NOT NULL AS visited_before,
       CASE WHEN l.leader_id IS NOT NULL AND l.status NOT IN {{final}}
            THEN {days_since("l.first_reported")} ELSE 0
       END AS leader_case_days
"""

# The facts of case targets, every live case walked through its chain (the reference
# for RANKED_TARGETS_SQL, and one case added by hand).
CASE_FACTS_SQL = (
    """
WITH RECURSIVE
start AS MATERIALIZED (
    SELECT c.id, c.repeat_of_id, {member_c} FROM cases c
    WHERE c.{column} = :area AND {scope_c} AND {start}
),
"""
    + CHAINS_SQL
    + """
SELECT l.id AS case_id, c.number, c.title, l.grid_code,
       ST_X(c.location) AS lon, ST_Y(c.location) AS lat,
       l.leader_id, l.accused_unit,
"""
    + HOUSEHOLD_FACTS
    + """
FROM chained l
JOIN cases c ON c.id = l.id
WHERE {extra}
ORDER BY l.id
"""
)

# A live case: open, or followed up recently with the petitioner dissatisfied.
LIVE = """({a}.status NOT IN {final}
    OR ({a}.satisfaction = 'dissatisfied'
        AND coalesce({a}.resolved_at, {a}.concluded_at, {a}.reported_at) >= :dissatisfied_since))"""

# Stops given to someone on another published plan that has not ended (being visited).
TAKEN_STOPS = """
    SELECT o.* FROM visit_stops o JOIN visit_plans op ON op.id = o.plan_id
    WHERE op.status = 'published' AND op.date_to >= :today
      AND o.state = 'pending' AND o.user_id IS NOT NULL
      AND op.id IS DISTINCT FROM CAST(:plan_id AS integer)
"""

# A target already given to someone on another published plan that has not ended.
PLANNED_ELSEWHERE = "EXISTS (SELECT 1 FROM (" + TAKEN_STOPS + ") o WHERE {match})"


def _sql_params(user: User, area_code: str) -> tuple[dict, dict]:
    """The pieces every facts statement is formatted with, and the scope's parameters."""
    scope_c, params = case_scope_sql(user, "c")
    scope_p, _ = case_scope_sql(user, "p")
    parts = {
        "column": area_column(area_code),
        "scope_c": scope_c,
        "scope_p": scope_p,
        "final": FINAL,
        "before": BEFORE_CONCLUSION,
        "follow_up_from": sql_in(sorted(FOLLOW_UP_FROM)),
        "member": ", ".join(MEMBER),
        **{f"member_{a}": _members(a) for a in ("s", "p", "r", "c", "f")},
    }
    return parts, params


def _facts_sql(user: User, area_code: str, start: str, live: str, extra: str) -> tuple[str, dict]:
    parts, params = _sql_params(user, area_code)
    return CASE_FACTS_SQL.format(**parts, start=start, live_m=live, extra=extra), params


def _case_candidate(row) -> Candidate:
    # Positional unpacking: tens of thousands of rows for a county with a long history.
    (
        case_id,
        number,
        title,
        grid_code,
        lon,
        lat,
        leader_id,
        accused_unit,
        is_open,
        overdue,
        repeats,
        dissatisfied,
        follow_up_due,
        follow_up,
        unvisited,
        visited_before,
        leader_days,
    ) = tuple(row)
    facts = Facts(
        kind="case",
        open=is_open,
        overdue_days=overdue,
        repeats=repeats,
        dissatisfied=dissatisfied,
        follow_up_due=follow_up_due,
        unvisited_days=unvisited,
        visited_before=visited_before,
        leader_case_days=leader_days,
    )
    return Candidate(
        kind="case",
        grid_code=grid_code,
        lon=lon,
        lat=lat,
        facts=facts,
        case_id=case_id,
        leader_id=leader_id,
        accused_unit=accused_unit,
        follow_up=follow_up,
        label=f"{number} {title}",
    )


def case_candidates(
    session: Session,
    area_code: str,
    user: User,
    now: datetime,
    today: date,
    dissatisfied_window_days: int,
    plan_id: int | None = None,
) -> list[Candidate]:
    """The case targets of an area within ``user``'s scope, with their facts, in one query.

    Leaves out matters already given to someone on another published plan that has
    not ended (they are being visited). Every one of them: plans rank in the
    database instead (:func:`ranked_targets`); this is what that ranking must equal.
    """
    sql, scope_params = _facts_sql(
        user,
        area_code,
        start=LIVE.format(a="c", final=FINAL),
        live=LIVE.format(a="m", final=FINAL),
        extra="NOT " + PLANNED_ELSEWHERE.format(match="o.case_id = ANY(l.ids)"),
    )
    rows = session.execute(
        text(sql),
        {
            **scope_params,
            "area": area_code,
            "now": now,
            "today": today,
            "plan_id": plan_id,
            "dissatisfied_since": now - timedelta(days=dissatisfied_window_days),
        },
    ).all()
    return [_case_candidate(r) for r in rows]


def case_candidate(
    session: Session, case_id: int, area_code: str, user: User, now: datetime
) -> Candidate | None:
    """One case as a target (facts of its family), if it lies in the area and ``user``'s scope.

    Any case counts here, live or not: a planner may add a case by hand.
    """
    sql, scope_params = _facts_sql(
        user, area_code, start="c.id = :case_id", live="true", extra=":case_id = ANY(l.ids)"
    )
    row = session.execute(
        text(sql), {**scope_params, "area": area_code, "now": now, "case_id": case_id}
    ).first()
    if row is None:
        return None
    cand = _case_candidate(row)
    if cand.case_id == case_id:
        return cand
    # Facts of the family; the stop is the case the planner named.
    own = session.execute(
        text(
            "SELECT c.number, c.title, c.grid_code, ST_X(c.location) AS lon, "
            "ST_Y(c.location) AS lat, c.leader_id, c.accused_unit, c.status, c.concluded_at, "
            "c.satisfaction FROM cases c WHERE c.id = :id"
        ),
        {"id": case_id},
    ).one()
    follow_up = own.status in FOLLOW_UP_FROM
    return Candidate(
        kind="case",
        grid_code=own.grid_code,
        lon=own.lon,
        lat=own.lat,
        facts=cand.facts,
        case_id=case_id,
        leader_id=own.leader_id,
        accused_unit=own.accused_unit,
        follow_up=follow_up,
        label=f"{own.number} {own.title}",
    )


# Grids of the area where nobody recorded a visit for :min_days (or ever), and that
# are not on another published plan; ``{extra}`` may leave out more.
GRID_TARGETS = (
    """
SELECT g.code AS grid_code, g.name, ST_X(g.label_point) AS lon, ST_Y(g.label_point) AS lat,
       CASE WHEN vi.at IS NULL THEN NULL
            ELSE greatest("""
    + days_since("vi.at")
    + """, 0) END AS unvisited_days
FROM areas g
LEFT JOIN LATERAL (
    SELECT max(v.received_at) AS at FROM visit_records v
    WHERE v.grid_code = g.code AND v.outcome = 'done'
) vi ON true
WHERE g.level = 'grid' AND g.code LIKE :prefix
  AND (vi.at IS NULL OR vi.at < :now - make_interval(days => :min_days))
  AND NOT {elsewhere} {extra}
"""
)
GRID_ELSEWHERE = PLANNED_ELSEWHERE.format(match="o.kind = 'grid' AND o.grid_code = g.code")
GRID_FACTS_SQL = GRID_TARGETS.format(elsewhere=GRID_ELSEWHERE, extra="") + "ORDER BY g.code"


def grid_candidates(
    session: Session,
    area_code: str,
    now: datetime,
    today: date,
    min_days: int,
    plan_id: int | None = None,
) -> list[Candidate]:
    """Grids of the area where nobody recorded a visit for ``min_days`` (or ever)."""
    rows = session.execute(
        text(GRID_FACTS_SQL),
        {
            "prefix": area_code + "%",
            "now": now,
            "today": today,
            "min_days": min_days,
            "plan_id": plan_id,
        },
    ).all()
    return [
        Candidate(
            kind="grid",
            grid_code=r.grid_code,
            lon=r.lon,
            lat=r.lat,
            facts=Facts(
                kind="grid",
                unvisited_days=r.unvisited_days,
                visited_before=r.unvisited_days is not None,
            ),
            label=r.name,
        )
        for r in rows
    ]


def hot_spot_bins(
    session: Session, area_code: str, scope: tuple[str, dict], now: datetime, days: int
) -> dict[str, int]:
    """Gi* bins of the grids around the area, over the cases reported in the past ``days``.

    Gi* needs neighbours, so it runs over the area's township (or the whole county for
    a county plan) even when the plan is for one village.
    """
    within = area_code if len(area_code) <= 9 else area_code[:9]
    result = hot_spots(
        session, AreaLevel.GRID, within, CaseFilter(date_from=now - timedelta(days=days)), scope
    )
    bins = np.asarray(result.bins)
    return {code: int(b) for code, b in zip(result.codes, bins.tolist(), strict=True) if b > 0}


def grid_codes(session: Session, area_code: str) -> list[str]:
    """The codes of the grids of an area."""
    return list(
        session.execute(
            text("SELECT code FROM areas WHERE level = 'grid' AND code LIKE :prefix ORDER BY code"),
            {"prefix": area_code + "%"},
        ).scalars()
    )


# -- ranking in the database ----------------------------------------------------------

# Every target of an area with its facts (as case_candidates and grid_candidates
# measure them), its points (targeting's factor table) and its rank, in one statement
# that returns only the targets that could be assigned (assignment.Room: the best
# ``places`` of each group of targets the same people may take) and the best
# ``:spare`` of the rest, with how many there were.
#
# Most live cases stand alone (no repeat_of_id, and nothing repeats them): they are
# their own household, their facts read in the scan that finds them (the open ones
# through ix_cases_open, the recently dissatisfied through ix_cases_dissatisfied).
# Only the others walk their chains (CHAINS_SQL).
RANKED_TARGETS_SQL = (
    """
WITH RECURSIVE
live AS MATERIALIZED (
    SELECT u.*,
           (u.repeat_of_id IS NOT NULL
            OR u.id IN (SELECT k.repeat_of_id FROM cases k WHERE k.repeat_of_id IS NOT NULL))
               AS linked
    FROM (
        SELECT c.id, c.repeat_of_id, {member_c}
        FROM cases c
        WHERE c.{column} = :area AND {scope_c} AND c.status NOT IN {final}
        UNION ALL
        SELECT c.id, c.repeat_of_id, {member_c}
        FROM cases c
        WHERE c.{column} = :area AND {scope_c} AND c.status IN {final}
          AND c.satisfaction = 'dissatisfied'
          AND coalesce(c.resolved_at, c.concluded_at, c.reported_at) >= :dissatisfied_since
    ) u
),
-- live cases in a repeat chain (``linked``: with a parent, or repeated, in scope or not)
start AS (SELECT * FROM live l WHERE l.linked),
"""
    + CHAINS_SQL
    + """,
taken AS MATERIALIZED ("""
    + TAKEN_STOPS
    + """),
done AS (
    SELECT v.case_id, max(v.received_at) AS at FROM visit_records v
    WHERE v.outcome = 'done' AND v.case_id IS NOT NULL
    GROUP BY v.case_id
),
households AS (
    SELECT l.id, l.status, l.due_at, l.leader_id, l.accused_unit, l.grid_code,
           0 AS repeats, l.reported_at AS first_reported,
           l.satisfaction AS last_satisfaction, d.at AS visited_at
    FROM live l LEFT JOIN done d ON d.case_id = l.id
    WHERE {single_free}
    UNION ALL
    SELECT l.id, l.status, l.due_at, l.leader_id, l.accused_unit, l.grid_code,
           l.repeats, l.first_reported, l.last_satisfaction, l.visited_at
    FROM chained l
    WHERE {chain_free}
),
case_targets AS (
    SELECT 'case'::text AS kind, l.id AS case_id, l.grid_code, l.leader_id, l.accused_unit,
"""
    + HOUSEHOLD_FACTS
    + """
    FROM households l
),
grid_targets AS ("""
    + GRID_TARGETS
    + """),
-- per grid: its Gi* bin, and the group and places of its people (assignment.Room);
-- DISTINCT ON tells the planner that codes are unique (it hashes them then)
grids AS (
    SELECT DISTINCT ON (code) *
    FROM unnest(CAST(:grid_codes AS text[]), CAST(:grid_bins AS integer[]),
                CAST(:grid_groups AS integer[]), CAST(:grid_places AS integer[]))
        AS g(code, bin, grp, places)
),
-- Each target with its points, its team (the people who may take it, assignment.Room:
-- those of its grid's group, its leader in charge when on the plan, less whoever works
-- for the unit it accuses; one number for the three) and how many targets they can take.
scored AS MATERIALIZED (
    SELECT f.*, {points} AS tenths,
           ((coalesce(f.grp, -1) + 1)::bigint * :leader_slots + f.leader_no) * :unit_slots
               + coalesce(array_position(CAST(:units AS text[]), f.accused_unit::text), 0)
               AS team,
           f.places + coalesce((CAST(:leader_places AS integer[]))[f.leader_no], 0) AS room
    FROM (
        SELECT c.*, coalesce(g.bin, 0) AS hot_spot_bin, g.grp, g.places,
               coalesce(array_position(CAST(:leader_ids AS integer[]), c.leader_id), 0)
                   AS leader_no
        FROM (
            SELECT * FROM case_targets
            UNION ALL
            SELECT 'grid', NULL, t.grid_code, NULL, NULL, false, 0, 0, false, false, false,
                   t.unvisited_days, t.unvisited_days IS NOT NULL, 0
            FROM grid_targets t
        ) c
        LEFT JOIN grids g ON g.code = c.grid_code COLLATE "C"
    ) f
),
-- How many targets of each team score each number of points, and how many score at
-- least that (``reach``): enough to find, without sorting them all, the score of each
-- team's last target that could fit (``cut``; none when they all fit).
tally AS (
    SELECT s.team, s.room, s.tenths, count(*) AS n
    FROM scored s
    GROUP BY s.team, s.room, s.tenths
),
cuts AS (
    SELECT r.team,
           max(r.tenths) FILTER (WHERE r.reach >= r.room) AS cut,
           least(max(r.reach), max(r.room)) AS most
    FROM (
        SELECT t.*, sum(t.n) OVER (PARTITION BY t.team ORDER BY t.tenths DESC) AS reach
        FROM tally t
        WHERE t.tenths > 0
    ) r
    GROUP BY r.team
),
-- The score at or above which lie at least as many targets as could fit, and :spare
-- more (none when there are not that many): the best of the rest are among them.
enough AS (
    SELECT max(r.tenths) AS at FROM (
        SELECT t.tenths, sum(sum(t.n)) OVER (ORDER BY t.tenths DESC) AS reach
        FROM tally t WHERE t.tenths > 0 GROUP BY t.tenths
    ) r
    WHERE r.reach >= (SELECT sum(k.most) FROM cuts k) + :spare
),
-- The targets that may fit, or be among the best of the rest. Materialized apart from
-- their ranking, and the cuts said to be unique (DISTINCT ON), the planner hashes the
-- few cuts instead of sorting every target to merge them.
near AS MATERIALIZED (
    SELECT s.*, k.cut
    FROM scored s
    JOIN (SELECT DISTINCT ON (team) * FROM cuts) k ON k.team = s.team
    WHERE s.tenths > 0
      AND (k.cut IS NULL OR s.tenths >= k.cut
           OR s.tenths >= coalesce((SELECT e.at FROM enough e), 0))
),
-- In its team, a target at or above the cut has every better one here: its place is
-- its place among all of them. Below the cut, it cannot fit.
fitting AS MATERIALIZED (
    SELECT n.*, (n.cut IS NULL OR n.tenths >= n.cut)
                AND (n.room IS NULL OR n.place <= n.room) AS fits
    FROM (
        SELECT n.*, row_number() OVER (PARTITION BY n.team ORDER BY {order_n}) AS place
        FROM near n
    ) n
),
chosen AS (
    SELECT * FROM fitting s WHERE s.fits
    UNION ALL
    (SELECT * FROM fitting s WHERE NOT s.fits ORDER BY {order_s} LIMIT :spare)
),
totals AS (
    SELECT (SELECT coalesce(sum(t.n), 0) FROM tally t)::bigint AS considered,
           ((SELECT coalesce(sum(t.n), 0) FROM tally t WHERE t.tenths > 0)
               - (SELECT count(*) FROM fitting s WHERE s.fits))::bigint AS beyond
)
SELECT n.considered, n.beyond, s.kind, s.case_id, s.grid_code,
       coalesce(ST_X(c.location), ST_X(g.label_point)) AS lon,
       coalesce(ST_Y(c.location), ST_Y(g.label_point)) AS lat,
       s.leader_id, s.accused_unit, s.open, s.overdue_days, s.repeats, s.dissatisfied,
       s.follow_up_due, s.follow_up, s.hot_spot_bin, s.unvisited_days, s.visited_before,
       s.leader_case_days, s.tenths,
       CASE WHEN s.kind = 'case' THEN c.number || ' ' || c.title ELSE g.name END AS label
FROM totals n
LEFT JOIN (
    chosen s
    LEFT JOIN cases c ON c.id = s.case_id
    LEFT JOIN areas g ON s.case_id IS NULL AND g.code = s.grid_code
) ON true
ORDER BY {order_s}
"""
)

# Households not given to someone on another published plan that has not ended: a live
# case of its own (``l`` from ``live``), a chain (``l`` from ``chained``).
SINGLE_FREE = (
    "NOT l.linked AND l.id NOT IN (SELECT t.case_id FROM taken t WHERE t.case_id IS NOT NULL)"
)
CHAIN_FREE = "l.root NOT IN (SELECT m.root FROM m JOIN taken t ON t.case_id = m.id)"

# The order of targets: best first; ties to case targets, then the longer overdue,
# then the lower case id or grid code (targeting.rank's order).
TARGET_ORDER = (
    "{a}.tenths DESC, {a}.kind <> 'case', {a}.overdue_days DESC, coalesce({a}.case_id, 0), "
    '{a}.grid_code COLLATE "C"'
)


@dataclass(frozen=True)
class Ranked:
    """Targets best first: all that could be assigned, then the best of the rest."""

    targets: list[Target]
    considered: int  # candidates measured (with points or not)
    left_out: int  # targets with points not among ``targets`` (none of them assignable)


def points_sql(alias: str) -> str:
    """A target's points in tenths, in SQL from its facts (columns of ``alias``).

    Each factor's level (targeting.FACTOR_RULES) picks its points from
    ``:pt_<factor>`` (targeting.point_table).
    """
    return " + ".join(
        f"(CAST(:pt_{factor.value} AS integer[]))[1 + {rule.sql.format(f=alias)}]"
        for factor, rule in FACTOR_RULES.items()
    )


def ranked_targets(
    session: Session,
    area_code: str,
    user: User,
    now: datetime,
    today: date,
    dissatisfied_window_days: int,
    grid_unvisited_days: int,
    bins: Mapping[str, int],
    weights: Weights,
    rules: Rules,
    room: Room | None,
    spare: int,
    plan_id: int | None = None,
) -> Ranked:
    """The targets of an area in ``user``'s scope, scored and ranked in the database.

    The same targets, scores, reasons and order as ranking every candidate of
    :func:`case_candidates` and :func:`grid_candidates` with ``targeting.rank`` (after
    ``with_hot_spot``), but only those ``room`` says could be assigned come back,
    with the best ``spare`` of the others (``room`` None: every target).
    """
    parts, scope_params = _sql_params(user, area_code)
    sql = RANKED_TARGETS_SQL.format(
        **parts,
        live_m=LIVE.format(a="m", final=FINAL),
        elsewhere=GRID_ELSEWHERE,
        # the grids of the households (read again rather than keeping 80,000 rows twice)
        extra=f"AND g.code NOT IN (SELECT l.grid_code FROM live l WHERE {SINGLE_FREE} "
        f"UNION ALL SELECT l.grid_code FROM chained l WHERE {CHAIN_FREE})",
        single_free=SINGLE_FREE,
        chain_free=CHAIN_FREE,
        points=points_sql("f"),
        order_s=TARGET_ORDER.format(a="s"),
        order_n=TARGET_ORDER.format(a="n"),
    )
    w = weights.as_dict()
    areas = room.areas if room is not None else {}
    leaders = room.leaders if room is not None else {}
    codes = sorted(set(bins) | set(areas))
    units = sorted(room.units) if room is not None else []
    params = {
        **scope_params,
        **rule_params(rules),
        **{f"pt_{factor.value}": point_table(factor, w, rules) for factor in FACTOR_RULES},
        "area": area_code,
        "prefix": area_code + "%",
        "now": now,
        "today": today,
        "plan_id": plan_id,
        "dissatisfied_since": now - timedelta(days=dissatisfied_window_days),
        "min_days": grid_unvisited_days,
        "grid_codes": codes,
        "grid_bins": [int(bins.get(code, 0)) for code in codes],
        "grid_groups": [areas.get(code, (None, None))[0] for code in codes],
        "grid_places": [areas.get(code, (None, None))[1] for code in codes],
        "leader_ids": list(leaders),
        "leader_places": list(leaders.values()),
        "leader_slots": len(leaders) + 1,
        "units": units,
        "unit_slots": len(units) + 1,
        "spare": spare,
    }
    rows = session.execute(text(sql), params).all()
    targets = [_target(r, weights, rules) for r in rows if r.kind is not None]
    # the rows past their group's room come back up to ``spare``: the rest are counted
    return Ranked(targets, rows[0].considered, max(rows[0].beyond - spare, 0))


def _target(row, weights: Weights, rules: Rules) -> Target:
    facts = Facts(
        kind=row.kind,
        open=row.open,
        overdue_days=row.overdue_days,
        repeats=row.repeats,
        dissatisfied=row.dissatisfied,
        follow_up_due=row.follow_up_due,
        hot_spot_bin=row.hot_spot_bin,
        unvisited_days=row.unvisited_days,
        visited_before=row.visited_before,
        leader_case_days=row.leader_case_days,
    )
    candidate = Candidate(
        kind=row.kind,
        grid_code=row.grid_code,
        lon=row.lon,
        lat=row.lat,
        facts=facts,
        case_id=row.case_id,
        leader_id=row.leader_id,
        accused_unit=row.accused_unit,
        follow_up=row.follow_up,
        label=row.label,
    )
    return Target(candidate, row.tenths / 10, weights, rules)


# -- people --------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRow:
    id: int
    username: str
    display_name: str
    role: str
    area_code: str
    area_name: str
    unit: str | None


def eligible_people(
    session: Session, area_code: str, user_ids: Sequence[int] | None = None
) -> list[PersonRow]:
    """Active accounts who may walk a plan for the area: grid workers, village informants,
    township leaders and leaders in charge whose own area holds it or lies within it."""
    cond = "AND u.id = ANY(:ids)" if user_ids is not None else ""
    rows = session.execute(
        text(
            f"""
            SELECT u.id, u.username, u.display_name, u.role, u.area_code, a.name AS area_name,
                u.unit
            FROM users u JOIN areas a ON a.code = u.area_code
            WHERE u.active AND u.role = ANY(:roles)
              AND (u.area_code LIKE :area || '%' OR :area LIKE u.area_code || '%')
              {cond}
            ORDER BY array_position(:roles, u.role::text), u.area_code, u.display_name, u.id
            """
        ),
        {
            "roles": sorted(r.value for r in VISITOR_ROLES),
            "area": area_code,
            "ids": list(user_ids or []),
        },
    ).all()
    return [PersonRow(*r) for r in rows]


@dataclass(frozen=True)
class StartPoint:
    lon: float
    lat: float
    label: str


def committee_starts(
    session: Session, area_code: str, user_ids: Sequence[int]
) -> dict[int, StartPoint]:
    """Each person's default start: the committee of their village (its label point).

    People whose own area is larger than a village start at the plan area's village
    (for a village plan) or at the label point of the smaller of their area and the
    plan's area (a township seat, say).
    """
    rows = session.execute(
        text(
            """
            SELECT u.id, a.name, a.level, ST_X(a.label_point) AS lon, ST_Y(a.label_point) AS lat
            FROM users u
            JOIN areas a ON a.code = CASE
                WHEN length(u.area_code) >= 12 THEN left(u.area_code, 12)
                WHEN length(:area) >= 12 THEN left(:area, 12)
                WHEN length(u.area_code) > length(:area) THEN u.area_code
                ELSE :area END
            WHERE u.id = ANY(:ids)
            """
        ),
        {"area": area_code, "ids": list(user_ids)},
    ).all()
    return {r.id: StartPoint(r.lon, r.lat, start_label(r.name, r.level)) for r in rows}


def start_label(name: str, level: str) -> str:
    """How a start at an area's label point is called.

    东关村村委会, 城关社区居委会, 岗口镇政府驻地, 延津县县城.
    """
    if level == "village":
        return name + ("居委会" if name.endswith("社区") else "村委会")
    if level == "township":
        return name + "政府驻地"
    if level == "county":
        return name + "县城"
    return name


def point_in_area(session: Session, area_code: str, lon: float, lat: float) -> bool:
    """Whether a WGS84 point lies in the area (boundary included)."""
    return bool(
        session.execute(
            text(
                "SELECT ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) FROM areas "
                "WHERE code = :c"
            ),
            {"lon": lon, "lat": lat, "c": area_code},
        ).scalar()
    )


# -- plans and stops -----------------------------------------------------------------


def get_plan(session: Session, plan_id: int, lock: bool = False) -> VisitPlan | None:
    stmt = select(VisitPlan).where(VisitPlan.id == plan_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def plans_within(session: Session, area_prefix: str, limit: int = 200) -> list:
    """Plans for areas within ``area_prefix``, newest first, with their progress counts."""
    return session.execute(
        text(
            """
            SELECT p.id, p.title, p.area_code, a.name AS area_name, p.date_from, p.date_to,
                p.status,
                   p.updated_at, u.display_name AS created_by_name,
                   coalesce(n.total, 0) AS total, coalesce(n.done, 0) AS done,
                   coalesce(n.nobody_home, 0) AS nobody_home, coalesce(n.refused, 0) AS refused,
                   coalesce(n.pending, 0) AS pending, coalesce(n.unassigned, 0) AS unassigned,
                   coalesce(n.people, 0) AS people
            FROM visit_plans p
            JOIN areas a ON a.code = p.area_code
            JOIN users u ON u.id = p.created_by
            LEFT JOIN LATERAL (
                SELECT count(*) FILTER (WHERE s.user_id IS NOT NULL) AS total,
                       count(*) FILTER (WHERE s.user_id IS NOT NULL AND s.state = 'done') AS done,
                       count(*) FILTER (WHERE s.user_id IS NOT NULL
                           AND s.state = 'nobody_home') AS nobody_home,
                       count(*) FILTER (WHERE s.user_id IS NOT NULL
                           AND s.state = 'refused') AS refused,
                       count(*) FILTER (WHERE s.user_id IS NOT NULL
                           AND s.state = 'pending') AS pending,
                       count(*) FILTER (WHERE s.user_id IS NULL) AS unassigned,
                       count(DISTINCT s.user_id) AS people
                FROM visit_stops s WHERE s.plan_id = p.id
            ) n ON true
            WHERE p.area_code LIKE :prefix
            ORDER BY p.date_from DESC, p.id DESC
            LIMIT :limit
            """
        ),
        {"prefix": area_prefix + "%", "limit": limit},
    ).all()


def plan_area(session: Session, plan: VisitPlan) -> Area:
    return session.scalar(select(Area).where(Area.code == plan.area_code))


@dataclass(frozen=True)
class NewStop:
    kind: str
    case_id: int | None
    grid_code: str
    lon: float
    lat: float
    score: float
    reasons: list[dict]
    follow_up: bool
    user_id: int | None
    day: date | None
    seq: int | None
    unassigned_reason: str | None = None
    added_by_hand: bool = False


@dataclass(frozen=True)
class RouteLeg:
    """The leg to a new stop from the point before it (the person's start or the previous
    stop), with the junctions both ends join the roads at, as routing found them."""

    a: tuple[float, float]
    b: tuple[float, float]
    va: int
    vb: int


# The legs of new stops, from arrays: id is the position of the stop they lead to.
NEW_LEGS_SQL = """
SELECT t.n AS id,
       ST_SetSRID(ST_MakePoint(t.ax, t.ay), 4326) AS a,
       ST_SetSRID(ST_MakePoint(t.bx, t.by), 4326) AS b, t.va, t.vb
FROM unnest(CAST(:ax AS float8[]), CAST(:ay AS float8[]), CAST(:bx AS float8[]),
            CAST(:by AS float8[]), CAST(:va AS bigint[]), CAST(:vb AS bigint[]))
     WITH ORDINALITY AS t(ax, ay, bx, by, va, vb, n)
"""


def insert_stops(
    session: Session,
    plan_id: int,
    stops: Sequence[NewStop],
    legs: Sequence[RouteLeg] = (),
    net: roads.RoadNetwork | None = None,
) -> None:
    """Store stops in one statement (arrays unnested server-side).

    With ``legs`` (``legs[k]`` leads to ``stops[k]``; a routable ``net``), the legs are
    measured along the roads in the same statement, as :func:`number_and_measure`
    measures them, from the junctions routing found.
    """
    if not stops:
        return
    measured = legs_in = legs_out = legs_join = ""
    params: dict = {}
    if legs:
        if net is None or not net.routable:
            raise ValueError("legs are measured along a routable road network")
        measured = "WITH " + roads.measured_legs_sql(NEW_LEGS_SQL, net, joined=True)
        legs_in, legs_out = ", leg_m, leg_kind, leg_path", ", m.leg_m, m.leg_kind, m.leg_path"
        legs_join = "LEFT JOIN measured m ON m.id = t.n"
        params = {
            "road_county": net.county_code,
            "ax": [leg.a[0] for leg in legs],
            "ay": [leg.a[1] for leg in legs],
            "bx": [leg.b[0] for leg in legs],
            "by": [leg.b[1] for leg in legs],
            "va": [leg.va for leg in legs],
            "vb": [leg.vb for leg in legs],
        }
    session.execute(
        text(
            f"""
            {measured}
            INSERT INTO visit_stops (plan_id, kind, case_id, grid_code, location, score, reasons,
                                     follow_up, user_id, day, seq, unassigned_reason,
                                     added_by_hand{legs_in})
            SELECT :plan_id, t.kind, t.case_id, t.grid_code,
                   ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.score, t.reasons::jsonb,
                   t.follow_up, t.user_id, t.day, t.seq, t.reason, t.by_hand{legs_out}
            FROM unnest(CAST(:kind AS text[]), CAST(:case_id AS bigint[]),
                        CAST(:grid_code AS text[]), CAST(:lon AS float8[]),
                        CAST(:lat AS float8[]), CAST(:score AS float8[]),
                        CAST(:reasons AS text[]), CAST(:follow_up AS boolean[]),
                        CAST(:user_id AS integer[]), CAST(:day AS date[]),
                        CAST(:seq AS integer[]), CAST(:reason AS text[]),
                        CAST(:by_hand AS boolean[]))
                 WITH ORDINALITY AS t(kind, case_id, grid_code, lon, lat, score, reasons,
                                      follow_up, user_id, day, seq, reason, by_hand, n)
            {legs_join}
            """
        ),
        {
            **params,
            "plan_id": plan_id,
            "kind": [s.kind for s in stops],
            "case_id": [s.case_id for s in stops],
            "grid_code": [s.grid_code for s in stops],
            "lon": [s.lon for s in stops],
            "lat": [s.lat for s in stops],
            "score": [s.score for s in stops],
            "reasons": [json.dumps(s.reasons, ensure_ascii=False) for s in stops],
            "follow_up": [s.follow_up for s in stops],
            "user_id": [s.user_id for s in stops],
            "day": [s.day for s in stops],
            "seq": [s.seq for s in stops],
            "reason": [s.unassigned_reason for s in stops],
            "by_hand": [s.added_by_hand for s in stops],
        },
    )
    session.flush()


def number_and_measure(
    session: Session, plan_id: int, user_id: int | None = None, day: date | None = None
) -> None:
    """Renumber the stops of each person's day 1..n in their order and measure each leg.

    A leg runs from the previous stop, the first from the person's start point. It is
    measured along the roads of the plan's county when it has a routable network
    (``leg_kind`` 'road', with the path walked in ``leg_path``; 'no_path' and
    geodesic where the network does not join the two ends), else geodesically
    ('straight'). Limited to one person's day when ``user_id`` and ``day`` are given.
    """
    county = session.execute(
        text("SELECT left(area_code, 6) FROM visit_plans WHERE id = :p"), {"p": plan_id}
    ).scalar_one()
    net = roads.network(session, county)
    cond = "AND s.user_id = :user_id AND s.day = :day" if user_id is not None else ""
    where = f"s.plan_id = :plan_id AND s.user_id IS NOT NULL {cond}"
    params = {"plan_id": plan_id, "user_id": user_id, "day": day, "road_county": county}
    session.execute(
        text(
            f"""
            WITH ordered AS (
                SELECT s.id, row_number() OVER w AS rn
                FROM visit_stops s
                WHERE {where}
                WINDOW w AS (PARTITION BY s.user_id, s.day ORDER BY s.seq NULLS LAST, s.id)
            )
            UPDATE visit_stops s SET seq = o.rn
            FROM ordered o
            WHERE s.id = o.id AND s.seq IS DISTINCT FROM o.rn
            """
        ),
        params,
    )
    # Then the legs, in that order. Each stop row is found by its key from the measured
    # legs (joining the two CTEs instead would rescan one for every row of the other).
    legs = roads.measured_legs_sql("SELECT id, a, b FROM ordered", net)
    session.execute(
        text(
            f"""
            WITH ordered AS (
                SELECT s.id,
                       coalesce(lag(s.location) OVER w, pp.start_point) AS a,
                       s.location AS b
                FROM visit_stops s
                JOIN visit_plan_people pp ON pp.plan_id = s.plan_id AND pp.user_id = s.user_id
                WHERE {where}
                WINDOW w AS (PARTITION BY s.user_id, s.day ORDER BY s.seq, s.id)
            ),
            {legs}
            UPDATE visit_stops s
            SET leg_m = m.leg_m, leg_kind = m.leg_kind, leg_path = m.leg_path
            FROM measured m
            WHERE s.id = m.id
              AND (s.leg_m IS DISTINCT FROM m.leg_m OR s.leg_kind IS DISTINCT FROM m.leg_kind
                   OR s.leg_path IS DISTINCT FROM m.leg_path)
            """
        ),
        params,
    )
    session.execute(
        text(
            "UPDATE visit_stops SET seq = NULL, leg_m = NULL, leg_kind = NULL, leg_path = NULL "
            "WHERE plan_id = :p AND user_id IS NULL AND seq IS NOT NULL"
        ),
        {"p": plan_id},
    )
    session.flush()


def leg_kinds(session: Session, plan_id: int) -> dict[str, int]:
    """How many legs of the plan were measured each way (``road``, ``straight``, ``no_path``)."""
    rows = session.execute(
        text(
            "SELECT leg_kind, count(*) FROM visit_stops "
            "WHERE plan_id = :p AND leg_kind IS NOT NULL GROUP BY leg_kind"
        ),
        {"p": plan_id},
    ).all()
    return {k: n for k, n in rows}


def leg_paths(
    session: Session, plan_id: int, user_id: int | None = None, day: date | None = None
) -> dict[int, list[list[float]]]:
    """The road path of each leg that has one (stop id → [[lon, lat], ...]), for the map.

    Simplified to about a metre, with six decimals; made in SQL.
    """
    rows = session.execute(
        text(
            """
            SELECT id, ST_AsGeoJSON(ST_Simplify(leg_path, 0.00001), 6)::json -> 'coordinates'
            FROM visit_stops
            WHERE plan_id = :p AND leg_path IS NOT NULL
              AND (CAST(:u AS integer) IS NULL OR user_id = :u)
              AND (CAST(:d AS date) IS NULL OR day = :d)
            """
        ),
        {"p": plan_id, "u": user_id, "d": day},
    ).all()
    return {r[0]: r[1] for r in rows}


def touch_plan(session: Session, plan: VisitPlan) -> None:
    """Mark the plan as changed (workers see that a published plan was edited)."""
    session.execute(
        text("UPDATE visit_plans SET version = version + 1, updated_at = now() WHERE id = :id"),
        {"id": plan.id},
    )
    session.flush()
    session.refresh(plan)


STOP_ROWS_SQL = """
SELECT s.id, s.plan_id, s.kind, s.case_id, s.grid_code, ST_X(s.location) AS lon,
    ST_Y(s.location) AS lat,
       s.score, s.reasons, s.follow_up, s.user_id, s.day, s.seq, s.leg_m, s.leg_kind, s.state,
       s.unassigned_reason, s.added_by_hand,
       g.name AS grid_name, v.name AS village_name,
       c.number AS case_number, c.title AS case_title, c.status AS case_status,
           c.channel AS case_channel,
       c.satisfaction AS case_satisfaction, c.leader_id AS case_leader_id,
           c.reporter_id AS case_reporter_id,
       c.petitioner_name, c.petitioner_phone, cat.name AS category_name,
       u.display_name AS user_name,
       last.outcome AS last_outcome, last.satisfaction AS last_satisfaction, last.note AS last_note,
       last.received_at AS last_at, last.new_case_number
FROM visit_stops s
JOIN areas g ON g.code = s.grid_code
LEFT JOIN areas v ON v.code = left(s.grid_code, 12)
LEFT JOIN cases c ON c.id = s.case_id
LEFT JOIN categories cat ON cat.id = c.category_id
LEFT JOIN users u ON u.id = s.user_id
LEFT JOIN LATERAL (
    SELECT r.outcome, r.satisfaction, r.note, r.received_at, nc.number AS new_case_number
    FROM visit_records r LEFT JOIN cases nc ON nc.id = r.new_case_id
    WHERE r.stop_id = s.id ORDER BY r.received_at DESC, r.id DESC LIMIT 1
) last ON true
WHERE {where}
ORDER BY {order}s.user_id NULLS LAST, s.day, s.seq, s.score DESC, s.id
"""


def stop_rows(
    session: Session,
    plan_id: int,
    user_id: int | None = None,
    day: date | None = None,
    assigned: bool | None = None,
) -> list:
    """The stops of a plan with what a page shows about them (personal fields raw: mask them)."""
    where = ["s.plan_id = :plan_id"]
    if user_id is not None:
        where.append("s.user_id = :user_id")
    if day is not None:
        where.append("s.day = :day")
    if assigned is True:
        where.append("s.user_id IS NOT NULL")
    elif assigned is False:
        where.append("s.user_id IS NULL")
    return session.execute(
        text(STOP_ROWS_SQL.format(where=" AND ".join(where), order="")),
        {"plan_id": plan_id, "user_id": user_id, "day": day},
    ).all()


def my_stops(session: Session, user_id: int, day: date) -> list:
    """A person's stops on a day, on published plans, in walking order."""
    return session.execute(
        text(
            STOP_ROWS_SQL.format(
                where="s.user_id = :user_id AND s.day = :day AND EXISTS "
                "(SELECT 1 FROM visit_plans p WHERE p.id = s.plan_id AND p.status = 'published')",
                order="s.plan_id, ",
            )
        ),
        {"user_id": user_id, "day": day},
    ).all()


def my_days(session: Session, user_id: int, today: date) -> list:
    """The days (from today on) on which a person has stops on published plans, with counts."""
    return session.execute(
        text(
            """
            SELECT s.day, count(*) AS total, count(*) FILTER (WHERE s.state = 'pending') AS pending
            FROM visit_stops s JOIN visit_plans p ON p.id = s.plan_id AND p.status = 'published'
            WHERE s.user_id = :u AND s.day >= :today
            GROUP BY s.day ORDER BY s.day LIMIT 31
            """
        ),
        {"u": user_id, "today": today},
    ).all()


def plan_people(session: Session, plan_id: int) -> list:
    """The people of a plan with their capacity, start and progress (by state) and distance."""
    return session.execute(
        text(
            """
            SELECT pp.user_id, u.display_name, u.role, u.area_code, a.name AS area_name,
                pp.daily_capacity,
                   pp.start_label, ST_X(pp.start_point) AS start_lon,
                       ST_Y(pp.start_point) AS start_lat,
                   count(s.id) AS total,
                   count(s.id) FILTER (WHERE s.state = 'done') AS done,
                   count(s.id) FILTER (WHERE s.state = 'nobody_home') AS nobody_home,
                   count(s.id) FILTER (WHERE s.state = 'refused') AS refused,
                   count(s.id) FILTER (WHERE s.state = 'pending') AS pending,
                   coalesce(sum(s.leg_m), 0) AS distance_m,
                   count(DISTINCT s.day) AS days
            FROM visit_plan_people pp
            JOIN users u ON u.id = pp.user_id
            JOIN areas a ON a.code = u.area_code
            LEFT JOIN visit_stops s ON s.plan_id = pp.plan_id AND s.user_id = pp.user_id
            WHERE pp.plan_id = :p
            GROUP BY pp.user_id, u.display_name, u.role, u.area_code, a.name, pp.daily_capacity,
                     pp.start_label, pp.start_point
            ORDER BY u.area_code, u.display_name, pp.user_id
            """
        ),
        {"p": plan_id},
    ).all()


def day_loads(session: Session, plan_id: int) -> dict[tuple[int, date], int]:
    rows = session.execute(
        text(
            "SELECT user_id, day, count(*) FROM visit_stops WHERE plan_id = :p AND user_id IS "
            "NOT NULL "
            "GROUP BY user_id, day"
        ),
        {"p": plan_id},
    ).all()
    return {(r[0], r[1]): r[2] for r in rows}


def get_stop(session: Session, plan_id: int, stop_id: int, lock: bool = False) -> VisitStop | None:
    stmt = select(VisitStop).where(VisitStop.id == stop_id, VisitStop.plan_id == plan_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def area_outline(session: Session, area_code: str) -> dict:
    """GeoJSON of the grids of an area (names for tooltips), made in SQL."""
    return area_features(session, AreaLevel.GRID, area_code, 0.00002, digits=6)


def areas_for_planning(session: Session, root: str) -> list:
    """Townships and villages (and the county) within ``root`` a plan may be made for."""
    return session.execute(
        text(
            """
            SELECT code, name, level FROM areas
            WHERE code LIKE :prefix AND level IN ('county','township','village')
            ORDER BY code
            """
        ),
        {"prefix": root + "%"},
    ).all()


def log_contact_views(session: Session, user, views, **detail) -> bool:
    """Log that ``user`` was shown petitioners' contacts whole (on their own stops).

    Returns whether anything was logged; flushes, never commits.
    """
    seen = [
        v.case_id
        for v in views
        if not v.contact_masked and (v.petitioner_name or v.petitioner_phone)
    ]
    if not seen:
        return False
    audit.record(session, "view_visit_contacts", user, detail={"case_ids": seen, **detail})
    return True


# The class of advisory locks taken on a new-plan form's id (the second key: its hash).
_PLAN_FORM_LOCK = 726_194


def plan_made_by_form(session: Session, client_id: str) -> VisitPlan | None:
    """The plan the new-plan form ``client_id`` made, if any (``webapp.forms``).

    Until this transaction ends, the same form sent again waits here, so that it finds
    the plan this request is making instead of making a second.
    """
    session.execute(
        text("SELECT pg_advisory_xact_lock(:k, hashtext(:id))"),
        {"k": _PLAN_FORM_LOCK, "id": client_id},
    )
    return session.scalar(select(VisitPlan).where(VisitPlan.client_id == uuid.UUID(client_id)))
