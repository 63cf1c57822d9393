"""The FastAPI app factory: `create_app(settings)` builds an independent app (no globals)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from tre import __version__
from tre.api import errors
from tre.api.routes import (
    audit,
    auth,
    budgets,
    datasets,
    ledger,
    outputs,
    projects,
    query,
    tokens,
    users,
)
from tre.api.sessions import SessionSigner, load_or_create_secret
from tre.api.state import Clock, Services
from tre.catalog.catalog import Catalog
from tre.config import Settings, load_settings
from tre.db import Database, utcnow
from tre.privacy.ledger import Ledger
from tre.query.errors import QueryFailed
from tre.query.execute import Worker

log = logging.getLogger("tre.api")

ROUTERS = (
    auth.router,
    users.router,
    datasets.router,
    projects.router,
    budgets.router,
    tokens.router,
    audit.router,
    ledger.router,
    query.router,
    outputs.router,
)

DESCRIPTION = """
The tre control plane: accounts and accreditation, the dataset catalogue, project
applications and custodians' approvals, projects and members, privacy budgets, API tokens
and the tamper-evident audit log.

**Authentication**: `Authorization: Bearer <credential>`, either a console session from
`POST /auth/login` (`tre_ses_…`) or a project token from `POST /tokens` (`tre_tok_…`, one
person on one project; it reaches read endpoints and its own project only). Every request
re-checks the account and, for tokens, the whole project lifecycle.

**Errors** all have one body: `{"error": {"reason", "message", "hint"?, "details"?}}`.
401 unknown/expired/revoked credentials; 403 not allowed (the message says why); 404 unknown;
409 impossible in the current state; 422 invalid input (`details.fields` lists field paths).
"""


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock = utcnow,
    migrate: bool = False,
    start_worker: bool = False,
) -> FastAPI:
    """A new API app over the control plane named by `settings` (or the `database` given).

    `migrate=True` upgrades the schema first (the `tre serve` command does it once before
    starting workers). `clock` is injected so tests can move time. `start_worker=True` starts
    the query sandbox when the app starts rather than on the first query (served apps do).
    """
    db = database or Database.from_settings(settings)
    if migrate:
        db.upgrade()
    services = Services(
        settings=settings,
        db=db,
        ledger=Ledger(),
        catalog=Catalog(settings.datasets_dir),
        sessions=SessionSigner(load_or_create_secret(settings.key_dir / "api" / "session.secret")),
        clock=clock,
    )
    owns_db = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The thread pool of sync routes and `run_in_threadpool` (this event loop's).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        if start_worker:
            # Spawning the sandbox and loading DuckDB made a notebook's first query take
            # seconds; warm it in the background so start-up (and /health) is not delayed.
            worker = Worker()
            app.state.query_worker = worker
            threading.Thread(target=_warm, args=(worker,), daemon=True).start()
        yield
        query.close_worker(app)
        if owns_db:
            db.dispose()

    app = FastAPI(
        title="tre",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    from tre import web  # here, not at the top: tre.web imports tre.api's dependencies

    app.include_router(web.router())

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: the process answers (no authentication, no database)."""
        return {"status": "ok", "version": __version__}

    return app


def _warm(worker: Worker) -> None:
    """Start the sandbox process with a trivial statement (a failure is retried by a query)."""
    try:
        worker.run((), ("SELECT 1",))
    except QueryFailed:
        log.warning("the query sandbox did not start; the first query will start it")


def app_from_environment() -> FastAPI:
    """The app for `uvicorn --factory tre.api.app:app_from_environment` (settings from TRE_*)."""
    return create_app(load_settings(), start_worker=True)
