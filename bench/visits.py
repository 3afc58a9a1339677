"""Workload 6: a county visit plan of about 1,000 stops (targeting, assignment, routing).

As ``flask visits bench`` does: one township leader per township, capacities that
add up to ~1,000 stops in a day, ``planning.make_plan`` in a transaction that is
rolled back. Beside it, the floor of any plan: reading the open cases' places with
one SQL statement and a nearest-neighbour tour through 1,000 points.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
from sqlalchemy import text

from bench.common import Timing, app_for, stopwatch
from webapp.db import database


def plan(url: str, stops: int, repeats: int, log) -> dict:
    from webapp.auth.models import User
    from webapp.visits import planning, queries, routing
    from webapp.visits.settings import visit_settings

    app = app_for(url)
    county = app.config["COUNTY_CODE"]
    totals, proposes, floors = Timing(), Timing(), Timing()
    made = {}
    with app.app_context():
        cfg = visit_settings(app.config)
        for _ in range(repeats):
            session = database(app).sessions()
            townships = (
                session.execute(
                    text(
                        "SELECT code FROM areas WHERE level = 'township' AND code LIKE :p ORDER BY code"
                    ),
                    {"p": county + "%"},
                )
                .scalars()
                .all()
            )
            capacity = min(200, math.ceil(stops / len(townships)))
            ids = (
                session.execute(
                    text(
                        """
                    INSERT INTO users (username, display_name, role, area_code, password_hash)
                    SELECT 'bench_' || code, '测试乡镇领导 ' || name, 'township_leader', code, '!'
                    FROM areas WHERE code = ANY(:codes) RETURNING id
                    """
                    ),
                    {"codes": list(townships)},
                )
                .scalars()
                .all()
            )
            planner_id = session.execute(
                text(
                    "INSERT INTO users (username, display_name, role, area_code, password_hash) "
                    "VALUES ('bench_planner', '测试研判', 'planner', :c, '!') RETURNING id"
                ),
                {"c": county},
            ).scalar_one()
            user = session.get(User, planner_id)
            today = queries.local_today(session)
            req = planning.PlanRequest(
                "性能测试",
                county,
                today,
                today + timedelta(days=0),
                tuple(planning.PersonRequest(i, capacity) for i in ids),
                cfg.weights,
            )
            with stopwatch() as t:
                p = planning.make_plan(session, user, req, cfg)
            totals.samples.append(t())
            with stopwatch() as t:
                proposal = planning.propose(session, p, user, cfg)
            proposes.samples.append(t())
            assigned, candidates = session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE user_id IS NOT NULL), count(*) FROM visit_stops "
                    "WHERE plan_id = :p"
                ),
                {"p": p.id},
            ).one()
            made = {
                "people": len(ids),
                "capacity_each": capacity,
                "assigned_stops": assigned,
                "stored_stops": candidates,
                "candidates": proposal.considered,
            }
            # The floor: the open cases' places in one statement, a nearest-neighbour tour.
            with stopwatch() as t:
                pts = session.execute(
                    text(
                        "SELECT ST_X(location), ST_Y(location) FROM cases WHERE county_code = :c "
                        "AND status NOT IN ('resolved', 'closed', 'not_accepted') "
                        "ORDER BY reported_at LIMIT :n"
                    ),
                    {"c": county, "n": stops},
                ).all()
                arr = np.array(pts, dtype=float)
                routing.nearest_neighbour((arr[0, 0], arr[0, 1]), [tuple(x) for x in arr])
            floors.samples.append(t())
            session.rollback()
            session.close()
        database(app).engine.dispose()
    log(
        f"  visit plan: {made.get('assigned_stops')} stops in {totals.median:.2f} s "
        f"(targeting {proposes.median:.2f} s); floor {floors.median:.2f} s"
    )
    return {
        **made,
        "make_plan": totals.to_dict(),
        "propose": proposes.to_dict(),
        "floor": floors.to_dict(),
        "ratio": totals.median / floors.median,
    }
