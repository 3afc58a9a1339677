"""One error type with a stable code, and one handler that answers JSON or a Chinese page."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException


class AppError(Exception):
    """An error a user or client can act on.

    ``code`` is stable for machines; ``message`` is Chinese for people and
    ``message_en`` English for developers. ``details`` carries field-level problems.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        message_en: str = "",
        details: dict | list | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status
        self.message_en = message_en or code.replace("_", " ")
        self.details = details

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message, "message_en": self.message_en}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class NotFound(AppError):
    def __init__(self, what: str = "页面", message_en: str = "not found") -> None:
        super().__init__("not_found", f"{what}不存在或您无权查看", 404, message_en)


# Chinese messages for the HTTP errors Werkzeug raises itself.
HTTP_MESSAGES = {
    400: ("bad_request", "请求无效", "bad request"),
    401: ("unauthorized", "请先登录", "sign-in required"),
    403: ("forbidden", "您没有权限执行此操作", "forbidden"),
    404: ("not_found", "页面不存在或您无权查看", "not found"),
    405: ("method_not_allowed", "不支持该请求方法", "method not allowed"),
    413: ("payload_too_large", "提交的内容过大", "payload too large"),
    415: ("unsupported_media_type", "不支持的内容类型", "unsupported media type"),
    429: ("too_many_requests", "请求过于频繁，请稍后再试", "too many requests"),
    500: ("internal_error", "服务器内部错误，请稍后再试", "internal server error"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试", "service unavailable"),
}


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/open311/", "/healthz")):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def render_error(err: AppError):
    if wants_json():
        return jsonify(err.to_dict()), err.status
    return render_template("error.html", error=err), err.status


def init_app(app: Flask) -> None:
    app.register_error_handler(AppError, render_error)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code, zh, en = HTTP_MESSAGES.get(exc.code or 500, ("http_error", exc.name, exc.name))
        response = app.make_response(render_error(AppError(code, zh, exc.code or 500, en)))
        valid = getattr(exc, "valid_methods", None)
        if exc.code == 405 and valid:
            response.headers["Allow"] = ", ".join(valid)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

        from webapp.db import UnsafeDatabase
        from webapp.pgcluster import ClusterError

        if isinstance(exc, UnsafeDatabase | ClusterError):
            app.logger.error("database not usable: %s", exc)
            return render_error(
                AppError("db_unavailable", "数据库暂时不可用，请联系管理员", 503, str(exc))
            )

        lost = isinstance(exc, OperationalError | InterfaceError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        )
        if lost:
            app.logger.warning("database unavailable: %s", exc)
            return render_error(
                AppError(
                    "db_unavailable", "数据库暂时不可用，请稍后重试", 503, "database unavailable"
                )
            )
        app.logger.exception("unhandled error")
        code, zh, en = HTTP_MESSAGES[500]
        return render_error(AppError(code, zh, 500, en))
