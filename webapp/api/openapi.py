"""The OpenAPI 3 description of ``/api/v1``, kept next to the endpoints it describes.

Public (it holds no data), so that clients and fuzzers can read it before they have a
token. ``tests/test_api_fuzz.py`` checks every answer of the app against it, and
``tests/test_api.py`` that it names every endpoint served under ``/api/v1``. The
field (``/field/*``) and visits (``/visits/*``) operations are described by their
features (``webapp/field/openapi.py``, ``webapp/visits/openapi.py``) with the helpers
below, and merged here.
"""

from __future__ import annotations

from webapp.cases.vocab import CaseClass, Channel, Status
from webapp.config import DEFAULTS
from webapp.grid.models import AreaLevel


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


STR = {"type": "string"}
UUID = {"type": "string", "format": "uuid"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
DATETIME = {"type": "string", "format": "date-time"}
AREA_CODE = {"type": "string", "pattern": "^[0-9]{6,20}$"}

ERROR_RESPONSES = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
}


# The pages' own JSON endpoints take the browser's session (and its CSRF token on
# POST) as well as a bearer token; see :func:`security_for`.
SESSION_COOKIE = DEFAULTS["SESSION_COOKIE_NAME"]


def security_for(method: str) -> list[dict]:
    """Security of an operation the phone pages and machine clients both call.

    Either a bearer token, or the session cookie (plus the ``X-CSRF-Token`` header
    when the method changes something).
    """
    session = {"sessionCookie": []}
    if method.upper() != "GET":
        session["csrfHeader"] = []
    return [{"bearerAuth": []}, session]


def error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def json_response(description: str, schema: str) -> dict:
    """An answer with a JSON body of the component schema ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def created_or_resent(schema: str, created: str, resent: str) -> dict:
    """The answers of an idempotent POST: 201 the first time, 200 with the same body for a resend."""
    return {"201": json_response(created, schema), "200": json_response(resent, schema)}


def query(name: str, description: str, schema: dict, **extra) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **extra,
    }


CASE_FILTERS = [
    query(
        "bbox",
        "西,南,东,北 (WGS84). Bounding box west,south,east,north.",
        {"type": "string", "example": "114.1,35.2,114.3,35.3"},
        explode=False,
    ),
    query(
        "area",
        "区划代码：县 6 位、乡镇 9 位、村 12 位，或网格代码。Area code of any level.",
        AREA_CODE,
    ),
    query(
        "from",
        "登记时间起（含）：日期或 ISO 8601 时间。Reported on or after.",
        {"type": "string", "example": "2026-01-01"},
    ),
    query(
        "to",
        "登记时间止：日期（含当天）或时间（不含）。Reported before (a date includes that day).",
        {"type": "string", "example": "2026-03-31"},
    ),
    query(
        "category",
        "类别代码，逗号分隔。Category codes, comma-separated.",
        {"type": "string", "example": "land_acquisition,migrant_wages"},
    ),
    query(
        "status",
        "状态，逗号分隔。Statuses, comma-separated: " + ", ".join(s.value for s in Status),
        {"type": "string", "example": "registered,in_progress"},
    ),
    query(
        "channel",
        "渠道，逗号分隔。Channels, comma-separated: " + ", ".join(c.value for c in Channel),
        {"type": "string", "example": "visit"},
    ),
]

CASE_PROPERTIES = {
    "id": {"type": "integer", "format": "int64"},
    "number": STR,
    "title": STR,
    "category_id": INT,
    "category_code": STR,
    "category_name": STR,
    "channel": {"type": "string", "enum": [c.value for c in Channel]},
    "channel_label": STR,
    "case_class": {"type": "string", "enum": [c.value for c in CaseClass]},
    "case_class_label": STR,
    "status": {"type": "string", "enum": [s.value for s in Status]},
    "status_label": STR,
    "people_count": INT,
    "grid_code": STR,
    "village_code": STR,
    "township_code": STR,
    "county_code": STR,
    "location_approx": BOOL,
    "reported_at": _nullable(DATETIME),
    "due_at": _nullable(DATETIME),
    "resolved_at": _nullable(DATETIME),
    "petitioner_name": _nullable(STR),
    "petitioner_phone": _nullable(STR),
    "petitioner_id_number": _nullable(STR),
    "personal_masked": {
        "type": "boolean",
        "description": "true 时信访人信息已打码（非本案经办人）。True when the petitioner's data is masked.",
    },
}
CASE_REQUIRED = list(CASE_PROPERTIES)

EVENT = {
    "type": "object",
    "required": ["id", "action", "at", "actor_name", "from_status", "to_status", "note"],
    "properties": {
        "id": {"type": "integer", "format": "int64"},
        "action": STR,
        "at": DATETIME,
        "actor_name": _nullable(STR),
        "from_status": _nullable(STR),
        "to_status": _nullable(STR),
        "note": STR,
    },
}

POSITION = {"type": "array", "items": NUM, "minItems": 2, "maxItems": 3}
LINEAR_RING = {"type": "array", "items": POSITION, "minItems": 4}
POLYGON_COORDS = {"type": "array", "items": LINEAR_RING}


def _schemas() -> dict:
    stats_row = {"type": "object", "additionalProperties": True}
    schemas_extra = {
        "Stats": {
            "type": "object",
            "required": ["area", "request", "figures", "total", "rows"],
            "properties": {
                "area": {
                    "type": "object",
                    "required": ["code", "name", "level"],
                    "properties": {
                        "code": {"type": "string"},
                        "name": {"type": "string"},
                        "level": {"type": "string"},
                    },
                },
                "request": {"type": "object", "additionalProperties": True},
                "figures": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key", "name", "unit", "kind", "basis", "definition"],
                        "properties": {
                            k: {"type": "string"}
                            for k in ("key", "name", "unit", "kind", "basis", "definition")
                        },
                    },
                },
                "total": stats_row,
                "rows": {"type": "array", "items": stats_row},
            },
        }
    }
    return {
        **schemas_extra,
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message", "message_en"],
                    "properties": {
                        "code": {
                            "type": "string",
                            "description": "稳定的错误代码 (stable machine code)",
                        },
                        "message": {"type": "string", "description": "中文说明"},
                        "message_en": {"type": "string", "description": "English message"},
                        "details": {
                            "description": "逐字段的问题 (problems per field)",
                            "oneOf": [{"type": "object"}, {"type": "array"}],
                        },
                    },
                }
            },
        },
        "Category": {
            "type": "object",
            "required": ["code", "name", "description"],
            "properties": {"code": STR, "name": STR, "description": STR},
        },
        "CategoryList": {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": ref("Category")}},
        },
        "Located": {
            "type": "object",
            "required": ["lon", "lat", "grid", "village", "township", "county"],
            "properties": {
                "lon": NUM,
                "lat": NUM,
                "grid": {
                    "type": "object",
                    "required": ["code", "name"],
                    "properties": {"code": STR, "name": STR},
                },
                "village": {
                    "type": "object",
                    "required": ["code", "name"],
                    "properties": {"code": STR, "name": STR},
                },
                "township": {
                    "type": "object",
                    "required": ["code", "name"],
                    "properties": {"code": STR, "name": STR},
                },
                "county": {"type": "object", "required": ["code"], "properties": {"code": STR}},
            },
        },
        "MultiPolygon": {
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"type": "string", "enum": ["MultiPolygon", "Polygon"]},
                "coordinates": {"type": "array", "items": {"oneOf": [POLYGON_COORDS, LINEAR_RING]}},
            },
        },
        "AreaFeature": {
            "type": "object",
            "required": ["type", "id", "bbox", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": STR,
                "bbox": {"type": "array", "items": NUM, "minItems": 4, "maxItems": 4},
                "geometry": {**ref("MultiPolygon"), "nullable": True},
                "properties": {
                    "type": "object",
                    "required": [
                        "code",
                        "name",
                        "level",
                        "parent_code",
                        "population",
                        "households",
                        "area_m2",
                        "label_point",
                    ],
                    "properties": {
                        "code": STR,
                        "name": STR,
                        "level": {"type": "string", "enum": [lv.value for lv in AreaLevel]},
                        "parent_code": _nullable(STR),
                        "population": _nullable(INT),
                        "households": _nullable(INT),
                        "area_m2": NUM,
                        "label_point": POSITION,
                    },
                },
            },
        },
        "AreaCollection": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": ref("AreaFeature")},
            },
        },
        "Case": {
            "type": "object",
            "required": [*CASE_REQUIRED, "lon", "lat"],
            "properties": {**CASE_PROPERTIES, "lon": NUM, "lat": NUM},
        },
        "CaseList": {
            "type": "object",
            "required": ["items", "limit", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": ref("Case")},
                "limit": INT,
                "next_cursor": {
                    **STR,
                    "nullable": True,
                    "description": "下一页的 cursor；null 表示没有更多。",
                },
            },
        },
        "CaseFeature": {
            "type": "object",
            "required": ["type", "id", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"type": "integer", "format": "int64"},
                "geometry": {
                    "type": "object",
                    "required": ["type", "coordinates"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Point"]},
                        "coordinates": POSITION,
                    },
                },
                "properties": {
                    "type": "object",
                    "required": CASE_REQUIRED,
                    "properties": CASE_PROPERTIES,
                },
            },
        },
        "CaseCollection": {
            "type": "object",
            "required": ["type", "features", "limit", "next_cursor"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {"type": "array", "items": ref("CaseFeature")},
                "limit": INT,
                "next_cursor": _nullable(STR),
            },
        },
        "CaseDetail": {
            "allOf": [
                ref("Case"),
                {
                    "type": "object",
                    "required": [
                        "description",
                        "batch_count",
                        "is_first",
                        "repeat_of_id",
                        "accepted_at",
                        "concluded_at",
                        "updated_at",
                        "events",
                    ],
                    "properties": {
                        "description": STR,
                        "batch_count": INT,
                        "is_first": BOOL,
                        "repeat_of_id": _nullable({"type": "integer", "format": "int64"}),
                        "accepted_at": _nullable(DATETIME),
                        "concluded_at": _nullable(DATETIME),
                        "updated_at": _nullable(DATETIME),
                        "events": {"type": "array", "items": EVENT},
                    },
                },
            ]
        },
        "NewCase": {
            "type": "object",
            "additionalProperties": False,
            "required": ["title", "category", "lon", "lat"],
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
                "description": {"type": "string", "maxLength": 5000},
                "category": {
                    "type": "string",
                    "pattern": "^[a-z0-9_]{1,40}$",
                    "description": "见 /categories",
                },
                "channel": {
                    "type": "string",
                    "enum": [c.value for c in Channel],
                    "description": "默认 visit（网格员等默认 grid_sweep）",
                },
                "case_class": {"type": "string", "enum": [c.value for c in CaseClass]},
                "people_count": {"type": "integer", "minimum": 1, "maximum": 10000},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "crs": {
                    "type": "string",
                    "enum": ["wgs84", "cgcs2000", "gcj02"],
                    "description": "lon/lat 的坐标系，默认 wgs84",
                },
                "reported_at": {"type": "string", "format": "date-time"},
                "petitioner_name": {"type": "string", "maxLength": 100},
                "petitioner_phone": {"type": "string", "maxLength": 32},
                "petitioner_id_number": {"type": "string", "maxLength": 32},
            },
        },
    }


def openapi_document(server: str = "") -> dict:
    """Return the OpenAPI 3.0 document of ``/api/v1`` for a server at ``server``."""
    # Imported here: the features' descriptions use this module's helpers.
    from webapp.field import openapi as field_openapi
    from webapp.visits import openapi as visits_openapi

    read_errors = {**ERROR_RESPONSES}
    features = (field_openapi, visits_openapi)
    doc = {
        "openapi": "3.0.3",
        "info": {
            "title": "GridCase 网格信访 API",
            "version": "1.0.0",
            "description": (
                "区划、案件与定位的 REST/GeoJSON 接口。机器客户端以 `Authorization: Bearer <令牌>` 认证"
                "（`flask --app webapp user token 用户名`）；所见范围与网页相同，信访人信息除经办人外一律打码。\n\n"
                "Areas, cases and locating over REST/GeoJSON (RFC 7946). Authenticate with a bearer token; "
                "every scope rule of the web pages holds, and the petitioner's data is masked unless the "
                'token\'s user handles the case. Errors are `{"error": {"code", "message", "message_en"}}`.\n\n'
                "现场上报（/field/*）与入户走访（/visits/*）同时供手机页面使用：也接受登录会话的 Cookie，"
                "POST 时须带 X-CSRF-Token 头。Field reporting (/field/*) and visits (/visits/*) also accept the "
                "session cookie of the phone pages, with the X-CSRF-Token header on POST."
            ),
        },
        "servers": [{"url": f"{server}/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/locate": {
                "get": {
                    "operationId": "locate",
                    "summary": "定位：一个点所在的网格、村、乡镇 (which grid a point is in)",
                    "parameters": [
                        {
                            "name": "lon",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "number", "minimum": -180, "maximum": 180},
                        },
                        {
                            "name": "lat",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "number", "minimum": -90, "maximum": 90},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "所在网格",
                            "content": {"application/json": {"schema": ref("Located")}},
                        },
                        **read_errors,
                        "404": error_response("不在本县任何网格内 (outside_county)"),
                    },
                }
            },
            "/categories": {
                "get": {
                    "operationId": "listCategories",
                    "summary": "问题类别 (categories)",
                    "responses": {
                        "200": {
                            "description": "类别",
                            "content": {"application/json": {"schema": ref("CategoryList")}},
                        },
                        "401": {"$ref": "#/components/responses/Unauthorized"},
                    },
                }
            },
            "/areas": {
                "get": {
                    "operationId": "listAreas",
                    "summary": "区划及边界（本人辖区及以下）(areas within the user's area, as GeoJSON)",
                    "parameters": [
                        query(
                            "level",
                            "层级 (level)",
                            {"type": "string", "enum": [lv.value for lv in AreaLevel]},
                        ),
                        query("parent", "上级区划代码 (parent area code)", AREA_CODE),
                        query(
                            "tolerance",
                            "边界简化容差，米 (simplification tolerance in metres)",
                            {"type": "number", "minimum": 0, "maximum": 10000},
                        ),
                        query(
                            "geometry",
                            "是否返回边界 (include geometry)",
                            {"type": "string", "enum": ["true", "false"]},
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "GeoJSON FeatureCollection",
                            "content": {"application/geo+json": {"schema": ref("AreaCollection")}},
                        },
                        **read_errors,
                        "404": error_response(
                            "上级区划不存在或不在辖区内 (parent not found or out of scope)"
                        ),
                    },
                }
            },
            "/areas/{code}": {
                "get": {
                    "operationId": "getArea",
                    "summary": "一个区划及其边界 (one area)",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        query(
                            "tolerance",
                            "边界简化容差，米",
                            {"type": "number", "minimum": 0, "maximum": 10000},
                        ),
                        query(
                            "geometry",
                            "是否返回边界",
                            {"type": "string", "enum": ["true", "false"]},
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "GeoJSON Feature",
                            "content": {"application/geo+json": {"schema": ref("AreaFeature")}},
                        },
                        **read_errors,
                        "404": error_response("不存在或不在辖区内 (not found or out of scope)"),
                    },
                }
            },
            "/cases": {
                "get": {
                    "operationId": "listCases",
                    "summary": "案件列表，最新在前，按游标翻页 (cases, newest first, keyset pages)",
                    "parameters": [
                        *CASE_FILTERS,
                        query(
                            "limit",
                            "每页条数 (page size)",
                            {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                        ),
                        query("cursor", "上一页返回的 next_cursor", {"type": "string"}),
                        query(
                            "format",
                            "json（默认）或 geojson",
                            {"type": "string", "enum": ["json", "geojson"]},
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "一页案件；Link 头给出下一页",
                            "headers": {
                                "Link": {"schema": {"type": "string"}, "description": 'rel="next"'}
                            },
                            "content": {
                                "application/json": {"schema": ref("CaseList")},
                                "application/geo+json": {"schema": ref("CaseCollection")},
                            },
                        },
                        **read_errors,
                    },
                },
                "post": {
                    "operationId": "createCase",
                    "summary": "登记案件（幂等）(create a case, idempotent)",
                    "description": (
                        "同一 Idempotency-Key 与相同请求体返回首次结果"
                        "（同样的状态码和内容，响应头 Idempotent-Replayed: true）；"
                        "同一键与不同请求体返回 422。失败的请求不占用键。\n\n"
                        "The same key with the same body returns the first answer; with another body, 422. "
                        "Failed requests do not use up their key."
                    ),
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("NewCase")}},
                    },
                    "responses": {
                        "201": {
                            "description": "已登记（或重放的首次结果）",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": ref("CaseDetail")}},
                        },
                        **read_errors,
                        "403": error_response(
                            "角色无权登记，或该渠道不允许 (role or channel not allowed)"
                        ),
                        "413": error_response("请求体过大 (payload too large)"),
                        "415": error_response("不是 application/json"),
                        "422": error_response(
                            "字段无效、类别未知、位置不在县内或辖区外，或幂等键已用于不同请求"
                        ),
                    },
                },
            },
            "/cases/{case_ref}": {
                "get": {
                    "operationId": "getCase",
                    "summary": "一个案件及其办理记录 (one case with its events)",
                    "parameters": [
                        {
                            "name": "case_ref",
                            "in": "path",
                            "required": True,
                            "description": "案件 id 或编号 (id or number, e.g. 410726-2026-0000042)",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "案件",
                            "content": {"application/json": {"schema": ref("CaseDetail")}},
                        },
                        **read_errors,
                        "404": error_response("不存在或无权查看 (not found or out of scope)"),
                    },
                }
            },
            "/stats": {
                "get": {
                    "operationId": "stats",
                    "summary": (
                        "统计指标：辖区内各区划、类别、渠道或月份的指标 "
                        "(figures by area, category, channel or month)"
                    ),
                    "description": (
                        "与统计页面和月报同一口径（见 /stats/glossary）。"
                        "仅乡镇领导、县信访局、包案领导、研判人员和管理员可用。\n\n"
                        "The same figures as the dashboard and the monthly report (definitions: /stats/glossary, "
                        "docs/stats.md). For township leaders, county staff, leaders in charge, planners and admins."
                    ),
                    "parameters": [
                        query(
                            "area",
                            "区划代码（默认：本人辖区）",
                            {"type": "string", "pattern": "^[0-9]{6,20}$"},
                        ),
                        query(
                            "level",
                            "行的层级",
                            {
                                "type": "string",
                                "enum": ["county", "town", "township", "village", "grid"],
                            },
                        ),
                        query(
                            "by",
                            "按区划、类别、渠道或月份分行",
                            {"type": "string", "enum": ["area", "category", "channel", "month"]},
                        ),
                        query(
                            "from", "起始日期（含）YYYY-MM-DD", {"type": "string", "format": "date"}
                        ),
                        query(
                            "to", "截止日期（含）YYYY-MM-DD", {"type": "string", "format": "date"}
                        ),
                        query(
                            "as_of", "按该日结束时的状态统计", {"type": "string", "format": "date"}
                        ),
                        query("category", "类别代码，逗号分隔", {"type": "string"}),
                        query("channel", "渠道，逗号分隔", {"type": "string"}),
                        query(
                            "backlog_years",
                            "积案年限（年）",
                            {"type": "integer", "minimum": 1, "maximum": 30},
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "指标",
                            "content": {"application/json": {"schema": ref("Stats")}},
                        },
                        **read_errors,
                        "403": error_response("角色无权查看统计 (forbidden_role)"),
                        "404": error_response("区划不存在或不在辖区内 (not found or out of scope)"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "本文档 (this document)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.0",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "flask --app webapp user token 用户名（令牌以 gc_ 开头，只显示一次）",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "登录网页后的会话（现场上报、走访页面所用）",
                },
                "csrfHeader": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-CSRF-Token",
                    "description": (
                        '会话的 CSRF 令牌（页面 <meta name="csrf-token">，或 GET /field/session）；'
                        "以令牌认证时不需要"
                    ),
                },
            },
            "responses": {
                "BadRequest": error_response("参数无效 (invalid parameter)"),
                "Unauthorized": error_response("未登录或令牌无效 (missing or invalid token)"),
            },
            "schemas": _schemas(),
        },
    }
    for feature in features:
        doc["paths"].update(feature.paths())
        doc["components"]["schemas"].update(feature.components())
    return doc
