"""Console login, the caller's own account, and password changes."""

from __future__ import annotations

from fastapi import APIRouter

from tre import governance as g
from tre.api.convert import user_out
from tre.api.deps import Caller, Now, SessionCaller, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.wire.accounts import LoginIn, MeOut, PasswordIn, SessionOut

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


@router.post("/auth/login", response_model=SessionOut)
def login(body: LoginIn, svc: Svc, at: Now) -> SessionOut:
    """Check a console password (argon2) and return a session bearer."""
    with svc.db.read() as s:
        actor = g.login(s, body.username, body.password)
        user = g.get_user(s, actor, actor.user_id, now=at)
    raw, expires = svc.sessions.issue(actor.user_id, now=at)
    return SessionOut(access_token=raw, expires_at=expires, user=user_out(user))


@router.get("/me", response_model=MeOut)
def me(who: Caller, svc: Svc, at: Now) -> MeOut:
    """Who these credentials belong to and what they are scoped to."""
    with svc.db.read() as s:
        user = g.get_user(s, who.actor, who.actor.user_id, now=at)
    return MeOut(
        user=user_out(user),
        credential=who.credential,
        project_id=who.project_id,
        token_id=who.token_id,
    )


@router.put("/me/password", status_code=204)
def change_password(body: PasswordIn, who: SessionCaller, svc: Svc, at: Now) -> None:
    """Set your own console password."""
    with svc.db.transaction() as s:
        g.set_password(s, who.actor, who.actor.user_id, body.password, now=at)
