"""Query errors: what was wrong, where in the SQL (line and column), and what is allowed."""

from __future__ import annotations

from typing import Any

from tre.errors import UserError


class QueryRefused(UserError):
    """The query is not allowed; the message points at the offending part and says what is."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "query_refused",
        hint: str | None = None,
        line: int | None = None,
        column: int | None = None,
        snippet: str | None = None,
        status: int = 422,
    ):
        where = f"line {line}, column {column}: " if line is not None else ""
        details: dict[str, Any] = {}
        if line is not None:
            details["line"] = line
            details["column"] = column
        if snippet:
            details["near"] = snippet
        super().__init__(
            f"{where}{message}", reason=reason, status=status, hint=hint, details=details
        )


class QueryFailed(UserError):
    """The query was valid but could not be answered; nothing was spent or released."""

    def __init__(
        self, message: str, *, error_id: str, reason: str = "query_failed", hint: str | None = None
    ):
        super().__init__(
            f"{message} (error id {error_id})",
            reason=reason,
            status=422,
            hint=hint or "Simplify the query; quote the error id to the TRE's administrators.",
            details={"error_id": error_id},
        )
        self.error_id = error_id
