"""Audit events of the query engine: the question and its cost are recorded, never the answer."""

from __future__ import annotations

from decimal import Decimal

from tre.audit.payload import AuditEvent


class QueryAnswered(AuditEvent):
    """A query was answered (charged, or free from the cache of released answers)."""

    event_type = "query.answered"
    query_id: str
    project_id: int
    user_id: int
    query_text: str
    query_digest: str
    mode: str
    datasets: tuple[str, ...]
    rho: Decimal
    delta: Decimal
    cached: bool


class QueryRefusedEvent(AuditEvent):
    """A query was refused before it ran (nothing spent)."""

    event_type = "query.refused"
    query_id: str
    project_id: int
    user_id: int
    query_text: str
    query_digest: str
    reason: str


class QueryFailedEvent(AuditEvent):
    """A valid query failed while running (nothing spent or released); the id is in the log."""

    event_type = "query.failed"
    query_id: str
    project_id: int
    user_id: int
    query_text: str
    query_digest: str
    error_id: str
