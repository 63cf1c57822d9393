"""Accounts: creation, roles, accreditation, disabling, passwords (argon2) and console login.

Every function takes the caller's session and does not commit: run it inside
`Database.transaction()`. Each change writes its audit event in the same transaction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from tre.audit import lock_chain, record, user_actor
from tre.audit.events import (
    AccreditationSet,
    PasswordChanged,
    UserCreated,
    UserDisabled,
    UserEnabled,
    UserRolesSet,
)
from tre.errors import Conflict, InvalidInput, Unauthenticated
from tre.governance._load import user_by_name, user_row, user_view
from tre.governance.decide import SYSTEM, Action, decide, require
from tre.governance.models import User, UserRole
from tre.governance.types import Actor, Role, UserView

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both failures take the same time."""
    return _hasher.hash("tre: no such user, constant-time comparison only")


def _roles(roles: Iterable[Role | str]) -> list[Role]:
    out: set[Role] = set()
    for r in roles:
        try:
            out.add(Role(r))
        except ValueError:
            raise InvalidInput(
                f"unknown role {r!r}",
                reason="unknown_role",
                hint=f"Roles are: {', '.join(x.value for x in Role)}.",
            ) from None
    return sorted(out)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"password is shorter than {MIN_PASSWORD} characters",
            reason="weak_password",
            hint="Use a passphrase of several words.",
        )


def _new_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    email: str | None,
    roles: list[Role],
    accredited_until: date | None,
    password: str | None,
    now: datetime,
) -> User:
    if not USERNAME.match(username):
        raise InvalidInput(
            f"username {username!r} is not allowed",
            reason="bad_username",
            hint="2–64 characters: lower-case letters, digits, '.', '_' or '-', starting "
            "with a letter.",
        )
    if not display_name.strip():
        raise InvalidInput("display name is empty", hint="Give the person's name.")
    if password is not None:
        _check_password(password)
    if user_by_name(session, username) is not None:
        raise Conflict(f"username {username!r} is taken", reason="username_taken")
    user = User(
        username=username,
        display_name=display_name.strip(),
        email=email,
        disabled=False,
        accredited_until=accredited_until,
        password_hash=_hasher.hash(password) if password is not None else None,
        created_at=now,
        roles=[UserRole(role=r.value) for r in roles],
    )
    session.add(user)
    session.flush()
    return user


def bootstrap_admin(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str | None = None,
    email: str | None = None,
    now: datetime,
) -> UserView:
    """Create the first admin; Conflict once any admin exists."""
    lock_chain(session)
    existing = session.execute(
        sa.select(UserRole.user_id).where(UserRole.role == Role.ADMIN.value).limit(1)
    ).first()
    if existing is not None:
        raise Conflict(
            "an admin already exists",
            reason="already_bootstrapped",
            hint="Ask an existing admin to create accounts.",
        )
    user = _new_user(
        session,
        username=username,
        display_name=display_name,
        email=email,
        roles=[Role.ADMIN],
        accredited_until=None,
        password=password,
        now=now,
    )
    record(
        session,
        UserCreated(user_id=user.id, username=username, roles=("admin",), accredited_until=None),
        actor="system:bootstrap",
        now=now,
    )
    return user_view(user)


def create_user(
    session: Session,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    roles: Iterable[Role | str],
    email: str | None = None,
    accredited_until: date | None = None,
    password: str | None = None,
    now: datetime,
) -> UserView:
    """Create an account (admins only)."""
    require(decide(actor, Action.MANAGE_USERS, SYSTEM, now=now))
    lock_chain(session)
    role_list = _roles(roles)
    user = _new_user(
        session,
        username=username,
        display_name=display_name,
        email=email,
        roles=role_list,
        accredited_until=accredited_until,
        password=password,
        now=now,
    )
    record(
        session,
        UserCreated(
            user_id=user.id,
            username=username,
            roles=tuple(r.value for r in role_list),
            accredited_until=accredited_until,
        ),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return user_view(user)


def _managed(session: Session, actor: Actor, user_id: int, now: datetime) -> User:
    user = user_row(session, user_id)
    require(decide(actor, Action.MANAGE_USERS, user_view(user), now=now))
    lock_chain(session)
    return user


def set_roles(
    session: Session, actor: Actor, user_id: int, roles: Iterable[Role | str], *, now: datetime
) -> UserView:
    """Replace a user's roles (admins only, not their own)."""
    user = _managed(session, actor, user_id, now)
    role_list = _roles(roles)
    user.roles = [UserRole(role=r.value) for r in role_list]
    session.flush()
    record(
        session,
        UserRolesSet(user_id=user.id, roles=tuple(r.value for r in role_list)),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return user_view(user)


def set_accreditation(
    session: Session, actor: Actor, user_id: int, accredited_until: date | None, *, now: datetime
) -> UserView:
    """Set (or remove, with None) a researcher's accreditation end date (inclusive)."""
    user = _managed(session, actor, user_id, now)
    user.accredited_until = accredited_until
    session.flush()
    record(
        session,
        AccreditationSet(user_id=user.id, accredited_until=accredited_until),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return user_view(user)


def disable_user(
    session: Session, actor: Actor, user_id: int, *, reason: str, now: datetime
) -> UserView:
    """Disable an account: its tokens and logins stop working on the next request."""
    user = _managed(session, actor, user_id, now)
    if user.disabled:
        raise Conflict(f"user {user.username!r} is already disabled", reason="already_disabled")
    if not reason.strip():
        raise InvalidInput("a reason is required to disable an account")
    user.disabled = True
    session.flush()
    record(
        session,
        UserDisabled(user_id=user.id, reason=reason.strip()),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return user_view(user)


def enable_user(session: Session, actor: Actor, user_id: int, *, now: datetime) -> UserView:
    """Enable a disabled account."""
    user = _managed(session, actor, user_id, now)
    if not user.disabled:
        raise Conflict(f"user {user.username!r} is not disabled", reason="not_disabled")
    user.disabled = False
    session.flush()
    record(session, UserEnabled(user_id=user.id), actor=user_actor(actor.user_id), now=now)
    return user_view(user)


def set_password(
    session: Session, actor: Actor, user_id: int, password: str, *, now: datetime
) -> None:
    """Set a console password: your own, or (admins) someone else's. Stored as argon2 only."""
    if actor.user_id == user_id and not actor.disabled:
        user = user_row(session, user_id)
        lock_chain(session)
    else:
        user = _managed(session, actor, user_id, now)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    session.flush()
    record(session, PasswordChanged(user_id=user.id), actor=user_actor(actor.user_id), now=now)


def login(session: Session, username: str, password: str) -> Actor:
    """Check a console password; Unauthenticated (one message for every failure) otherwise."""
    user = user_by_name(session, username)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    ok: bool
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or user.password_hash is None:
        raise Unauthenticated("wrong username or password")
    if user.disabled:
        raise Unauthenticated("this account is disabled", hint="Ask an admin.")
    return user_view(user).as_actor()


_users = cast(sa.Table, User.__table__)
_role_rows = cast(sa.Table, UserRole.__table__)
# The account and its roles in one round trip (a row per role; one row with a NULL role for
# an account without roles), built once: this runs on every authenticated request.
_ACTOR = (
    sa.select(
        _users.c.id,
        _users.c.username,
        _users.c.disabled,
        _users.c.accredited_until,
        _role_rows.c.role,
    )
    .select_from(_users.outerjoin(_role_rows, _role_rows.c.user_id == _users.c.id))
    .where(_users.c.id == sa.bindparam("x_user"))
)


def actor_from_rows(rows: Sequence[Any]) -> Actor:
    """The actor from the rows of `_ACTOR` (or of a query with the same columns);
    Unauthenticated if there are none (the account is gone) or it is disabled."""
    if not rows:
        raise Unauthenticated("this account no longer exists")
    first = rows[0]
    if first.disabled:
        raise Unauthenticated("this account is disabled", hint="Ask an admin.")
    return Actor(
        user_id=first.id,
        username=first.username,
        roles=frozenset(Role(r.role) for r in rows if r.role is not None),
        disabled=False,
        accredited_until=first.accredited_until,
    )


def load_actor(session: Session, user_id: int) -> Actor:
    """The acting user as of now (for console sessions); Unauthenticated if gone or disabled.

    One Core query (no ORM objects): it runs on every request with a console session.
    """
    return actor_from_rows(session.execute(_ACTOR, {"x_user": user_id}).all())


def get_user(session: Session, actor: Actor, user_id: int, *, now: datetime) -> UserView:
    """One account: yourself, or anyone for an admin."""
    user = user_row(session, user_id)
    if user.id != actor.user_id:
        require(decide(actor, Action.MANAGE_USERS, SYSTEM, now=now))
    return user_view(user)


def list_users(session: Session, actor: Actor, *, now: datetime) -> list[UserView]:
    """Every account, by username (admins only)."""
    require(decide(actor, Action.MANAGE_USERS, SYSTEM, now=now))
    users = session.execute(sa.select(User).order_by(User.username)).scalars()
    return [user_view(u) for u in users]
