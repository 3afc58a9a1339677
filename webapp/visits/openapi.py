"""The OpenAPI description of ``/api/v1/visits`` (merged into ``/api/v1/openapi.json``).

What the phone's visit page and its outbox talk to (see docs/visits.md): the day's
stops, recording an outcome (once per client id), and a plan's progress. Every
operation accepts a bearer token, or the session cookie of a signed-in browser with
the ``X-CSRF-Token`` header on POST.
"""

from __future__ import annotations

from webapp.api.openapi import (
    BOOL,
    ERROR_RESPONSES,
    INT,
    NUM,
    STR,
    UUID,
    created_or_resent,
    error_response,
    json_response,
    query,
    ref,
    security_for,
)
from webapp.cases.vocab import Satisfaction
from webapp.visits import outcomes
from webapp.visits.models import STOP_STATES, LegKind, Outcome, PlanStatus, TargetKind

_ID = {"type": "integer", "format": "int64", "minimum": 1}
# The page sends its form's values as text (an empty text: not given); clients may
# send JSON numbers. ``nullable`` sits on a branch: OpenAPI 3.0 reads it only next
# to a ``type``.
_DECIMAL_TEXT = {"type": "string", "pattern": r"^\s*(-?[0-9]+(\.[0-9]+)?)?\s*$"}
_WHOLE_TEXT = {"type": "string", "pattern": r"^\s*([0-9]+)?\s*$"}


def _number_or_text(low: float, high: float) -> dict:
    return {
        "description": f"{low:g} 至 {high:g}；数字或数字文本 (a number, or the same as text)",
        "oneOf": [
            {"type": "number", "nullable": True, "minimum": low, "maximum": high},
            _DECIMAL_TEXT,
        ],
    }


def _whole_or_text(low: int, high: int, description: str, nullable: bool = False) -> dict:
    return {
        "description": f"{description}：{low} 至 {high} 的整数，或其文本",
        "oneOf": [
            {"type": "integer", "nullable": nullable, "minimum": low, "maximum": high},
            _WHOLE_TEXT,
        ],
    }


_COUNTS = ("total", "done", "nobody_home", "refused", "pending")


def components() -> dict:
    """The component schemas of the visits operations."""
    counts = {k: INT for k in _COUNTS}
    return {
        "NewVisitProblem": {
            "type": "object",
            "required": ["title", "category_id"],
            "properties": {
                "title": {"type": "string", "pattern": r"\S", "maxLength": outcomes.MAX_TITLE},
                "category_id": _whole_or_text(1, 2**31 - 1, "类别 id"),
                "description": {
                    "type": "string",
                    "nullable": True,
                    "maxLength": outcomes.MAX_DESCRIPTION,
                },
                "people_count": _whole_or_text(
                    1, outcomes.MAX_PEOPLE, "涉及人数（默认 1）", nullable=True
                ),
            },
        },
        "NewVisitOutcome": {
            "type": "object",
            "description": "未列出的字段被忽略 (other properties are ignored).",
            "required": ["client_id", "outcome"],
            "properties": {
                "client_id": {**UUID, "description": "手机生成的提交编号；重发同一编号只记录一次"},
                "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
                "satisfaction": {
                    "type": "string",
                    "nullable": True,
                    "enum": [s.value for s in Satisfaction],
                    "description": "回访完成（outcome=done 且为回访点）时必填，其他情况不填",
                },
                "note": {"type": "string", "nullable": True, "maxLength": outcomes.MAX_NOTE},
                "lon": _number_or_text(-180, 180),
                "lat": _number_or_text(-90, 90),
                "visited_at": {
                    "type": "string",
                    "nullable": True,
                    "description": "走访时间（ISO 8601）；手机时钟明显有误时按收到的时间",
                },
                "problem": {
                    **ref("NewVisitProblem"),
                    "description": "走访中发现的新问题：登记为新案件（编号由 client_id 派生，重发不重复登记）",
                },
            },
        },
        "VisitRecorded": {
            "type": "object",
            "required": [
                "visit_id",
                "stop_id",
                "created",
                "outcome",
                "new_case_number",
                "follow_up",
            ],
            "properties": {
                "visit_id": INT,
                "stop_id": INT,
                "created": {**BOOL, "description": "false：同一 client_id 此前已记录 (a resend)"},
                "outcome": {"type": "string", "enum": [o.value for o in Outcome]},
                "new_case_number": {**STR, "nullable": True},
                "follow_up": {
                    "type": "object",
                    "nullable": True,
                    "description": (
                        "回访点已走访时：是否按办理流程记入案件；未记入时给出原因（如案件状态已变）。"
                        "Whether a follow-up was recorded on the case, and if not, why."
                    ),
                    "required": ["applied", "code", "message"],
                    "properties": {
                        "applied": BOOL,
                        "code": {**STR, "nullable": True},
                        "message": {**STR, "nullable": True},
                    },
                },
            },
        },
        "VisitDay": {
            "type": "object",
            "required": ["day", "stops"],
            "properties": {
                "day": {"type": "string", "format": "date"},
                "stops": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "id",
                            "plan_id",
                            "seq",
                            "kind",
                            "follow_up",
                            "title",
                            "grid",
                            "lon",
                            "lat",
                            "leg_m",
                            "leg_kind",
                            "state",
                            "reasons",
                            "petitioner_name",
                            "petitioner_phone",
                        ],
                        "properties": {
                            "id": INT,
                            "plan_id": INT,
                            "seq": {**INT, "nullable": True},
                            "kind": {"type": "string", "enum": [k.value for k in TargetKind]},
                            "follow_up": BOOL,
                            "title": STR,
                            "grid": STR,
                            "lon": NUM,
                            "lat": NUM,
                            "leg_m": {
                                **NUM,
                                "nullable": True,
                                "description": "距上一站（或出发点）的路程，米",
                            },
                            "leg_kind": {
                                "type": "string",
                                "nullable": True,
                                "enum": [*(k.value for k in LegKind), None],
                                "description": "road：沿道路；straight：直线（无道路图层）；"
                                "no_path：道路不连通，按直线",
                            },
                            "state": {"type": "string", "enum": list(STOP_STATES)},
                            "reasons": {"type": "array", "items": STR},
                            "petitioner_name": {
                                **STR,
                                "nullable": True,
                                "description": "只对走访点的负责人在计划发布后显示全名，其余打码",
                            },
                            "petitioner_phone": {**STR, "nullable": True},
                        },
                    },
                },
            },
        },
        "PlanProgress": {
            "type": "object",
            "required": ["plan_id", "status", "version", "people", "totals"],
            "properties": {
                "plan_id": INT,
                "status": {"type": "string", "enum": [s.value for s in PlanStatus]},
                "version": INT,
                "people": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["user_id", "name", *_COUNTS, "distance_m"],
                        "properties": {"user_id": INT, "name": STR, **counts, "distance_m": NUM},
                    },
                },
                "totals": {"type": "object", "required": list(_COUNTS), "properties": counts},
            },
        },
    }


def paths() -> dict:
    """The path items of ``/api/v1/visits``."""
    not_found = error_response("不存在，或不是本人可见的 (not found or out of scope)")
    return {
        "/visits/today": {
            "get": {
                "operationId": "visitsToday",
                "summary": "本人某天（默认今天）已发布计划上的走访点，按路线顺序 (my stops of a day)",
                "description": "查看到的信访人联系方式记入审计日志 (view_visit_contacts)。",
                "security": security_for("GET"),
                "parameters": [
                    query(
                        "day",
                        "日期 YYYY-MM-DD（默认今天，北京时间）",
                        {"type": "string", "format": "date"},
                    ),
                ],
                "responses": {
                    "200": json_response("走访点", "VisitDay"),
                    **ERROR_RESPONSES,
                },
            }
        },
        "/visits/stops/{stop_id}/outcomes": {
            "post": {
                "operationId": "recordVisitOutcome",
                "summary": "记录一次走访结果（按 client_id 幂等）(record an outcome, idempotent)",
                "description": (
                    "只有走访点的负责人、且计划已发布时可记录。回访完成时按办理流程记录回访"
                    "（与案件页的“回访”同一规则；规则不允许时走访照常记录，follow_up 说明原因）；"
                    "发现新问题时登记新案件。首次 201，重发 200。"
                ),
                "security": security_for("POST"),
                "parameters": [{"name": "stop_id", "in": "path", "required": True, "schema": _ID}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewVisitOutcome")}},
                },
                "responses": {
                    **created_or_resent("VisitRecorded", "已记录", "此前已记录（重发）"),
                    **ERROR_RESPONSES,
                    "404": not_found,
                    "409": error_response("client_id 已用于其他记录 (client_id_reused)"),
                    "413": error_response("请求体过大 (payload too large)"),
                    "422": error_response("新问题的位置不在本县 (outside_county)"),
                },
            }
        },
        "/visits/plans/{plan_id}/progress": {
            "get": {
                "operationId": "visitPlanProgress",
                "summary": "走访计划的进度：每人已走访、无人在家、拒绝、待走访 (a plan's progress)",
                "description": "研判人员、县信访局、管理员，及本乡镇的乡镇领导可看。",
                "security": security_for("GET"),
                "parameters": [{"name": "plan_id", "in": "path", "required": True, "schema": _ID}],
                "responses": {
                    "200": json_response("进度", "PlanProgress"),
                    **ERROR_RESPONSES,
                    "404": not_found,
                },
            }
        },
    }
