"""Errors the notebook client raises: the server's reason, message and hint, readable in Jupyter."""

from __future__ import annotations

import html
from typing import Any

from tre.errors import UserError


class TREClientError(UserError):
    """A refusal or failure, with what was wrong (`message`), why (`reason`) and a `hint`."""

    def __str__(self) -> str:
        lines = [self.message, f"  reason: {self.reason} (HTTP {self.status})"]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a long traceback through httpx internals.
        return [f"{type(self).__name__}: {self}"]

    def _repr_html_(self) -> str:
        hint = f"<br><b>hint:</b> {html.escape(self.hint)}" if self.hint else ""
        return (
            f"<div style='border-left:4px solid #c00;padding:4px 8px'>"
            f"<b>{html.escape(type(self).__name__)}</b> ({html.escape(self.reason)}, "
            f"HTTP {self.status}): {html.escape(self.message)}{hint}</div>"
        )


class APIError(TREClientError):
    """The tre API refused or failed a request; the fields are the server's error body."""

    @classmethod
    def from_response(cls, status: int, body: Any) -> APIError:
        """Build from an HTTP status and the canonical error body `{"error": {...}}`."""
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            return cls(
                f"the tre API answered HTTP {status} without an error body",
                reason="bad_response",
                status=status,
                hint="Check that TRE_API_URL points at a tre API.",
            )
        details = err.get("details")
        return cls(
            str(err.get("message", "request failed")),
            reason=str(err.get("reason", "error")),
            status=status,
            hint=err.get("hint"),
            details=details if isinstance(details, dict) else {},
        )


class NotConnected(TREClientError):
    """The client has no API address or token, or cannot reach the API."""

    def __init__(self, message: str, *, hint: str):
        super().__init__(message, reason="not_connected", status=0, hint=hint)
