"""Workload 4: the statistics endpoint against a hand-written SQL ``GROUP BY``.

The endpoint (``GET /api/v1/stats``, through the app: parsing, scope, the SQL built
from ``stats.figures``, JSON) for a county staff member, against one SQL statement
written here by hand, from the figures' Chinese definitions and not from
``stats.figures``, that computes the same numbers for every village of the county.
The two answers are compared figure by figure before any time counts.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta

from sqlalchemy import text

from bench.common import Timing, app_for, repeat
from webapp.db import database
from webapp.stats.queries import LOCAL_TZ, local_midnight, year_before

# Every village of the county, one row each: the figures a ranking shows, counted by hand.
HAND_SQL = """
WITH per_village AS (
  SELECT v.code, v.name, v.population,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to) AS cases,
    coalesce(sum(c.batch_count) FILTER (WHERE c.channel = 'visit'
      AND c.reported_at >= :p_from AND c.reported_at < :p_to), 0) AS visit_batches,
    coalesce(sum(c.people_count * c.batch_count) FILTER (WHERE c.channel = 'visit'
      AND c.reported_at >= :p_from AND c.reported_at < :p_to), 0) AS visit_persons,
    count(c.id) FILTER (WHERE c.reported_at >= :ly_from AND c.reported_at < :ly_to) AS cases_last_year,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.status IN ('resolved', 'closed') AND c.resolved_at < :as_of) AS resolved,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.satisfaction IS NOT NULL AND c.concluded_at < :as_of) AS followups,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.satisfaction IN ('satisfied', 'basically') AND c.concluded_at < :as_of) AS satisfied,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.status <> 'not_accepted' AND c.due_at IS NOT NULL
      AND (c.concluded_at < :as_of OR c.due_at < :as_of)) AS due,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.status <> 'not_accepted' AND c.due_at IS NOT NULL
      AND c.concluded_at < :as_of AND c.concluded_at <= c.due_at) AS on_time,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.is_first) AS first,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.is_first AND c.status IN ('resolved', 'closed') AND c.resolved_at < :as_of
      AND NOT EXISTS (SELECT 1 FROM cases r
                      WHERE r.repeat_of_id = c.id AND r.reported_at < :as_of)) AS first_resolved_once,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND NOT c.is_first) AS repeats,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.people_count >= 5) AS collective,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.skip_level) AS skip_level,
    count(c.id) FILTER (WHERE c.status NOT IN ('not_accepted', 'resolved', 'closed')
      OR (c.status IN ('resolved', 'closed') AND NOT c.resolved_at < :as_of)) AS open,
    count(c.id) FILTER (WHERE (c.status NOT IN ('not_accepted', 'resolved', 'closed')
      OR (c.status IN ('resolved', 'closed') AND NOT c.resolved_at < :as_of))
      AND c.due_at < :as_of AND (c.concluded_at IS NULL OR c.concluded_at >= :as_of)) AS overdue,
    count(c.id) FILTER (WHERE (c.status NOT IN ('not_accepted', 'resolved', 'closed')
      OR (c.status IN ('resolved', 'closed') AND NOT c.resolved_at < :as_of))
      AND c.reported_at < :as_of - make_interval(years => :backlog_years)) AS backlog,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.status IN ('resolved', 'closed') AND c.resolved_at < :as_of
      AND c.resolved_level IS NOT NULL) AS resolved_leveled,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.status IN ('resolved', 'closed') AND c.resolved_at < :as_of
      AND c.resolved_level = 'village') AS resolved_village,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.status IN ('resolved', 'closed') AND c.resolved_at < :as_of
      AND c.resolved_level = 'township') AS resolved_township,
    count(c.id) FILTER (WHERE c.reported_at >= :p_from AND c.reported_at < :p_to
      AND c.status IN ('resolved', 'closed') AND c.resolved_at < :as_of
      AND c.resolved_level = 'county') AS resolved_county,
    count(c.id) FILTER (WHERE c.beijing_abnormal_at >= :p_from AND c.beijing_abnormal_at < :p_to
      AND c.beijing_abnormal_at < :as_of) AS beijing_abnormal,
    count(c.id) FILTER (WHERE c.province_collective_at >= :p_from
      AND c.province_collective_at < :p_to AND c.province_collective_at < :as_of) AS province_collective,
    count(c.id) FILTER (WHERE c.extreme_incident_at >= :p_from AND c.extreme_incident_at < :p_to
      AND c.extreme_incident_at < :as_of) AS extreme_incidents
  FROM areas v
  LEFT JOIN cases c ON c.village_code = v.code AND c.county_code = :county AND c.reported_at < :as_of
  WHERE v.level = 'village' AND v.county_code = :county
  GROUP BY v.code, v.name, v.population
)
SELECT *,
  (cases = 0)::int AS no_petition_villages,
  (beijing_abnormal + province_collective + extreme_incidents = 0) AS sanwu
FROM per_village ORDER BY code
"""

# Figures compared between the endpoint and the hand SQL (every count of a village row).
COMPARED = (
    "cases",
    "visit_batches",
    "visit_persons",
    "cases_last_year",
    "resolved",
    "followups",
    "satisfied",
    "due",
    "on_time",
    "first",
    "first_resolved_once",
    "repeats",
    "collective",
    "skip_level",
    "open",
    "overdue",
    "backlog",
    "resolved_leveled",
    "resolved_village",
    "resolved_township",
    "resolved_county",
    "beijing_abnormal",
    "province_collective",
    "extreme_incidents",
    "no_petition_villages",
    "sanwu",
)
RATES = {
    "resolution_rate": ("resolved", "cases", 1.0),
    "satisfaction_rate": ("satisfied", "followups", 1.0),
    "on_time_rate": ("on_time", "due", 1.0),
    "repeat_rate": ("repeats", "cases", 1.0),
    "per_1000": ("cases", "population", 1000.0),
}


def _params(start: date, end: date, as_of: datetime, county: str) -> dict:
    return {
        "p_from": local_midnight(start),
        "p_to": local_midnight(end + timedelta(days=1)),
        "ly_from": local_midnight(year_before(start)),
        "ly_to": local_midnight(year_before(end + timedelta(days=1))),
        "as_of": as_of,
        "backlog_years": 3,
        "county": county,
    }


def _sign_in(client, session, role: str = "county_staff") -> None:
    uid, sv = session.execute(
        text("SELECT id, session_version FROM users WHERE role = :r ORDER BY id LIMIT 1"),
        {"r": role},
    ).one()
    now = int(time.time())
    with client.session_transaction() as s:
        s.update(uid=uid, sv=sv, at=now, seen=now, csrf="bench")


def stats(url: str, repeats: int, log) -> dict:
    app = app_for(url)
    county = app.config["COUNTY_CODE"]
    today = datetime.now(LOCAL_TZ).date()
    last_year = date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    month_end = date(today.year, today.month, 1) - timedelta(days=1)
    month = date(month_end.year, month_end.month, 1), month_end
    out: dict = {}
    with app.app_context():
        session = database(app).sessions()
        client = app.test_client()
        _sign_in(client, session)
        cats = (
            session.execute(
                text("SELECT code FROM categories WHERE active ORDER BY sort_order, id LIMIT 3")
            )
            .scalars()
            .all()
        )

        def get(query: str) -> dict:
            r = client.get(f"/api/v1/stats?{query}")
            if r.status_code != 200:
                raise RuntimeError(
                    f"/api/v1/stats?{query}: HTTP {r.status_code} {r.get_data(True)[:300]}"
                )
            return r.get_json()

        typical = (
            f"area={county}&level=town&from={month[0]}&to={month[1]}&category={','.join(cats)}"
        )
        villages = f"area={county}&level=village&from={last_year[0]}&to={last_year[1]}"
        # The same instant for both sides: the endpoint's as_of is "now" unless given.
        answer = get(villages + f"&as_of={today}")
        as_of = datetime.fromisoformat(answer["request"]["as_of"])
        params = _params(*last_year, as_of, county)
        hand = [dict(r) for r in session.execute(text(HAND_SQL), params).mappings()]
        mismatches = _compare(answer["rows"], hand)
        if mismatches:
            raise AssertionError(f"endpoint and hand SQL disagree: {mismatches[:5]}")
        log(
            f"  stats: endpoint and hand SQL agree on {len(hand)} villages × {len(COMPARED) + len(RATES)} figures"
        )

        t_typ = repeat(lambda: get(typical + f"&as_of={today}"), repeats)
        t_vil = repeat(lambda: get(villages + f"&as_of={today}"), repeats)
        t_hand = repeat(lambda: session.execute(text(HAND_SQL), params).all(), repeats)
        plan = (
            session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + HAND_SQL), params).scalars().all()
        )
        session.rollback()
        session.close()
        database(app).engine.dispose()
    out = {
        "typical_query": typical,
        "villages_query": villages,
        "typical": t_typ.to_dict(),
        "villages": t_vil.to_dict(),
        "hand_sql": t_hand.to_dict(),
        "ratio": t_vil.median / t_hand.median,
        "villages_rows": len(hand),
        "hand_plan": "\n".join(plan),
    }
    log(
        f"  stats: typical p50 {t_typ.median * 1000:.0f} ms, 342 villages p50 "
        f"{t_vil.median * 1000:.0f} ms, hand SQL {t_hand.median * 1000:.0f} ms"
    )
    return out


def _compare(rows: list[dict], hand: list[dict]) -> list[str]:
    out = []
    by_code = {r["code"]: r for r in rows}
    if set(by_code) != {h["code"] for h in hand}:
        return ["different villages"]
    for h in hand:
        r = by_code[h["code"]]
        for key in COMPARED:
            want = h[key]
            got = r.get(key)
            if key == "sanwu":
                want = bool(want)
            if got != want:
                out.append(f"{h['code']} {key}: endpoint {got} hand {want}")
        for key, (num, den, factor) in RATES.items():
            d = h[den]
            want = None if not d else h[num] * factor / d
            got = r.get(key)
            if (want is None) != (got is None) or (
                want is not None and not math.isclose(got, want, rel_tol=1e-9)
            ):
                out.append(f"{h['code']} {key}: endpoint {got} hand {want}")
    return out


__all__ = ["stats", "Timing"]
