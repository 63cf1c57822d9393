"""The one JSON error body every tre endpoint returns (`tre.errors.error_body` builds it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    """What went wrong: a machine-readable reason, a readable message, how to fix it."""

    reason: str = Field(description="machine-readable cause, e.g. `budget_exhausted`")
    message: str = Field(description="what was wrong, safe to show to the caller")
    hint: str | None = Field(default=None, description="how to fix it")
    details: dict[str, Any] | None = Field(
        default=None, description="extra facts, e.g. the field paths of invalid input"
    )


class ErrorBody(BaseModel):
    """`{"error": {"reason", "message", "hint"?, "details"?}}`."""

    error: ErrorDetail


class FieldProblem(BaseModel):
    """One invalid field of a request (in `details.fields` of a 422)."""

    path: str = Field(description="where: `body.datasets.0.budget.rho`, `query.limit`, …")
    message: str
    type: str = Field(description="pydantic's error type, e.g. `missing`, `greater_than_equal`")
