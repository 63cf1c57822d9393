"""Accounts and accreditation (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tre import governance as g
from tre.api.convert import user_out
from tre.api.deps import Now, SessionCaller, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.wire._base import MAX_ID
from tre.wire.accounts import (
    AccreditationIn,
    DisableIn,
    PasswordIn,
    RolesIn,
    UserCreate,
    UserOut,
)

router = APIRouter(prefix="/users", tags=["users"], responses=ERROR_RESPONSES)
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=list[UserOut])
def list_users(who: SessionCaller, svc: Svc, at: Now) -> list[UserOut]:
    """Every account (admins)."""
    with svc.db.read() as s:
        return [user_out(u) for u in g.list_users(s, who.actor, now=at)]


@router.post("", response_model=UserOut, status_code=201)
def create_user(body: UserCreate, who: SessionCaller, svc: Svc, at: Now) -> UserOut:
    """Create an account (admins)."""
    with svc.db.transaction() as s:
        user = g.create_user(
            s,
            who.actor,
            username=body.username,
            display_name=body.display_name,
            roles=body.roles,
            email=body.email,
            accredited_until=body.accredited_until,
            password=body.password,
            now=at,
        )
    return user_out(user)


@router.get("/{user_id}", response_model=UserOut)
def get_user(user_id: UserId, who: SessionCaller, svc: Svc, at: Now) -> UserOut:
    """One account: your own, or anyone's for an admin."""
    with svc.db.read() as s:
        return user_out(g.get_user(s, who.actor, user_id, now=at))


@router.put("/{user_id}/roles", response_model=UserOut)
def set_roles(user_id: UserId, body: RolesIn, who: SessionCaller, svc: Svc, at: Now) -> UserOut:
    """Replace an account's roles (admins, not their own)."""
    with svc.db.transaction() as s:
        return user_out(g.set_roles(s, who.actor, user_id, body.roles, now=at))


@router.put("/{user_id}/accreditation", response_model=UserOut)
def set_accreditation(
    user_id: UserId, body: AccreditationIn, who: SessionCaller, svc: Svc, at: Now
) -> UserOut:
    """Set or remove a researcher's accreditation end date (admins)."""
    with svc.db.transaction() as s:
        return user_out(g.set_accreditation(s, who.actor, user_id, body.accredited_until, now=at))


@router.post("/{user_id}/disable", response_model=UserOut)
def disable_user(
    user_id: UserId, body: DisableIn, who: SessionCaller, svc: Svc, at: Now
) -> UserOut:
    """Disable an account: its sessions and tokens stop working on the next request."""
    with svc.db.transaction() as s:
        return user_out(g.disable_user(s, who.actor, user_id, reason=body.reason, now=at))


@router.post("/{user_id}/enable", response_model=UserOut)
def enable_user(user_id: UserId, who: SessionCaller, svc: Svc, at: Now) -> UserOut:
    """Enable a disabled account (admins)."""
    with svc.db.transaction() as s:
        return user_out(g.enable_user(s, who.actor, user_id, now=at))


@router.put("/{user_id}/password", status_code=204)
def set_password(user_id: UserId, body: PasswordIn, who: SessionCaller, svc: Svc, at: Now) -> None:
    """Set someone's console password (admins; your own too)."""
    with svc.db.transaction() as s:
        g.set_password(s, who.actor, user_id, body.password, now=at)
