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
from tre.api.sessions import SESSION_PREFIX
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
# five hops). Only `principal`, which reads the database, stays a blocking function.


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


def principal(
    svc: Annotated[Services, Depends(services)],
    at: Annotated[datetime, Depends(now)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Authenticate the bearer on this request (401 unknown/expired/revoked; 403 lifecycle)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("authentication required", hint=_HINT)
    raw = credentials.credentials
    # Read fresh on every request (no cache that could outlive a revocation or a disabled
    # account), each statement on its own: no BEGIN/ROLLBACK round trips (Database.lookup).
    if raw.startswith(SESSION_PREFIX):
        session = svc.sessions.verify(raw, now=at)
        actor = svc.db.lookup(lambda s: g.load_actor(s, session.user_id))
        return Principal(actor=actor, credential="session")
    if raw.startswith(TOKEN_PREFIX):
        ctx = svc.db.lookup(lambda s: g.authenticate(s, raw, now=at))
        return Principal(
            actor=ctx.actor,
            credential="project_token",
            project_id=ctx.project.id,
            token_id=ctx.token_id,
        )
    raise Unauthenticated("not a tre session or API token", hint=_HINT)


async def session_principal(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """A caller with a console session (not a project token)."""
    who.require_session()
    return who


Svc = Annotated[Services, Depends(services)]
Now = Annotated[datetime, Depends(now)]
Caller = Annotated[Principal, Depends(principal)]
SessionCaller = Annotated[Principal, Depends(session_principal)]
