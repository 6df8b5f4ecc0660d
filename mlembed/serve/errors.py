"""Errors as each API shapes them, and the body-size guard.

OpenAI's routes (``/v1/...``) answer ``{"error": {"message", "type", "param", "code"}}`` with ``code`` always
set, so clients' ``e.code`` says what went wrong; TEI's routes (``/embed``, ``/health``) answer
``{"error": str, "error_type": str}`` with TEI's status codes (422 validation, 413 batch size, 429 overloaded).
A handler raises one :class:`ApiError`; :func:`install_handlers` renders it for the route it came from.
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered with HTTP ``status``: ``code`` is OpenAI's machine-readable code, ``kind`` its ``type``.

    Example:
        >>> e = ApiError(404, "model 'x' is not served here", "model", "model_not_found")
        >>> error_body(e)["error"]["code"]
        'model_not_found'
    """

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str = "invalid_value",
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind


def error_body(error: ApiError) -> dict:
    """The OpenAI error object of ``error``.

    Example:
        >>> error_body(ApiError(400, "input[0] is empty", "input"))["error"]
        {'message': 'input[0] is empty', 'type': 'invalid_request_error', 'param': 'input', 'code': 'invalid_value'}
    """
    return {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}}


def tei_status(error: ApiError) -> int:
    """TEI's status for ``error``: request validation is 422 there (400 for an empty batch, 413 for too many
    inputs), overload 429.

    Example:
        >>> tei_status(ApiError(400, "input[0] has 600 tokens", code="context_length_exceeded"))
        422
        >>> tei_status(ApiError(400, "inputs is an empty list", code="empty_input"))
        400
    """
    if error.status == 400:
        return {"empty_input": 400, "too_many_inputs": 413}.get(error.code, 422)
    if error.status == 503 and error.code == "server_busy":
        return 429
    return error.status


def tei_body(error: ApiError) -> dict:
    """TEI's error object of ``error``.

    Example:
        >>> tei_body(ApiError(400, "input[0] has 600 tokens", code="context_length_exceeded"))
        {'error': 'input[0] has 600 tokens', 'error_type': 'Validation'}
    """
    status = tei_status(error)
    kinds = {400: "Empty", 422: "Validation", 429: "Overloaded", 503: "Unhealthy"}
    return {"error": error.message, "error_type": kinds.get(status, "Backend" if status >= 500 else "Validation")}


def is_tei_route(path: str) -> bool:
    """TEI's own routes answer errors in TEI's shape; every other route in OpenAI's."""
    return path in ("/", "/embed", "/health", "/info")


def install_handlers(app: Any, max_body_bytes: int) -> None:
    """Turn every error into the JSON its route's API sends: ours, pydantic's, Starlette's, unexpected ones."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def respond(request: Request, error: ApiError) -> JSONResponse:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.errors.labels(code=error.code).inc()
        headers = {"Retry-After": "1"} if error.status == 503 else None
        if is_tei_route(request.url.path):
            return JSONResponse(tei_body(error), tei_status(error), headers=headers)
        return JSONResponse(error_body(error), error.status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(request, validation_error(exc.errors(), request.headers.get("content-type", "")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyTooLarge):  # a body streamed without Content-Length, over the limit
            return respond(request, too_large(max_body_bytes))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return respond(request, ApiError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return respond(
            request, ApiError(500, f"internal error: {type(exc).__name__}", None, "internal_error", "server_error")
        )


def validation_error(errors: list[dict], content_type: str) -> ApiError:
    """pydantic's first complaint about a request body as one :class:`ApiError` naming the field.

    Example:
        >>> validation_error([{"type": "missing", "loc": ("body", "model"), "msg": "Field required"}], "application/json").message
        'model: required field missing'
    """
    first = errors[0]
    if first.get("type") == "json_invalid":
        detail = first.get("ctx", {}).get("error", first.get("msg"))
        return ApiError(400, f"request body is not valid JSON: {detail}", None, "invalid_json")
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or "body"
    param = loc[0] if loc else None
    if first.get("type") == "missing":
        return ApiError(400, f"{field}: required field missing", param, "missing_required_parameter")
    if first.get("type") == "model_attributes_type":
        message = "request body: expected a JSON object"
        if "json" not in content_type:  # the body is then read as bytes, whatever it holds
            message += f" with 'Content-Type: application/json' (sent: {content_type or 'none'})"
        return ApiError(400, message, None, "invalid_json")
    return ApiError(400, f"{field}: {first.get('msg', 'invalid')}", param)


def too_large(limit: int) -> ApiError:
    """413 for a body over ``limit`` bytes."""
    return ApiError(413, f"request body over {limit:,} bytes", None, "request_too_large")


class BodyTooLarge(Exception):
    """Raised while a body streams in past the limit (no Content-Length to refuse it by)."""


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with 413 (checked as it streams)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    async def _refuse(self, scope: dict, send: Any) -> None:
        error = too_large(self.limit)
        tei = is_tei_route(scope.get("path", ""))
        body = json.dumps(tei_body(error) if tei else error_body(error)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
