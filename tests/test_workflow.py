"""The lifecycle rules and deadlines, without a database: every action from every status
for every role, the time windows at their edges, working days across holidays."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from webapp.auth.roles import Role
from webapp.cases import deadlines
from webapp.cases.deadlines import LOCAL_TZ, Limits, limits_for
from webapp.cases.vocab import CaseClass, Status
from webapp.cases.workdays import WorkCalendar, national_calendar
from webapp.cases.workflow import Action, CaseFacts, Refused, Rules, available, decide, open_windows

CAL = national_calendar()
RULES = Rules(Limits(), CAL)


def at(y, m, d, hh=10, mm=0, ss=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=LOCAL_TZ)


NOW = at(2025, 6, 10)

# The lifecycle as the regulation and domain.md describe it, written out by hand
# (not derived from the code): (action, from) -> to.
EXPECTED = {
    ("accept", "registered"): "accepted",
    ("not_accept", "registered"): "not_accepted",
    ("assign", "registered"): "assigned",
    ("assign", "accepted"): "assigned",
    ("transfer", "assigned"): "assigned",
    ("transfer", "in_progress"): "assigned",
    ("object", "assigned"): "accepted",
    ("start", "assigned"): "in_progress",
    ("extend", "in_progress"): "in_progress",
    ("mediate", "assigned"): "assigned",
    ("mediate", "in_progress"): "in_progress",
    ("conclude", "in_progress"): "concluded",
    ("follow_up", "concluded"): "concluded",
    ("resolve", "concluded"): "resolved",
    ("close", "resolved"): "closed",
    ("reopen", "not_accepted"): "registered",
    ("reopen", "concluded"): "in_progress",
    ("reopen", "resolved"): "in_progress",
    ("reopen", "closed"): "in_progress",
    ("reopen", "escalated"): "in_progress",
    ("escalate", "registered"): "escalated",
    ("escalate", "accepted"): "escalated",
    ("escalate", "assigned"): "escalated",
    ("escalate", "in_progress"): "escalated",
    ("request_review", "concluded"): "reviewing",
    ("answer_review", "reviewing"): "concluded",
    ("request_reexam", "concluded"): "reexamining",
    ("answer_reexam", "reexamining"): "concluded",
}
for _s in ("registered", "accepted", "assigned", "in_progress", "reviewing", "reexamining"):
    EXPECTED[("supervise", _s)] = _s
for _s in (
    "registered",
    "accepted",
    "assigned",
    "in_progress",
    "concluded",
    "reviewing",
    "reexamining",
    "escalated",
):
    EXPECTED[("set_leader", _s)] = _s

COUNTY = {"county_staff", "admin"}
HANDLERS = COUNTY | {"township_leader", "leader_in_charge"}
FIELD = HANDLERS | {"grid_worker", "village_informant"}
EXPECTED_ROLES = {
    "accept": COUNTY,
    "not_accept": COUNTY,
    "assign": COUNTY,
    "close": COUNTY,
    "reopen": COUNTY,
    "escalate": COUNTY,
    "request_review": COUNTY,
    "answer_review": COUNTY,
    "request_reexam": COUNTY,
    "answer_reexam": COUNTY,
    "set_leader": COUNTY,
    "transfer": COUNTY | {"township_leader"},
    "object": COUNTY | {"township_leader"},
    "start": HANDLERS,
    "supervise": HANDLERS,
    "extend": HANDLERS,
    "conclude": HANDLERS,
    "resolve": HANDLERS,
    "mediate": FIELD,
    "follow_up": FIELD,
}

VALID_INPUTS = {
    "accept": {},
    "not_accept": {"reason": "属于诉讼程序，已告知依法途径"},
    "assign": {"unit": "城关镇人民政府", "level": "township"},
    "transfer": {"unit": "县人社局", "level": "county"},
    "object": {"reason": "不属于本单位职责"},
    "start": {},
    "supervise": {"kind": "supervised", "note": "三日内报告进展"},
    "extend": {"days": "30", "approver": "李局长", "reason": "需现场勘测"},
    "mediate": {"parties": "甲、乙两户", "agreement": "乙户三日内拆除围墙"},
    "conclude": {"opinion": "support", "text": "予以补发"},
    "follow_up": {"satisfaction": "satisfied"},
    "resolve": {},
    "close": {},
    "reopen": {"reason": "群众反映未落实"},
    "escalate": {"to": "市信访局", "reason": "涉及跨县事项"},
    "request_review": {"note": "对处理意见不服"},
    "answer_review": {"opinion": "explain", "text": "维持原处理意见"},
    "request_reexam": {"note": "对复查意见不服"},
    "answer_reexam": {"opinion": "explain", "text": "维持复查意见"},
    "set_leader": {"leader_id": "7"},
}


def facts_for(action: str, status: str, **kw) -> CaseFacts:
    """Facts that meet every precondition of ``action`` except the status."""
    base = dict(
        status=Status(status),
        reported_at=NOW - timedelta(days=5),
        due_at=NOW + timedelta(days=10),
        accepted_at=NOW - timedelta(days=4),
        assigned_at=NOW - timedelta(hours=3),
        assigned_level="township",
        answered_at=NOW - timedelta(days=2),
        satisfaction="satisfied",
        review_stage="reviewed" if action == "request_reexam" else None,
    )
    base.update(kw)
    return CaseFacts(**base)


ALL = [(a.value, s.value) for a in Action if a is not Action.REGISTER for s in Status]


@pytest.mark.parametrize(("action", "status"), ALL, ids=[f"{a}-{s}" for a, s in ALL])
def test_every_action_from_every_status(action, status):
    facts = facts_for(action, status)
    expected = EXPECTED.get((action, status))
    if expected is None:
        with pytest.raises(Refused) as exc:
            decide(facts, action, Role.COUNTY_STAFF, VALID_INPUTS[action], NOW, RULES)
        assert exc.value.code == "action_not_allowed" and exc.value.status == 409
        assert Status(status).label in exc.value.message  # says which status it is in, in Chinese
    else:
        d = decide(facts, action, Role.COUNTY_STAFF, VALID_INPUTS[action], NOW, RULES)
        assert (d.from_status.value, d.to_status.value) == (status, expected)
        assert d.changes["status"] == expected


ROLE_CASES = [(a, r.value) for a in EXPECTED_ROLES for r in Role]


@pytest.mark.parametrize(("action", "role"), ROLE_CASES, ids=[f"{a}-{r}" for a, r in ROLE_CASES])
def test_who_may_do_what(action, role):
    status = next(s for (a, s) in EXPECTED if a == action)
    facts = facts_for(action, status)
    if role in EXPECTED_ROLES[action]:
        decide(facts, action, role, VALID_INPUTS[action], NOW, RULES)
    else:
        with pytest.raises(Refused) as exc:
            decide(facts, action, role, VALID_INPUTS[action], NOW, RULES)
        assert exc.value.code == "action_forbidden_role" and exc.value.status == 403


def test_planners_can_do_nothing_and_field_roles_little():
    facts = facts_for("follow_up", "concluded")
    assert available(facts, Role.PLANNER, NOW, RULES) == []
    assert available(facts, Role.GRID_WORKER, NOW, RULES) == [Action.FOLLOW_UP]
    assert Action.SET_LEADER in available(facts, Role.COUNTY_STAFF, NOW, RULES)


def test_the_next_step_is_offered_first():
    assert (
        available(facts_for("start", "assigned"), Role.COUNTY_STAFF, NOW, RULES)[0] is Action.START
    )
    assert (
        available(facts_for("accept", "registered"), Role.COUNTY_STAFF, NOW, RULES)[0]
        is Action.ACCEPT
    )
    concluded = facts_for("resolve", "concluded", satisfaction=None)
    assert available(concluded, Role.ADMIN, NOW, RULES)[0] is Action.FOLLOW_UP
    followed = facts_for("resolve", "concluded", satisfaction="satisfied")
    assert available(followed, Role.ADMIN, NOW, RULES)[0] is Action.RESOLVE
    assert available(facts_for("reopen", "escalated"), Role.ADMIN, NOW, RULES) == [
        Action.REOPEN,
        Action.SET_LEADER,
    ]


def test_unknown_action_and_register_again():
    with pytest.raises(Refused) as exc:
        decide(facts_for("accept", "registered"), "approve_everything", Role.ADMIN, {}, NOW, RULES)
    assert exc.value.code == "unknown_action"
    with pytest.raises(Refused) as exc:
        decide(facts_for("accept", "registered"), "register", Role.ADMIN, {}, NOW, RULES)
    assert exc.value.code == "already_registered"


# -- inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status", "inputs", "code"),
    [
        ("not_accept", "registered", {"reason": "  "}, "reason_required"),
        ("assign", "accepted", {"unit": "", "level": "township"}, "unit_required"),
        ("assign", "accepted", {"unit": "镇政府", "level": "moon"}, "level_invalid"),
        ("assign", "accepted", {"unit": "镇政府", "level": "above"}, "level_invalid"),
        ("assign", "accepted", {"unit": "x" * 101, "level": "county"}, "unit_too_long"),
        ("conclude", "in_progress", {"opinion": "maybe", "text": "x"}, "opinion_invalid"),
        ("conclude", "in_progress", {"opinion": "support", "text": ""}, "text_required"),
        ("follow_up", "concluded", {"satisfaction": ""}, "satisfaction_invalid"),
        (
            "extend",
            "in_progress",
            {"days": "31", "approver": "李", "reason": "r"},
            "days_out_of_range",
        ),
        (
            "extend",
            "in_progress",
            {"days": "0", "approver": "李", "reason": "r"},
            "days_out_of_range",
        ),
        ("extend", "in_progress", {"days": "ten", "approver": "李", "reason": "r"}, "days_invalid"),
        (
            "extend",
            "in_progress",
            {"days": "10", "approver": "", "reason": "r"},
            "approver_required",
        ),
        (
            "extend",
            "in_progress",
            {"days": "10", "approver": "李", "reason": ""},
            "reason_required",
        ),
        ("mediate", "in_progress", {"parties": "甲乙", "agreement": ""}, "agreement_required"),
        ("escalate", "assigned", {"to": "", "reason": "r"}, "to_required"),
        ("supervise", "assigned", {"kind": "loud", "note": "x"}, "kind_invalid"),
        ("set_leader", "assigned", {"leader_id": "abc"}, "leader_id_invalid"),
        ("reopen", "closed", {"reason": "x" * 2001}, "reason_too_long"),
    ],
)
def test_bad_inputs_are_refused_with_a_field(action, status, inputs, code):
    with pytest.raises(Refused) as exc:
        decide(facts_for(action, status), action, Role.COUNTY_STAFF, inputs, NOW, RULES)
    assert exc.value.code == code and exc.value.status == 422
    assert exc.value.details["field"]


def test_an_accusation_is_never_assigned_to_the_accused():
    facts = facts_for(
        "assign", "accepted", case_class=CaseClass.ACCUSATION, accused_unit="城关镇 国土所"
    )
    with pytest.raises(Refused) as exc:
        decide(
            facts,
            "assign",
            Role.COUNTY_STAFF,
            {"unit": "城关镇国土所", "level": "township"},
            NOW,
            RULES,
        )
    assert exc.value.code == "assign_to_accused" and "第三十条" in exc.value.message
    d = decide(
        facts, "assign", Role.COUNTY_STAFF, {"unit": "县纪委监委", "level": "county"}, NOW, RULES
    )
    assert d.changes["assigned_unit"] == "县纪委监委"


def test_resolving_needs_a_satisfied_follow_up():
    with pytest.raises(Refused) as exc:
        decide(
            facts_for("resolve", "concluded", satisfaction=None),
            "resolve",
            Role.ADMIN,
            {},
            NOW,
            RULES,
        )
    assert exc.value.code == "follow_up_required"
    with pytest.raises(Refused) as exc:
        decide(
            facts_for("resolve", "concluded", satisfaction="dissatisfied"),
            "resolve",
            Role.ADMIN,
            {},
            NOW,
            RULES,
        )
    assert exc.value.code == "dissatisfied"
    # After re-examination the matter ends even if the petitioner is still dissatisfied.
    d = decide(
        facts_for("resolve", "concluded", satisfaction="dissatisfied", review_stage="reexamined"),
        "resolve",
        Role.ADMIN,
        {},
        NOW,
        RULES,
    )
    assert d.changes["resolved_level"] == "township"  # defaults to the level it was assigned to
    d = decide(
        facts_for("resolve", "concluded", satisfaction="basically"),
        "resolve",
        Role.ADMIN,
        {"level": "village"},
        NOW,
        RULES,
    )
    assert (
        d.changes["resolved_level"] == "village"
        and d.changes["resolved_at"] == NOW
        and d.changes["due_at"] is None
    )


def test_extension_once_at_most_thirty_days():
    due = at(2025, 7, 1, 0, 0)  # the period's last day is 30 June
    facts = facts_for("extend", "in_progress", due_at=due)
    d = decide(
        facts,
        "extend",
        Role.LEADER_IN_CHARGE,
        {"days": "30", "approver": "王主任", "reason": "需鉴定"},
        NOW,
        RULES,
    )
    assert d.changes["extension_days"] == 30
    assert deadlines.last_day_of(d.changes["due_at"]) == date(2025, 7, 30)
    assert d.data["approver"] == "王主任"
    with pytest.raises(Refused) as exc:
        decide(
            facts_for("extend", "in_progress", extension_days=30),
            "extend",
            Role.ADMIN,
            VALID_INPUTS["extend"],
            NOW,
            RULES,
        )
    assert exc.value.code == "already_extended"
    with pytest.raises(Refused) as exc:
        decide(
            facts_for("extend", "in_progress", due_at=None),
            "extend",
            Role.ADMIN,
            VALID_INPUTS["extend"],
            NOW,
            RULES,
        )
    assert exc.value.code == "no_deadline"
    assert Action.EXTEND not in available(
        facts_for("extend", "in_progress", extension_days=10), Role.ADMIN, NOW, RULES
    )


def test_listed_supervision_stays_listed():
    d = decide(
        facts_for("supervise", "assigned"),
        "supervise",
        Role.ADMIN,
        {"kind": "listed", "note": "挂牌"},
        NOW,
        RULES,
    )
    assert d.changes["supervision"] == "listed"
    d = decide(
        facts_for("supervise", "assigned", supervision="listed"),
        "supervise",
        Role.ADMIN,
        {"kind": "supervised", "note": "再督办"},
        NOW,
        RULES,
    )
    assert d.changes["supervision"] == "listed"


# -- appeals: review, re-examination, and then no more --------------------------------


def test_review_then_reexamination_then_refused():
    answered = at(2025, 5, 20, 15)
    f = facts_for("request_review", "concluded", answered_at=answered, review_stage=None)
    assert (
        decide(f, "request_review", Role.COUNTY_STAFF, {"note": "不服"}, NOW, RULES).to_status
        is Status.REVIEWING
    )
    with pytest.raises(Refused) as exc:
        decide(
            facts_for("request_reexam", "concluded", review_stage=None),
            "request_reexam",
            Role.ADMIN,
            {"note": "x"},
            NOW,
            RULES,
        )
    assert exc.value.code == "review_first"
    d = decide(
        facts_for("answer_review", "reviewing"),
        "answer_review",
        Role.ADMIN,
        VALID_INPUTS["answer_review"],
        NOW,
        RULES,
    )
    assert d.changes["review_stage"] == "reviewed" and d.changes["answered_at"] == NOW
    with pytest.raises(Refused) as exc:
        decide(
            facts_for("request_review", "concluded", review_stage="reviewed"),
            "request_review",
            Role.ADMIN,
            {"note": "x"},
            NOW,
            RULES,
        )
    assert exc.value.code == "already_reviewed"
    d = decide(
        facts_for("answer_reexam", "reexamining"),
        "answer_reexam",
        Role.ADMIN,
        VALID_INPUTS["answer_reexam"],
        NOW,
        RULES,
    )
    assert d.changes["review_stage"] == "reexamined"
    for action in ("request_review", "request_reexam"):
        with pytest.raises(Refused) as exc:
            decide(
                facts_for(action, "concluded", review_stage="reexamined"),
                action,
                Role.ADMIN,
                {"note": "x"},
                NOW,
                RULES,
            )
        assert exc.value.code == "matter_final" and "第三十六条" in exc.value.message
    # A new petition on a matter already re-examined is not accepted again.
    with pytest.raises(Refused) as exc:
        decide(
            facts_for("accept", "registered", repeat_of_final=True),
            "accept",
            Role.ADMIN,
            {},
            NOW,
            RULES,
        )
    assert exc.value.code == "matter_final"
    decide(
        facts_for("not_accept", "registered", repeat_of_final=True),
        "not_accept",
        Role.ADMIN,
        VALID_INPUTS["not_accept"],
        NOW,
        RULES,
    )


def test_review_window_edges():
    answered = at(2025, 3, 3, 9)  # 30 days from 3 March: last day 2 April (a Wednesday)
    f = facts_for("request_review", "concluded", answered_at=answered, review_stage=None)
    decide(f, "request_review", Role.ADMIN, {"note": "x"}, at(2025, 4, 2, 23, 59, 59), RULES)
    with pytest.raises(Refused) as exc:
        decide(f, "request_review", Role.ADMIN, {"note": "x"}, at(2025, 4, 3, 0, 0, 0), RULES)
    assert exc.value.code == "appeal_too_late" and "2025-04-02" in exc.value.message
    d = decide(f, "request_review", Role.ADMIN, {"note": "x"}, at(2025, 3, 20), RULES)
    assert deadlines.last_day_of(d.changes["due_at"]) == date(
        2025, 4, 21
    )  # 19 Apr is a Saturday: 30 days, rolled
    # 30 days after 20 March is 19 April (Saturday) -> the next working day, Monday 21 April.


# -- deadlines ---------------------------------------------------------------------


def test_registration_deadline_and_overdue_at_the_edge():
    reported = at(2025, 3, 3, 10)
    d = decide(
        facts_for("accept", "registered", reported_at=reported),
        "accept",
        Role.ADMIN,
        {},
        NOW,
        RULES,
    )
    due = d.changes["due_at"]
    assert deadlines.last_day_of(due) == date(2025, 3, 18)
    limits = Limits()
    assert deadlines.urgency(due, at(2025, 3, 18, 23, 59, 59), limits) == "due_soon"
    assert deadlines.urgency(due, at(2025, 3, 19, 0, 0, 0), limits) == "overdue"
    assert (
        deadlines.urgency(due, at(2025, 3, 16, 0, 0, 0), limits) == "due_soon"
    )  # exactly 3 days before
    assert deadlines.urgency(due, at(2025, 3, 15, 23, 59, 59), limits) is None
    assert deadlines.urgency(None, NOW, limits) is None


def test_a_period_ending_in_a_holiday_ends_on_the_next_working_day():
    # 15 days after 16 Sep 2025 is 1 Oct: National Day holiday until 8 Oct -> 9 Oct.
    due = deadlines.days_limit(at(2025, 9, 16), 15, Limits(), CAL)
    assert deadlines.last_day_of(due) == date(2025, 10, 9)
    no_roll = Limits(roll_to_workday=False)
    assert deadlines.last_day_of(deadlines.days_limit(at(2025, 9, 16), 15, no_roll, CAL)) == date(
        2025, 10, 1
    )
    # A period ending on a make-up Saturday (11 Oct 2025 is a working day) is not moved.
    assert deadlines.last_day_of(deadlines.days_limit(at(2025, 9, 26), 15, Limits(), CAL)) == date(
        2025, 10, 11
    )


def test_objection_window_counts_working_days_across_a_holiday():
    # Assigned Fri 26 Sep 2025: Sun 28 Sep is a make-up working day; 1-8 Oct are off.
    # Working days: 28, 29, 30 Sep, 9, 10 Oct -> the window ends with 10 Oct.
    assigned = at(2025, 9, 26, 16)
    f = facts_for("object", "assigned", assigned_at=assigned)
    decide(
        f,
        "object",
        Role.TOWNSHIP_LEADER,
        {"reason": "非本单位职责"},
        at(2025, 10, 10, 23, 59, 59),
        RULES,
    )
    with pytest.raises(Refused) as exc:
        decide(
            f,
            "object",
            Role.TOWNSHIP_LEADER,
            {"reason": "非本单位职责"},
            at(2025, 10, 11, 0, 0),
            RULES,
        )
    assert exc.value.code == "objection_too_late" and "2025-10-10" in exc.value.message
    assert Action.OBJECT not in available(f, Role.TOWNSHIP_LEADER, at(2025, 10, 11, 8), RULES)


def test_a_make_up_saturday_counts_as_a_working_day():
    # From Thu 9 Oct 2025: Fri 10, Sat 11 (make-up), Mon 13, Tue 14, Wed 15.
    assert CAL.add_workdays(date(2025, 10, 9), 5) == date(2025, 10, 15)
    plain = WorkCalendar(frozenset(), frozenset(), frozenset())
    assert plain.add_workdays(date(2025, 10, 9), 5) == date(2025, 10, 16)
    assert CAL.is_workday(date(2025, 9, 28)) and not CAL.is_workday(date(2025, 10, 1))
    assert CAL.add_workdays(date(2025, 10, 9), 0) == date(2025, 10, 9)


def test_years_beyond_the_official_data_count_weekends_only_and_say_so():
    last = max(CAL.known_years)
    beyond = date(last + 1, 1, 1)
    assert not CAL.known(beyond) and CAL.known(date(last, 6, 1))
    # 1 January of an unknown year is counted as a working day if it is a weekday...
    assert CAL.is_workday(beyond) == (beyond.weekday() < 5)
    # ...until the county enters the State Council's notice as overrides.
    cal = national_calendar({beyond.isoformat(): "holiday", "2025-10-01": "workday"})
    assert not cal.is_workday(beyond) and cal.known(beyond)
    assert cal.is_workday(date(2025, 10, 1))
    with pytest.raises(ValueError):
        national_calendar({"2027-01-01": "day off"})


def test_assignment_and_start_set_their_own_deadlines():
    now = at(2025, 6, 10, 9)
    d = decide(
        facts_for("assign", "accepted"),
        "assign",
        Role.ADMIN,
        {"unit": "城关镇", "level": "township", "mode": "forward"},
        now,
        RULES,
    )
    assert deadlines.last_day_of(d.changes["due_at"]) == date(2025, 6, 25)  # 15 days to notify
    assert d.data["mode"] == "forward" and d.changes["assigned_at"] == now
    d = decide(facts_for("start", "assigned"), "start", Role.TOWNSHIP_LEADER, {}, now, RULES)
    assert deadlines.last_day_of(d.changes["due_at"]) == date(
        2025, 8, 11
    )  # 9 Aug (Sat) + roll -> Mon 11 Aug
    d = decide(
        facts_for("conclude", "in_progress"),
        "conclude",
        Role.ADMIN,
        VALID_INPUTS["conclude"],
        now,
        RULES,
    )
    assert (
        d.changes["due_at"] is None
        and d.changes["opinion"] == "support"
        and d.changes["answered_at"] == now
    )
    d = decide(facts_for("reopen", "closed"), "reopen", Role.ADMIN, {"reason": "反复"}, now, RULES)
    assert d.changes["satisfaction"] is None and d.changes["extension_days"] == 0


def test_limits_are_configurable_per_county():
    config = {"default": {"conclude_days": 45}, "430121": {"register_assign_days": 3}}
    changsha = limits_for(config, "430121")
    assert changsha.register_assign_days == 3 and changsha.conclude_days == 45
    assert limits_for(config, "410726").register_assign_days == 15
    with pytest.raises(ValueError):
        limits_for({"default": {"conclude_dayz": 1}}, "410726")
    with pytest.raises(ValueError):
        Limits(notify_days=-1)
    rules = Rules(changsha, CAL)
    d = decide(
        facts_for("accept", "registered", reported_at=at(2025, 6, 2)),
        "accept",
        Role.ADMIN,
        {},
        NOW,
        rules,
    )
    assert deadlines.last_day_of(d.changes["due_at"]) == date(2025, 6, 5)


def test_open_windows_name_their_last_day():
    assigned = facts_for("object", "assigned", assigned_at=at(2025, 9, 26, 16))
    assert deadlines.last_day_of(open_windows(assigned, RULES)["objection"]) == date(2025, 10, 10)
    concluded = facts_for(
        "request_review", "concluded", answered_at=at(2025, 3, 3, 9), review_stage=None
    )
    assert deadlines.last_day_of(open_windows(concluded, RULES)["review"]) == date(2025, 4, 2)
    reviewed = facts_for("request_reexam", "concluded", answered_at=at(2025, 3, 3, 9))
    assert set(open_windows(reviewed, RULES)) == {"reexam"}
    final = facts_for("request_review", "concluded", review_stage="reexamined")
    assert open_windows(final, RULES) == {}
    assert open_windows(facts_for("start", "in_progress"), RULES) == {}
