"""Queries from notebooks: run (charged to the project's budget) and explain (free).

Only a project token may query: the token names the person and the project, and
`tre.governance.authenticate` (in `deps.principal`) re-checks the whole lifecycle on every
request. The grant is built fresh per request by `grant_for`, so a revoked project or an
expired accreditation stops the next query. One sandbox worker process serves the app; the
ledger, the audit log and the answer cache are the app's database.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from fastapi import APIRouter, FastAPI, Request
from pydantic import Field, model_validator

from tre import governance as g
from tre.api.deps import Caller, Now, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.api.state import Services
from tre.audit import user_actor
from tre.errors import Forbidden
from tre.query.execute import Worker
from tre.query.service import QueryService, QuerySettings
from tre.query.store import DatabaseAnswerCache, DatabaseAudit, DatabaseLedger
from tre.wire._base import WireIn
from tre.wire.grant import Grant

router = APIRouter(prefix="/query", tags=["query"], responses=ERROR_RESPONSES)
_LOCK = threading.Lock()


class QueryIn(WireIn):
    """One aggregate SQL question, with its privacy parameter (exactly one of ε and ρ)."""

    sql: str = Field(min_length=1, max_length=100_000)
    epsilon: float | None = Field(default=None, gt=0, le=100)
    rho: float | None = Field(default=None, gt=0, le=100)
    mode: Literal["dp", "sdc"] = "dp"

    @model_validator(mode="after")
    def _one_parameter(self) -> QueryIn:
        # SDC mode (exact, disclosure-checked) spends no budget and takes neither.
        if self.mode == "dp" and (self.epsilon is None) == (self.rho is None):
            raise ValueError("give exactly one of epsilon and rho")
        return self


def _worker(app: FastAPI) -> Worker:
    # One sandbox process per app, started on the first query (most apps never query).
    with _LOCK:
        worker: Worker | None = getattr(app.state, "query_worker", None)
        if worker is None:
            worker = Worker()
            app.state.query_worker = worker
        return worker


def close_worker(app: FastAPI) -> None:
    """Stop the app's sandbox worker, if one was started (called at shutdown)."""
    worker: Worker | None = getattr(app.state, "query_worker", None)
    if worker is not None:
        worker.close()
        app.state.query_worker = None


def _context(who: Caller, svc: Services, request: Request, at: Any) -> tuple[QueryService, Grant]:
    if who.credential != "project_token" or who.project_id is None:
        raise Forbidden(
            "queries need a project token (it says which project the question is for)",
            reason="project_token_required",
            hint="Issue one with POST /tokens and send it as `Authorization: Bearer tre_tok_…`.",
        )
    with svc.db.read() as s:
        grant = g.grant_for(s, who.actor, who.project_id, budget=svc.ledger, now=at)
    actor = user_actor(who.actor.user_id)
    service = QueryService(
        svc.catalog,
        DatabaseLedger(svc.db, actor, svc.ledger, svc.clock),
        DatabaseAudit(svc.db, actor, svc.clock),
        worker=_worker(request.app),
        cache=DatabaseAnswerCache(svc.db),
        settings=QuerySettings(lookup_dir=str(svc.settings.policy_dir / "lookups")),
    )
    return service, grant


# Queries wait for the sandbox in threads of their own (settings.query_threads per process), so
# that slow queries never occupy the few threads the control plane's short work runs in.
_QUERY_THREADS: RunVar[anyio.CapacityLimiter] = RunVar("tre_query_threads")


def _query_threads(svc: Services) -> anyio.CapacityLimiter:
    try:
        return _QUERY_THREADS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(svc.settings.query_threads)
        _QUERY_THREADS.set(limiter)
        return limiter


@router.post("")
async def run(body: QueryIn, who: Caller, svc: Svc, at: Now, request: Request) -> dict[str, Any]:
    """Answer an aggregate query: noisy cells with 95% half-widths; the cost is charged first."""

    def work() -> dict[str, Any]:
        service, grant = _context(who, svc, request, at)
        result = service.run(
            body.sql, grant, epsilon=body.epsilon, rho=body.rho, mode=body.mode, today=at.date()
        )
        return result.to_json()

    return await anyio.to_thread.run_sync(work, limiter=_query_threads(svc))


@router.post("/explain")
async def explain(
    body: QueryIn, who: Caller, svc: Svc, at: Now, request: Request
) -> dict[str, Any]:
    """What the query would do and cost, and its expected accuracy; nothing runs or is spent."""

    def work() -> dict[str, Any]:
        service, grant = _context(who, svc, request, at)
        return service.explain(
            body.sql, grant, epsilon=body.epsilon, rho=body.rho, mode=body.mode, today=at.date()
        ).to_json()

    return await anyio.to_thread.run_sync(work, limiter=_query_threads(svc))
