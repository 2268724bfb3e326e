"""Error responses: one JSON shape per kind of error, declared in the OpenAPI document, and the guards that make
them (request-body limit, the 500 handler).

Every error is `{"detail": ...}`: a sentence for 4xx and 500 responses, a list of `{loc, msg, type}` for 422.
"""

from __future__ import annotations

import traceback
from collections import Counter
from typing import Any, get_origin

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import error_summary, get_logger

log = get_logger(__name__)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
TRACEBACK_FRAMES = 4
"""Frames of a 500's traceback in its log line: where it failed, without pages of framework frames."""


class Problem(BaseModel):
    """An error other than invalid input."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    """Where: `["query", "since"]`, `["path", "brand"]`, `["body", "threshold"]`; `["body"]` for the whole body."""
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """Invalid input (422): what is wrong, and where."""

    detail: list[FieldError]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


UNAUTHORIZED = {401: _problem("No bearer token, and the endpoint needs one")}
FORBIDDEN = {403: _problem("The token is not valid here (or writes are disabled: API_ADMIN_TOKEN is unset)")}
INVALID = {422: {"model": ValidationProblem, "description": "A parameter or the body is invalid"}}
SERVER_ERROR = {500: _problem("An unexpected error (logged); the response says nothing more")}
NOT_FOUND = {404: _problem("No such brand, rule or thumbnail (the detail names it)")}
BODY_ERRORS = {400: _problem("The body could not be read"),
               413: _problem("The body is larger than API_MAX_BODY_BYTES")}
COMMON = {**UNAUTHORIZED, **FORBIDDEN, **INVALID, **SERVER_ERROR}


def invalid(loc: tuple[str | int, ...], msg: str) -> RequestValidationError:
    """A 422 in the same shape as the framework's own, for rules a schema cannot express (a window's order)."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])


def invalid_body(exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> RequestValidationError:
    """A model's ValidationError raised after the body was parsed (a merged rule), as a 422 on the body."""
    return RequestValidationError([{"loc": (*prefix, *e["loc"]), "msg": e["msg"], "type": e["type"]}
                                   for e in exc.errors()])


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """`{loc, msg, type}` only: the echoed input could be large, or a lone surrogate that cannot be encoded."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
                                     "msg": str(e.get("msg", "")), "type": str(e.get("type", "value_error"))}
                                    for e in errors]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 whose `Allow` lists every method of the path: its methods are spread over several routes."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = [method for method in METHODS if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.router.routes)]
        headers["Allow"] = ", ".join(allowed)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def single_valued_query(request: Request) -> None:
    """422 for a query parameter given twice where the route takes one value: the framework would silently use
    the last (`?brand=a&brand=b` filtered by `b` alone)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    lists = {field.alias for field in _query_fields(dependant) if get_origin(field.field_info.annotation) is list}
    for name, count in Counter(key for key, _ in request.query_params.multi_items()).items():
        if count > 1 and name not in lists:
            raise invalid(("query", name), "given more than once; this parameter takes one value")


def _query_fields(dependant: Any) -> list[Any]:
    return [*dependant.query_params, *(f for d in dependant.dependencies for f in _query_fields(d))]


def short_traceback(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-TRACEBACK_FRAMES:]
    return " < ".join(f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}" for frame in reversed(frames))


class ServerErrors:
    """An unexpected exception becomes a short JSON 500 (inside the security headers, so it has them) and one log
    line: type, message and the last frames. Plain ASGI middleware, so the live feed's stream is not buffered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except StarletteHTTPException as exc:  # raised where no handler sees it (a body limit hit late)
            if not started:
                await JSONResponse({"detail": exc.detail}, status_code=exc.status_code)(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - the one place every unexpected error of a request ends
            log.error("request failed", method=scope.get("method"), path=scope.get("path"),
                      error_type=type(exc).__name__, error=error_summary(exc)[:500], where=short_traceback(exc),
                      response_started=started)
            if not started:
                response = JSONResponse({"detail": "internal server error"},
                                        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
                await response(scope, receive, send)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE,
                         detail=f"request body larger than {limit} bytes (API_MAX_BODY_BYTES)")


class BodyLimit:
    """Refuses a body over `max_bytes` with 413: at once when Content-Length says so, else as soon as the bytes
    read pass it (a chunked body), before a handler holds it all in memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        response = JSONResponse({"detail": error.detail}, status_code=error.status_code,
                                headers={"Connection": "close"})
        await response(scope, receive, send)
