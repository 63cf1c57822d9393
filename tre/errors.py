"""One error vocabulary for tre.

`UserError` carries a message that is safe to show (never a row value, token or key), a
machine-readable `reason`, an HTTP status and a `hint` saying how to fix the problem.
Anything else is an internal error: logged with an id, shown only as "internal error, id …".
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any


class TREError(Exception):
    """Base class of every error tre raises on purpose."""


@dataclass
class UserError(TREError):
    """An error whose message a user may see; says what was wrong and how to fix it."""

    message: str
    reason: str = "bad_request"
    status: int = 400
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"

    def body(self) -> dict[str, Any]:
        """The canonical JSON error body for this error."""
        return error_body(self.reason, self.message, hint=self.hint, details=self.details)


class NotFound(UserError):
    """A named thing does not exist (or is not visible to the caller)."""

    def __init__(self, message: str, *, hint: str | None = None, reason: str = "not_found"):
        super().__init__(message, reason=reason, status=404, hint=hint)


class Unauthenticated(UserError):
    """No valid credentials."""

    def __init__(self, message: str = "authentication required", *, hint: str | None = None):
        super().__init__(message, reason="unauthenticated", status=401, hint=hint)


class Forbidden(UserError):
    """Authenticated, but not allowed; `message` says why."""

    def __init__(self, message: str, *, reason: str = "forbidden", hint: str | None = None):
        super().__init__(message, reason=reason, status=403, hint=hint)


class Conflict(UserError):
    """The request is impossible in the current state (e.g. approving twice)."""

    def __init__(self, message: str, *, reason: str = "conflict", hint: str | None = None):
        super().__init__(message, reason=reason, status=409, hint=hint)


class InvalidInput(UserError):
    """Input (a file, a policy, a request) does not fit what is expected."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "invalid_input",
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, reason=reason, status=422, hint=hint, details=details or {})


class InternalError(TREError):
    """Something went wrong inside tre; users only see the id."""

    def __init__(self, detail: str, *, error_id: str | None = None):
        self.error_id = error_id or new_error_id()
        self.detail = detail
        super().__init__(f"internal error, id {self.error_id}")

    def body(self) -> dict[str, Any]:
        """The canonical JSON body: no detail, only the id."""
        return error_body(
            "internal_error",
            f"internal error, id {self.error_id}",
            hint="Quote this id to the TRE's administrators.",
        )


def new_error_id() -> str:
    """A short random id that links a user-facing message to the service log."""
    return secrets.token_hex(6)


def error_body(
    reason: str,
    message: str,
    *,
    hint: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one JSON error shape used by every tre endpoint."""
    body: dict[str, Any] = {"error": {"reason": reason, "message": message}}
    if hint:
        body["error"]["hint"] = hint
    if details:
        body["error"]["details"] = details
    return body
