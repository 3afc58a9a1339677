"""The OpenAPI description of ``/api/v1/field`` (merged into ``/api/v1/openapi.json``).

What the phone's report page and its queue talk to (see docs/field.md), described for
machine clients too: every operation accepts a bearer token, or the session cookie of
a signed-in browser with the ``X-CSRF-Token`` header on POST.
"""

from __future__ import annotations

from webapp.api.openapi import (
    BOOL,
    ERROR_RESPONSES,
    INT,
    STR,
    UUID,
    created_or_resent,
    error_response,
    json_response,
    query,
    ref,
    security_for,
)
from webapp.field import schemas

_FIELD_ROLES = "网格员、村(社区)信访信息员、乡镇领导、县信访局可用，其他角色 403 forbidden_role。"
_ID = {"type": "integer", "format": "int64", "minimum": 1}
# Numbers in JSON; the parser refuses anything else (also true/false).
_COORD = {"type": "number"}
_NAMED = {"type": "object", "required": ["name"], "properties": {"name": STR}}


def components() -> dict:
    """The component schemas of the field operations."""
    photo = {
        "type": "object",
        "required": [
            "id",
            "case_id",
            "client_photo_id",
            "width",
            "height",
            "size_bytes",
            "sha256",
            "url",
            "thumb_url",
        ],
        "properties": {
            "id": INT,
            "case_id": INT,
            "client_photo_id": UUID,
            "width": INT,
            "height": INT,
            "size_bytes": INT,
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "url": STR,
            "thumb_url": STR,
            "created": {**BOOL, "description": "false：同一 client_photo_id 已上传过 (a resend)"},
        },
    }
    return {
        "FieldSession": {
            "type": "object",
            "required": ["user", "csrf_token"],
            "properties": {
                "user": {
                    "type": "object",
                    "required": ["username", "display_name", "role", "area_code"],
                    "properties": {
                        "username": STR,
                        "display_name": STR,
                        "role": STR,
                        "area_code": STR,
                    },
                },
                "csrf_token": {
                    **STR,
                    "nullable": True,
                    "description": "本会话的 CSRF 令牌（POST 时放在 X-CSRF-Token 头）；以令牌认证时为 null。",
                },
            },
        },
        "GridOutlines": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {
                    "type": "array",
                    "maxItems": 300,
                    "items": {
                        "type": "object",
                        "required": ["type", "geometry", "properties"],
                        "properties": {
                            "type": {"type": "string", "enum": ["Feature"]},
                            "geometry": ref("MultiPolygon"),
                            "properties": {
                                "type": "object",
                                "required": ["code", "name", "village", "township", "own"],
                                "properties": {
                                    "code": STR,
                                    "name": STR,
                                    "village": STR,
                                    "township": STR,
                                    "own": {**BOOL, "description": "本人负责的网格"},
                                },
                            },
                        },
                    },
                },
            },
        },
        "NewFieldReport": {
            "type": "object",
            "description": "未列出的字段被忽略 (other properties are ignored).",
            "required": ["client_id", "category_id", "description", "lon", "lat"],
            "properties": {
                "client_id": {
                    **UUID,
                    "description": "手机生成的上报编号；重发同一编号返回同一案件",
                },
                "category_id": {
                    "description": "类别 id（数字或数字字符串）",
                    "oneOf": [
                        {"type": "integer", "minimum": 0},
                        {"type": "string", "pattern": "^[0-9]+$"},
                    ],
                },
                "description": {
                    "type": "string",
                    "pattern": r"\S",
                    "maxLength": schemas.MAX_DESCRIPTION,
                },
                "title": {"type": "string", "nullable": True, "maxLength": schemas.MAX_TITLE},
                "people_count": {
                    "type": "integer",
                    "nullable": True,
                    "minimum": 1,
                    "maximum": schemas.MAX_PEOPLE,
                },
                "lon": {**_COORD, "minimum": -180, "maximum": 180},
                "lat": {**_COORD, "minimum": -90, "maximum": 90},
                "accuracy_m": {
                    **_COORD,
                    "nullable": True,
                    "minimum": 0,
                    "maximum": schemas.MAX_ACCURACY_M,
                },
                "location_adjusted": {**BOOL, "description": "true：用户在地图上改过位置"},
                "petitioner_name": {
                    "type": "string",
                    "nullable": True,
                    "maxLength": schemas.MAX_NAME,
                },
                "petitioner_phone": {"type": "string", "nullable": True, "maxLength": 32},
                "reported_at": {
                    "type": "string",
                    "description": "手机上填写的时间（ISO 8601，带时区）；不可信时按收到的时间",
                },
            },
        },
        "FieldReport": {
            "type": "object",
            "required": ["report"],
            "properties": {
                "report": {
                    "type": "object",
                    "required": [
                        "case_id",
                        "number",
                        "created",
                        "grid",
                        "village",
                        "township",
                        "in_own_area",
                        "photos_url",
                    ],
                    "properties": {
                        "case_id": INT,
                        "number": STR,
                        "created": BOOL,
                        "grid": {
                            "type": "object",
                            "required": ["code", "name"],
                            "properties": {"code": STR, "name": STR},
                        },
                        "village": _NAMED,
                        "township": _NAMED,
                        "in_own_area": BOOL,
                        "photos_url": {**STR, "description": "上传照片的地址 (POST multipart)"},
                    },
                }
            },
        },
        "NewPhoto": {
            "type": "object",
            "required": ["client_photo_id", "photo"],
            "properties": {
                "client_photo_id": UUID,
                "photo": {
                    "type": "string",
                    "format": "binary",
                    "description": "JPEG、PNG 或 WebP；按内容检查，去除全部元数据后存储",
                },
            },
        },
        "Photo": photo,
        "PhotoAnswer": {
            "type": "object",
            "required": ["photo"],
            "properties": {"photo": ref("Photo")},
        },
        "PhotoList": {
            "type": "object",
            "required": ["photos"],
            "properties": {"photos": {"type": "array", "items": ref("Photo")}},
        },
        "NewSweep": {
            "type": "object",
            "description": "列出本期发现的案件，或零报告，二者必居其一。",
            "properties": {
                "grid_code": {"type": "string", "nullable": True, "pattern": "^[0-9]{1,20}$"},
                "case_ids": {
                    "type": "array",
                    "maxItems": 500,
                    "items": {
                        "oneOf": [
                            {"type": "integer", "minimum": 0},
                            {"type": "string", "pattern": "^[0-9]{1,18}$"},
                        ]
                    },
                },
                "zero_report": BOOL,
                "note": {"type": "string", "nullable": True, "maxLength": schemas.MAX_NOTE},
            },
        },
        "Sweep": {
            "type": "object",
            "required": ["sweep"],
            "properties": {
                "sweep": {
                    "type": "object",
                    "required": [
                        "id",
                        "grid_code",
                        "period",
                        "zero_report",
                        "case_ids",
                        "note",
                        "revision",
                        "created",
                        "changed",
                    ],
                    "properties": {
                        "id": INT,
                        "grid_code": STR,
                        "period": {
                            "type": "object",
                            "required": ["kind", "start"],
                            "properties": {
                                "kind": {"type": "string", "enum": ["daily", "monthly"]},
                                "start": {"type": "string", "format": "date"},
                            },
                        },
                        "zero_report": BOOL,
                        "case_ids": {"type": "array", "items": INT},
                        "note": STR,
                        "revision": INT,
                        "created": BOOL,
                        "changed": BOOL,
                    },
                }
            },
        },
    }


def _case_id() -> dict:
    return {"name": "case_id", "in": "path", "required": True, "schema": _ID}


def paths() -> dict:
    """The path items of ``/api/v1/field``."""
    read = security_for("GET")
    write = security_for("POST")
    forbidden = error_response("角色无权使用 (forbidden_role)")
    return {
        "/field/session": {
            "get": {
                "operationId": "fieldSession",
                "summary": "当前用户及本会话的 CSRF 令牌 (who is signed in, and the CSRF token)",
                "security": read,
                "responses": {
                    "200": json_response("当前用户", "FieldSession"),
                    **ERROR_RESPONSES,
                },
            }
        },
        "/field/grids": {
            "get": {
                "operationId": "fieldGrids",
                "summary": "上报地图的网格轮廓：本人网格、相邻网格、某点附近的网格 (grid outlines)",
                "description": _FIELD_ROLES + " lon 与 lat 须同时给出。",
                "security": read,
                "parameters": [
                    query(
                        "lon", "经度 (WGS84)", {"type": "number", "minimum": -180, "maximum": 180}
                    ),
                    query("lat", "纬度 (WGS84)", {"type": "number", "minimum": -90, "maximum": 90}),
                ],
                "responses": {
                    "200": json_response(
                        "GeoJSON FeatureCollection（最多 300 个网格）", "GridOutlines"
                    ),
                    **ERROR_RESPONSES,
                    "403": forbidden,
                },
            }
        },
        "/field/reports": {
            "post": {
                "operationId": "fileFieldReport",
                "summary": "现场上报（按 client_id 幂等）(file a field report, idempotent)",
                "description": (
                    _FIELD_ROLES
                    + " 首次 201，重发同一 client_id 返回同一案件 200。错误的 details 逐字段列出问题。"
                ),
                "security": write,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewFieldReport")}},
                },
                "responses": {
                    **created_or_resent("FieldReport", "已登记", "此前已收到（重发）"),
                    **ERROR_RESPONSES,
                    "403": forbidden,
                    "409": error_response("client_id 已被他人使用 (client_id_conflict)"),
                    "413": error_response("请求体过大 (payload too large)"),
                    "422": error_response("位置不在本县任何网格内 (outside_county)"),
                },
            }
        },
        "/field/cases/{case_id}/photos": {
            "get": {
                "operationId": "listCasePhotos",
                "summary": "案件的照片 (a case's photos)",
                "security": read,
                "parameters": [_case_id()],
                "responses": {
                    "200": json_response("照片", "PhotoList"),
                    **ERROR_RESPONSES,
                    "404": error_response("案件不存在或无权查看 (not found or out of scope)"),
                },
            },
            "post": {
                "operationId": "uploadCasePhoto",
                "summary": "上传一张照片（按 client_photo_id 幂等）(add a photo, idempotent)",
                "description": _FIELD_ROLES + " 首次 201，重发同一 client_photo_id 200。",
                "security": write,
                "parameters": [_case_id()],
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": ref("NewPhoto")}},
                },
                "responses": {
                    **created_or_resent("PhotoAnswer", "已保存", "此前已收到（重发）"),
                    **ERROR_RESPONSES,
                    "403": forbidden,
                    "404": error_response("案件不存在或无权查看 (not found or out of scope)"),
                    "409": error_response(
                        "client_photo_id 已用于其他案件 (client_photo_id_conflict)"
                    ),
                    "413": error_response(
                        "照片过大或像素过多 (photo_too_large, photo_too_many_pixels)"
                    ),
                    "415": error_response("不是 JPEG、PNG 或 WebP (photo_type)"),
                },
            },
        },
        "/field/sweeps": {
            "post": {
                "operationId": "fileSweep",
                "summary": "报送（或更新）本期网格排查 (file or amend this period's sweep)",
                "description": (
                    "网格员为本网格、村(社区)信访信息员为本村各网格报送；其他角色 403。"
                    "同一网格同一期只有一份，内容相同再报不变，不同则 revision 加一。"
                ),
                "security": write,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("NewSweep")}},
                },
                "responses": {
                    **created_or_resent("Sweep", "已报送", "已更新或未变"),
                    **ERROR_RESPONSES,
                    "403": forbidden,
                    "404": error_response("网格不是本人负责的 (not found)"),
                    "413": error_response("请求体过大 (payload too large)"),
                },
            }
        },
    }
