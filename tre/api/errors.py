"""Every error leaves the API as the one canonical body of `tre.errors.error_body`.

- `UserError` (NotFound, Forbidden, Conflict, InvalidInput, Unauthenticated): its status,
  reason, message and hint; 401s carry `WWW-Authenticate: Bearer`.
- Invalid requests (FastAPI's validation, or a pydantic model built in a route): 422 with
  `details.fields = [{path, message, type}]`; the offending input is never echoed back.
- Starlette's HTTP errors (unknown route, wrong method): their status, a readable message.
- SQLite's writer lock not free within the busy timeout: 503 `busy` with Retry-After (the
  transaction was rolled back, nothing changed).
- Anything else: 500 "internal error, id …"; the id and the traceback go to the log only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tre.errors import InternalError, UserError, error_body, new_error_id
from tre.wire.errors import ErrorBody

log = logging.getLogger("tre.api")

_HTTP_REASONS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
}


def _path(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc)


def field_problems(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """`[{path, message, type}]` from pydantic errors, without the offending input values."""
    out = []
    for e in errors:
        loc = (*prefix, *e.get("loc", ()))
        out.append({"path": _path(loc), "message": str(e.get("msg", "invalid")), "type": e["type"]})
    return out


def invalid_request(problems: list[dict[str, str]]) -> JSONResponse:
    """The 422 response for invalid fields."""
    n = len(problems)
    first = problems[0]["path"] if problems else "request"
    message = f"invalid request: {first}: {problems[0]['message']}" if problems else "invalid"
    if n > 1:
        message += f" (and {n - 1} more)"
    return JSONResponse(
        error_body(
            "invalid_input",
            message,
            hint="Fix the fields listed in details.fields; see the OpenAPI docs at /docs.",
            details={"fields": problems},
        ),
        status_code=422,
    )


def user_error_response(exc: UserError) -> JSONResponse:
    """The response for a UserError."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _database_busy(exc: BaseException) -> bool:
    # SQLite's single writer lock was not free within the busy timeout (heavy write load).
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def internal_error_response(exc: BaseException) -> JSONResponse:
    """Log the failure with a fresh id; the caller sees only the id (503 when merely busy)."""
    if _database_busy(exc):
        log.warning("control plane busy: SQLite writer lock timed out")
        return JSONResponse(
            error_body(
                "busy",
                "the control plane is too busy to take this change now; nothing was changed",
                hint="Retry in a moment.",
            ),
            status_code=503,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, InternalError):
        err = exc
        log.error("internal error %s: %s", err.error_id, err.detail)
    else:
        err = InternalError(type(exc).__name__, error_id=new_error_id())
        log.error("internal error %s", err.error_id, exc_info=exc)
    return JSONResponse(err.body(), status_code=500)


async def _on_user_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UserError)
    return user_error_response(exc)


async def _on_request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return invalid_request(field_problems(exc.errors()))


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    # A pydantic model built inside a route from a valid request body (e.g. an Application).
    assert isinstance(exc, ValidationError)
    return invalid_request(field_problems(exc.errors(), ("body",)))


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    reason = _HTTP_REASONS.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else reason.replace("_", " ")
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint"
    return JSONResponse(
        error_body(reason, message, hint="See the OpenAPI docs at /docs."),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _on_internal(_: Request, exc: Exception) -> JSONResponse:
    return internal_error_response(exc)


class CatchAll:
    """ASGI middleware turning any escaped exception into the canonical 500 body.

    (Starlette's own handler for `Exception` re-raises after responding; this one does not,
    so the server logs one line with the id instead of a traceback per request.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            response = internal_error_response(exc)
            if started:  # too late for a body: the connection is cut, the log has the id
                raise
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers and the catch-all middleware on `app`."""
    app.add_exception_handler(UserError, _on_user_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(InternalError, _on_internal)
    app.add_middleware(CatchAll)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": desc, "model": ErrorBody}
    for code, desc in (
        (401, "Unknown, expired or revoked credentials"),
        (403, "Authenticated, but not allowed (the message says why)"),
        (404, "No such thing"),
        (409, "Impossible in the current state (the message says why)"),
        (422, "Invalid input (details.fields lists the field paths)"),
    )
}
