"""The one error shape of the HTTP API:
``{"error": {"code", "message", "request_id", "details"?}}``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from agentflow.runtime.publisher import ApiJSONResponse


class ApiError(Exception):
    """Raised by handlers; rendered as the error shape with its status code. An HTTP response,
    not a library failure: outside the library's error tree (`agentflow.errors`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_body(
    code: str, message: str, request_id: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(error: ApiError, request_id: str) -> JSONResponse:
    return ApiJSONResponse(
        error_body(error.code, error.message, request_id, error.details),
        status_code=error.status,
        headers={**error.headers, "X-Request-ID": request_id},
    )


def not_found(what: str = "thread") -> ApiError:
    return ApiError(404, f"{what}_not_found", f"{what} not found")


def require_owner(owner: str | None, user_id: str) -> None:
    """The one thread-ownership check: a thread that does not exist (`owner` None) or
    belongs to another user is 404 alike, never 403, so other users' ids cannot be probed."""
    if owner != user_id:
        raise not_found("thread")


def validation_error(details: list[dict[str, Any]]) -> ApiError:
    """422 naming each wrong field by its `loc`: ["body", ...], ["query", name] or
    ["path", name]."""
    where = {str(d["loc"][0]) for d in details if d.get("loc")}
    what = "request body" if where == {"body"} else "request"
    return ApiError(
        422, "validation_error", f"the {what} is not valid; see details", details=details
    )
