"""The lifecycle of a case: states, actions, who may do what, and the deadlines they set.

Pure: no database, no request. :func:`decide` takes the facts of a case, an action, the
actor's role, the action's inputs, the time and the county's limits and calendar, and
returns the :class:`Decision` (new state, column changes, event data) or raises an
:class:`~webapp.errors.AppError` with a stable code and a Chinese message. The
transition table (:data:`TRANSITIONS`) and the roles allowed each action
(:data:`ACTION_ROLES`) are data.

The path (《信访工作条例》): 登记 registered → 受理 accepted (or 不予受理) → 交办/转送 assigned
→ 受理告知、办理 in progress → 办结 concluded with a written opinion → 回访 follow-up →
化解 resolved → 销号 closed. Side paths: transfer, objection by the receiving body
(退回, within 5 working days), 督办/挂牌督办, one extension, mediation, escalation to
the next level, reopening, and the appeals 复查 then 复核, after which the same matter
is not accepted again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from webapp.auth.roles import Role
from webapp.cases import deadlines
from webapp.cases.deadlines import Limits
from webapp.cases.vocab import (
    FINAL_STATUSES,
    CaseClass,
    Opinion,
    ResolvedLevel,
    ReviewStage,
    Satisfaction,
    Status,
    Supervision,
)
from webapp.cases.workdays import WorkCalendar
from webapp.errors import AppError

S = Status


class Action(enum.StrEnum):
    REGISTER = "register"
    ACCEPT = "accept"
    NOT_ACCEPT = "not_accept"
    ASSIGN = "assign"
    TRANSFER = "transfer"
    OBJECT = "object"
    START = "start"
    SUPERVISE = "supervise"
    EXTEND = "extend"
    MEDIATE = "mediate"
    CONCLUDE = "conclude"
    FOLLOW_UP = "follow_up"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    ESCALATE = "escalate"
    REQUEST_REVIEW = "request_review"
    ANSWER_REVIEW = "answer_review"
    REQUEST_REEXAM = "request_reexam"
    ANSWER_REEXAM = "answer_reexam"
    SET_LEADER = "set_leader"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    Action.REGISTER: "登记",
    Action.ACCEPT: "受理",
    Action.NOT_ACCEPT: "不予受理",
    Action.ASSIGN: "交办/转送",
    Action.TRANSFER: "改派",
    Action.OBJECT: "异议退回",
    Action.START: "受理告知、开始办理",
    Action.SUPERVISE: "督办",
    Action.EXTEND: "延期",
    Action.MEDIATE: "调解/和解",
    Action.CONCLUDE: "办结",
    Action.FOLLOW_UP: "回访",
    Action.RESOLVE: "化解",
    Action.CLOSE: "销号",
    Action.REOPEN: "重新办理",
    Action.ESCALATE: "上报上级",
    Action.REQUEST_REVIEW: "申请复查",
    Action.ANSWER_REVIEW: "复查答复",
    Action.REQUEST_REEXAM: "申请复核",
    Action.ANSWER_REEXAM: "复核答复",
    Action.SET_LEADER: "设置包案领导",
}

_OPEN = (
    S.REGISTERED,
    S.ACCEPTED,
    S.ASSIGNED,
    S.IN_PROGRESS,
    S.CONCLUDED,
    S.REVIEWING,
    S.REEXAMINING,
)
_HANDLING = (S.REGISTERED, S.ACCEPTED, S.ASSIGNED, S.IN_PROGRESS, S.REVIEWING, S.REEXAMINING)

# action -> {from status: to status}. An action that leaves the status alone maps a
# status to itself. REGISTER has no "from": a case is born registered.
TRANSITIONS: dict[Action, dict[Status, Status]] = {
    Action.ACCEPT: {S.REGISTERED: S.ACCEPTED},
    Action.NOT_ACCEPT: {S.REGISTERED: S.NOT_ACCEPTED},
    Action.ASSIGN: {S.REGISTERED: S.ASSIGNED, S.ACCEPTED: S.ASSIGNED},
    Action.TRANSFER: {S.ASSIGNED: S.ASSIGNED, S.IN_PROGRESS: S.ASSIGNED},
    Action.OBJECT: {S.ASSIGNED: S.ACCEPTED},
    Action.START: {S.ASSIGNED: S.IN_PROGRESS},
    Action.SUPERVISE: {s: s for s in _HANDLING},
    Action.EXTEND: {S.IN_PROGRESS: S.IN_PROGRESS},
    Action.MEDIATE: {S.ASSIGNED: S.ASSIGNED, S.IN_PROGRESS: S.IN_PROGRESS},
    Action.CONCLUDE: {S.IN_PROGRESS: S.CONCLUDED},
    Action.FOLLOW_UP: {S.CONCLUDED: S.CONCLUDED},
    Action.RESOLVE: {S.CONCLUDED: S.RESOLVED},
    Action.CLOSE: {S.RESOLVED: S.CLOSED},
    Action.REOPEN: {
        S.NOT_ACCEPTED: S.REGISTERED,
        S.CONCLUDED: S.IN_PROGRESS,
        S.RESOLVED: S.IN_PROGRESS,
        S.CLOSED: S.IN_PROGRESS,
        S.ESCALATED: S.IN_PROGRESS,
    },
    Action.ESCALATE: {
        s: S.ESCALATED for s in (S.REGISTERED, S.ACCEPTED, S.ASSIGNED, S.IN_PROGRESS)
    },
    Action.REQUEST_REVIEW: {S.CONCLUDED: S.REVIEWING},
    Action.ANSWER_REVIEW: {S.REVIEWING: S.CONCLUDED},
    Action.REQUEST_REEXAM: {S.CONCLUDED: S.REEXAMINING},
    Action.ANSWER_REEXAM: {S.REEXAMINING: S.CONCLUDED},
    Action.SET_LEADER: {s: s for s in (*_OPEN, S.ESCALATED)},
}


def allowed_from(action: Action) -> frozenset[Status]:
    """The statuses in which ``action`` may be done (its rows of the transition table)."""
    return frozenset(TRANSITIONS[Action(action)])


_COUNTY = frozenset({Role.COUNTY_STAFF, Role.ADMIN})
_HANDLERS = _COUNTY | {Role.TOWNSHIP_LEADER, Role.LEADER_IN_CHARGE}
_FIELD = _HANDLERS | {Role.VILLAGE_INFORMANT, Role.GRID_WORKER}

# Who may do what. The petition bureau (county staff) runs the procedure; township
# leaders and leaders in charge handle and supervise what is theirs; grid workers and
# village informants mediate on the spot and make follow-up visits; planners only read.
ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.REGISTER: _COUNTY,
    Action.ACCEPT: _COUNTY,
    Action.NOT_ACCEPT: _COUNTY,
    Action.ASSIGN: _COUNTY,
    Action.TRANSFER: _COUNTY | {Role.TOWNSHIP_LEADER},
    Action.OBJECT: _COUNTY | {Role.TOWNSHIP_LEADER},
    Action.START: _HANDLERS,
    Action.SUPERVISE: _HANDLERS,
    Action.EXTEND: _HANDLERS,
    Action.MEDIATE: _FIELD,
    Action.CONCLUDE: _HANDLERS,
    Action.FOLLOW_UP: _FIELD,
    Action.RESOLVE: _HANDLERS,
    Action.CLOSE: _COUNTY,
    Action.REOPEN: _COUNTY,
    Action.ESCALATE: _COUNTY,
    Action.REQUEST_REVIEW: _COUNTY,
    Action.ANSWER_REVIEW: _COUNTY,
    Action.REQUEST_REEXAM: _COUNTY,
    Action.ANSWER_REEXAM: _COUNTY,
    Action.SET_LEADER: _COUNTY,
}

# Free-text limits of the inputs (characters).
NOTE_MAX = 2000
UNIT_MAX = 100


@dataclass(frozen=True)
class CaseFacts:
    """What the rules need to know about a case (taken from its row)."""

    status: Status
    reported_at: datetime
    case_class: CaseClass = CaseClass.REQUEST
    due_at: datetime | None = None
    accepted_at: datetime | None = None
    assigned_at: datetime | None = None
    assigned_level: str | None = None
    accused_unit: str | None = None
    answered_at: datetime | None = None
    extension_days: int = 0
    supervision: str | None = None
    review_stage: str | None = None
    satisfaction: str | None = None
    # The matter this case repeats has already been re-examined (复核): it is not
    # accepted again (第36条).
    repeat_of_final: bool = False


@dataclass(frozen=True)
class Decision:
    """The outcome of an allowed action: what to store and what to log."""

    action: Action
    from_status: Status
    to_status: Status
    changes: dict[str, Any]
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rules:
    """The county's limits and its working-day calendar."""

    limits: Limits
    calendar: WorkCalendar


# -- refusals --------------------------------------------------------------------


class Refused(AppError):
    """An action refused by the rules (a stable ``code``, a Chinese message)."""


def _refuse(code: str, message: str, status: int = 409, en: str = "") -> Refused:
    return Refused(code, message, status, en or code.replace("_", " "))


def _invalid(code: str, message: str, field_name: str) -> Refused:
    return Refused(code, message, 422, code.replace("_", " "), details={"field": field_name})


# -- checks that do not depend on the inputs -------------------------------------


def check(facts: CaseFacts, action: Action, role: Role, now: datetime, rules: Rules) -> Status:
    """Return the status ``action`` leads to, or raise why it may not be done now.

    Checks the role (403), the state (409) and the time windows and one-off rules
    (409); not the inputs (see :func:`decide`).
    """
    action = Action(action)
    if action is Action.REGISTER:
        raise _refuse("already_registered", "案件已登记")
    if role not in ACTION_ROLES[action]:
        raise _refuse(
            "action_forbidden_role",
            f"{Role(role).label}无权执行“{action.label}”",
            403,
            "this role may not do this action",
        )
    target = TRANSITIONS[action].get(facts.status)
    if target is None:
        raise _refuse(
            "action_not_allowed",
            f"案件当前状态为“{facts.status.label}”，不能执行“{action.label}”",
            409,
            "action not allowed in the current status",
        )
    limits, cal = rules.limits, rules.calendar
    if action is Action.ACCEPT and facts.repeat_of_final:
        raise _refuse(
            "matter_final",
            "该事项已经复核终结，对同一事实和理由的信访不再受理（《信访工作条例》第三十六条），请作“不予受理”处理",
        )
    if action is Action.OBJECT:
        if facts.assigned_at is None:
            raise _refuse("not_assigned", "案件尚未交办，无需退回")
        window = deadlines.workdays_limit(facts.assigned_at, limits.objection_workdays, cal)
        if now >= window:
            raise _refuse(
                "objection_too_late",
                f"异议须在交办后 {limits.objection_workdays} 个工作日内提出"
                f"（截至 {deadlines.last_day_of(window):%Y-%m-%d}），已超过期限",
            )
    if action is Action.EXTEND and facts.extension_days > 0:
        raise _refuse(
            "already_extended", "办理期限只能延长一次（《信访工作条例》第三十四条），本案已延期"
        )
    if action is Action.EXTEND and facts.due_at is None:
        raise _refuse("no_deadline", "本案当前没有办理期限，无需延期")
    if action is Action.RESOLVE:
        if facts.satisfaction is None:
            raise _refuse("follow_up_required", "化解前须先回访并记录群众满意度")
        if (
            facts.satisfaction == Satisfaction.DISSATISFIED
            and facts.review_stage != ReviewStage.REEXAMINED
        ):
            raise _refuse(
                "dissatisfied",
                "群众不满意，不能作化解处理：请继续办理、重新办理，或告知其申请复查、复核",
            )
    if action in (Action.REQUEST_REVIEW, Action.REQUEST_REEXAM):
        _check_appeal(facts, action, now, rules)
    if action is Action.SET_LEADER and facts.status in FINAL_STATUSES:  # pragma: no cover - table
        raise _refuse("action_not_allowed", "已办结销号的案件不能设置包案领导")
    return target


def _check_appeal(facts: CaseFacts, action: Action, now: datetime, rules: Rules) -> None:
    limits, cal = rules.limits, rules.calendar
    if facts.review_stage == ReviewStage.REEXAMINED:
        raise _refuse(
            "matter_final",
            "该事项已经复核终结，对同一事实和理由不再受理复查、复核（《信访工作条例》第三十六条）",
        )
    if action is Action.REQUEST_REVIEW:
        if facts.review_stage == ReviewStage.REVIEWED:
            raise _refuse("already_reviewed", "该事项已经复查，对复查意见不服的应申请复核")
        days = limits.review_request_days
        what = "处理意见书"
    else:
        if facts.review_stage != ReviewStage.REVIEWED:
            raise _refuse("review_first", "须先经复查，对复查意见不服的才可申请复核")
        days = limits.reexam_request_days
        what = "复查意见书"
    if facts.answered_at is None:
        raise _refuse("no_written_answer", f"尚未出具{what}")
    window = deadlines.days_limit(facts.answered_at, days, limits, cal)
    if now >= window:
        raise _refuse(
            "appeal_too_late",
            f"应自收到{what}之日起 {days} 日内提出（截至 {deadlines.last_day_of(window):%Y-%m-%d}），已超过期限",
        )


# The next step of the main path from each status (offered first).
NEXT_STEP: dict[Status, Action] = {
    S.REGISTERED: Action.ACCEPT,
    S.ACCEPTED: Action.ASSIGN,
    S.ASSIGNED: Action.START,
    S.IN_PROGRESS: Action.CONCLUDE,
    S.CONCLUDED: Action.FOLLOW_UP,
    S.RESOLVED: Action.CLOSE,
    S.REVIEWING: Action.ANSWER_REVIEW,
    S.REEXAMINING: Action.ANSWER_REEXAM,
}


def next_step(facts: CaseFacts) -> Action | None:
    """The main path's next action from the case's status (after a follow-up: resolve)."""
    if facts.status is S.CONCLUDED and facts.satisfaction is not None:
        return Action.RESOLVE
    return NEXT_STEP.get(facts.status)


def available(facts: CaseFacts, role: Role, now: datetime, rules: Rules) -> list[Action]:
    """The actions ``role`` may do on the case now (forms to offer): the next step first,
    then the others in table order."""
    out = []
    for action in TRANSITIONS:
        try:
            check(facts, action, role, now, rules)
        except Refused:
            continue
        out.append(action)
    main = next_step(facts)
    return sorted(out, key=lambda a: a is not main)


def open_windows(facts: CaseFacts, rules: Rules) -> dict[str, datetime]:
    """The time windows open on the case, by name, with when they close.

    ``objection``: the receiving body may object (assigned cases); ``review`` or
    ``reexam``: the petitioner may ask for a review or re-examination (concluded cases).
    """
    limits, cal = rules.limits, rules.calendar
    out: dict[str, datetime] = {}
    if facts.status is S.ASSIGNED and facts.assigned_at is not None:
        out["objection"] = deadlines.workdays_limit(
            facts.assigned_at, limits.objection_workdays, cal
        )
    if facts.status is S.CONCLUDED and facts.answered_at is not None:
        if facts.review_stage is None:
            out["review"] = deadlines.days_limit(
                facts.answered_at, limits.review_request_days, limits, cal
            )
        elif facts.review_stage == ReviewStage.REVIEWED:
            out["reexam"] = deadlines.days_limit(
                facts.answered_at, limits.reexam_request_days, limits, cal
            )
    return out


# -- inputs ------------------------------------------------------------------------


def _text(
    inputs: dict, name: str, label: str, required: bool = True, max_len: int = NOTE_MAX
) -> str:
    value = str(inputs.get(name) or "").strip()
    if required and not value:
        raise _invalid(f"{name}_required", f"请填写{label}", name)
    if len(value) > max_len:
        raise _invalid(f"{name}_too_long", f"{label}不能超过 {max_len} 个字", name)
    return value


def _choice(inputs: dict, name: str, label: str, enum_type: type[enum.StrEnum]) -> enum.StrEnum:
    value = str(inputs.get(name) or "").strip()
    try:
        return enum_type(value)
    except ValueError:
        raise _invalid(f"{name}_invalid", f"请选择{label}", name) from None


def _int(inputs: dict, name: str, label: str, lo: int, hi: int) -> int:
    try:
        value = int(str(inputs.get(name) or "").strip())
    except ValueError:
        raise _invalid(f"{name}_invalid", f"{label}应为整数", name) from None
    if not lo <= value <= hi:
        raise _invalid(f"{name}_out_of_range", f"{label}应在 {lo} 至 {hi} 之间", name)
    return value


# -- deciding ------------------------------------------------------------------------


def decide(
    facts: CaseFacts,
    action: Action | str,
    role: Role | str,
    inputs: dict,
    now: datetime,
    rules: Rules,
) -> Decision:
    """Decide ``action`` on a case with ``facts``; raise :class:`Refused` if it may not be done.

    ``inputs`` are the action's form fields (text); the returned ``changes`` are the
    case's columns to set, always including ``status`` and ``due_at``.
    """
    try:
        action = Action(action)
    except ValueError:
        raise _refuse("unknown_action", "未知的操作", 404) from None
    role = Role(role)
    target = check(facts, action, role, now, rules)
    limits, cal = rules.limits, rules.calendar
    changes: dict[str, Any] = {"status": target, "due_at": facts.due_at}
    data: dict[str, Any] = {}
    note = ""

    if action is Action.ACCEPT:
        changes["accepted_at"] = now
        changes["due_at"] = deadlines.days_limit(
            facts.reported_at, limits.register_assign_days, limits, cal
        )
        note = _text(inputs, "note", "受理意见", required=False)
    elif action is Action.NOT_ACCEPT:
        note = _text(inputs, "reason", "不予受理的理由")
        changes["due_at"] = None
    elif action in (Action.ASSIGN, Action.TRANSFER):
        unit = _text(inputs, "unit", "承办单位", max_len=UNIT_MAX)
        level = _choice(inputs, "level", "承办单位层级", ResolvedLevel)
        if level is ResolvedLevel.ABOVE:
            raise _invalid(
                "level_invalid", "交办对象应为本县村、乡镇或县级单位；报上级请用“上报上级”", "level"
            )
        if (
            facts.case_class == CaseClass.ACCUSATION
            and facts.accused_unit
            and (unit.replace(" ", "") == facts.accused_unit.replace(" ", ""))
        ):
            raise _invalid(
                "assign_to_accused",
                "检举控告类事项不得交由被检举控告的单位办理（《信访工作条例》第三十条）",
                "unit",
            )
        mode = "forward" if str(inputs.get("mode") or "") == "forward" else "assign"
        changes.update(
            assigned_at=now,
            assigned_unit=unit,
            assigned_level=level.value,
            due_at=deadlines.days_limit(now, limits.notify_days, limits, cal),
        )
        if facts.accepted_at is None and action is Action.ASSIGN:
            changes["accepted_at"] = now
        data = {"unit": unit, "level": level.value, "mode": mode}
        note = _text(inputs, "note", "交办意见", required=False)
    elif action is Action.OBJECT:
        note = _text(inputs, "reason", "异议理由")
        changes["due_at"] = deadlines.days_limit(now, limits.register_assign_days, limits, cal)
    elif action is Action.START:
        changes["due_at"] = deadlines.days_limit(now, limits.conclude_days, limits, cal)
        note = _text(inputs, "note", "告知情况", required=False)
    elif action is Action.SUPERVISE:
        kind = _choice(inputs, "kind", "督办方式", Supervision)
        if facts.supervision == Supervision.LISTED and kind is Supervision.SUPERVISED:
            kind = Supervision.LISTED  # a listed case stays listed
        changes["supervision"] = kind.value
        data = {"kind": kind.value}
        note = _text(inputs, "note", "督办要求")
    elif action is Action.EXTEND:
        days = _int(inputs, "days", "延长天数", 1, limits.extension_max_days)
        approver = _text(inputs, "approver", "批准人（本机关负责人）", max_len=UNIT_MAX)
        note = _text(inputs, "reason", "延期理由")
        changes["extension_days"] = days
        changes["due_at"] = deadlines.extended(facts.due_at, days, limits, cal)  # type: ignore[arg-type]
        data = {"days": days, "approver": approver, "petitioner_told": bool(inputs.get("told"))}
    elif action is Action.MEDIATE:
        note = _text(inputs, "agreement", "调解协议内容")
        data = {"parties": _text(inputs, "parties", "当事各方", max_len=500)}
    elif action is Action.CONCLUDE:
        opinion = _choice(inputs, "opinion", "处理意见", Opinion)
        note = _text(inputs, "text", "处理意见书内容")
        changes.update(opinion=opinion.value, concluded_at=now, answered_at=now, due_at=None)
        data = {"opinion": opinion.value}
    elif action is Action.FOLLOW_UP:
        sat = _choice(inputs, "satisfaction", "群众满意度", Satisfaction)
        method = "visit" if str(inputs.get("method") or "") == "visit" else "phone"
        note = _text(inputs, "note", "回访情况", required=False)
        changes["satisfaction"] = sat.value
        data = {"satisfaction": sat.value, "method": method}
    elif action is Action.RESOLVE:
        default = facts.assigned_level or ResolvedLevel.COUNTY.value
        level = _choice(
            {"level": inputs.get("level") or default}, "level", "化解层级", ResolvedLevel
        )
        changes.update(resolved_at=now, resolved_level=level.value, due_at=None)
        note = _text(inputs, "note", "化解情况", required=False)
        data = {"level": level.value}
    elif action is Action.CLOSE:
        note = _text(inputs, "note", "销号说明", required=False)
        changes["due_at"] = None
    elif action is Action.REOPEN:
        note = _text(inputs, "reason", "重新办理的理由")
        if target is S.REGISTERED:
            changes["due_at"] = deadlines.days_limit(now, limits.register_assign_days, limits, cal)
        else:
            changes["due_at"] = deadlines.days_limit(now, limits.conclude_days, limits, cal)
            changes.update(
                resolved_at=None, resolved_level=None, satisfaction=None, extension_days=0
            )
    elif action is Action.ESCALATE:
        to = _text(inputs, "to", "上报机关", max_len=UNIT_MAX)
        note = _text(inputs, "reason", "上报理由")
        changes["due_at"] = None
        data = {"to": to}
    elif action in (Action.REQUEST_REVIEW, Action.REQUEST_REEXAM):
        days = (
            limits.review_answer_days
            if action is Action.REQUEST_REVIEW
            else limits.reexam_answer_days
        )
        note = _text(inputs, "note", "申请事项和理由")
        changes["due_at"] = deadlines.days_limit(now, days, limits, cal)
    elif action in (Action.ANSWER_REVIEW, Action.ANSWER_REEXAM):
        opinion = _choice(inputs, "opinion", "意见", Opinion)
        note = _text(
            inputs, "text", "复查意见书内容" if action is Action.ANSWER_REVIEW else "复核意见书内容"
        )
        stage = ReviewStage.REVIEWED if action is Action.ANSWER_REVIEW else ReviewStage.REEXAMINED
        changes.update(
            opinion=opinion.value,
            answered_at=now,
            review_stage=stage.value,
            due_at=None,
            satisfaction=None,
        )
        data = {"opinion": opinion.value}
    elif action is Action.SET_LEADER:
        raw = str(inputs.get("leader_id") or "").strip()
        if raw in ("", "0"):
            changes["leader_id"] = None
        else:
            try:
                changes["leader_id"] = int(raw)
            except ValueError:
                raise _invalid("leader_id_invalid", "请选择包案领导", "leader_id") from None
        data = {"leader_id": changes["leader_id"]}
        note = _text(inputs, "note", "说明", required=False)
    return Decision(action, facts.status, target, changes, note, data)


def initial_due(reported_at: datetime, rules: Rules) -> datetime:
    """When a newly registered case must be assigned or forwarded (第22条)."""
    return deadlines.days_limit(
        reported_at, rules.limits.register_assign_days, rules.limits, rules.calendar
    )
