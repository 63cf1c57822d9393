"""FastAPI dependencies: the app's services, the clock, and who is calling.

Two kinds of bearer credential:
- a console **session** (`tre_ses_…`, from `POST /auth/login`): the person's whole account;
  the account is re-read on every request, so a disabled account stops at once;
- a **project token** (`tre_tok_…`, from `POST /tokens`): one person on one project, for
  notebooks and scripts; `tre.governance.authenticate` re-checks the whole lifecycle (token
  expiry and revocation, account, membership, accreditation, project state and dates) on
  every request. A project token reaches only read endpoints and its own project; anything
  that changes governance needs a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tre import governance as g
from tre.api.sessions import SESSION_PREFIX, Session
from tre.api.state import Services
from tre.audit import TOKEN_PREFIX
from tre.errors import Forbidden, Unauthenticated

_bearer = HTTPBearer(
    auto_error=False,
    description="A console session (`tre_ses_…` from POST /auth/login) or a project token "
    "(`tre_tok_…` from POST /tokens).",
)
_HINT = "Send `Authorization: Bearer <token>`: log in with POST /auth/login, or use a token."


# The trivial dependencies are `async def`: FastAPI runs a plain `def` dependency in its
# thread pool, and each hop there cost more CPU than the work (measured: a ledger request made
# five hops). Only `principal`, which reads the database, stays a blocking function; routes
# that do their own blocking work in one hop take `CallerBearer` and call `resolve` there.


async def services(request: Request) -> Services:
    """The app's services."""
    svc: Services = request.app.state.services
    return svc


async def now(svc: Annotated[Services, Depends(services)]) -> datetime:
    """The time of this request (the app's clock: real time, or fixed in tests)."""
    return svc.clock()


@dataclass(frozen=True)
class Principal:
    """Who is calling, with which kind of credential."""

    actor: g.Actor
    credential: Literal["session", "project_token"]
    project_id: int | None = None
    token_id: str | None = None

    def require_session(self) -> None:
        """Refuse project tokens (endpoints that change governance need a console session)."""
        if self.credential != "session":
            raise Forbidden(
                "a project token cannot do this; it only reads and uses its own project",
                reason="session_required",
                hint="Log in (POST /auth/login) and use the session instead.",
            )

    def require_project(self, project_id: int) -> None:
        """Refuse a project token used on another project."""
        if self.project_id is not None and self.project_id != project_id:
            raise Forbidden(
                f"this token is scoped to project {self.project_id}, not {project_id}",
                reason="wrong_project",
                hint="Use a token issued for that project.",
            )


@dataclass(frozen=True)
class Bearer:
    """The request's bearer credential, checked as far as it can be without the database."""

    raw: str
    session: Session | None  # a console session whose signature and expiry are good


async def bearer(
    svc: Annotated[Services, Depends(services)],
    at: Annotated[datetime, Depends(now)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Bearer:
    """The bearer, its form (and a session's signature and expiry) checked: 401 otherwise.

    CPU only, so it runs on the event loop; `resolve` does the database part.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("authentication required", hint=_HINT)
    raw = credentials.credentials
    if raw.startswith(SESSION_PREFIX):
        return Bearer(raw=raw, session=svc.sessions.verify(raw, now=at))
    if raw.startswith(TOKEN_PREFIX):
        return Bearer(raw=raw, session=None)
    raise Unauthenticated("not a tre session or API token", hint=_HINT)


def resolve(svc: Services, who: Bearer, at: datetime) -> Principal:
    """Who is calling, read from the database now (blocking: call it from a worker thread).

    Read fresh on every request (no cache that could outlive a revocation or a disabled
    account), each statement on its own: no BEGIN/ROLLBACK round trips (Database.lookup).
    401 for an unknown, expired or revoked token or a gone or disabled account; 403 when a
    token's project may no longer be used.
    """
    session = who.session
    if session is not None:
        actor = svc.db.lookup(lambda s: g.load_actor(s, session.user_id))
        return Principal(actor=actor, credential="session")
    ctx = svc.db.lookup(lambda s: g.authenticate(s, who.raw, now=at))
    return Principal(
        actor=ctx.actor,
        credential="project_token",
        project_id=ctx.project.id,
        token_id=ctx.token_id,
    )


def principal(
    svc: Annotated[Services, Depends(services)],
    at: Annotated[datetime, Depends(now)],
    who: Annotated[Bearer, Depends(bearer)],
) -> Principal:
    """Authenticate the bearer on this request (401 unknown/expired/revoked; 403 lifecycle)."""
    return resolve(svc, who, at)


async def session_principal(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """A caller with a console session (not a project token)."""
    who.require_session()
    return who


Svc = Annotated[Services, Depends(services)]
Now = Annotated[datetime, Depends(now)]
Caller = Annotated[Principal, Depends(principal)]
SessionCaller = Annotated[Principal, Depends(session_principal)]
CallerBearer = Annotated[Bearer, Depends(bearer)]
