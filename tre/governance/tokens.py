"""API tokens: random, stored only as sha256, scoped to one user and one project, expiring.

`authenticate()` is called on every API request: it checks the token *and* the lifecycle
(account enabled, membership, accreditation, project active and within its dates), so access
ends on the day it should even for a token issued earlier.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tre.audit import TOKEN_PREFIX, lock_chain, record, user_actor
from tre.audit.events import TokenIssued, TokenRevoked
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from tre.governance._load import project_row, project_view
from tre.governance.decide import Action, decide, require
from tre.governance.models import ApiToken, User, UserRole
from tre.governance.types import Actor, AuthContext, IssuedToken, TokenView
from tre.governance.users import actor_from_rows

DEFAULT_TOKEN_TTL = timedelta(hours=12)
MAX_TOKEN_TTL = timedelta(days=30)


def hash_token(raw: str) -> str:
    """The stored form of a token: hex sha256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def new_raw_token() -> str:
    """A fresh token: the recognisable prefix plus 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _view(t: ApiToken) -> TokenView:
    return TokenView(
        id=t.id,
        user_id=t.user_id,
        project_id=t.project_id,
        label=t.label,
        created_at=t.created_at,
        expires_at=t.expires_at,
        revoked_at=t.revoked_at,
    )


def issue_token(
    session: Session,
    actor: Actor,
    project_id: int,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
    label: str = "api",
) -> IssuedToken:
    """Issue a token for the actor on a project they may use; the raw token is returned once."""
    if ttl <= timedelta(0) or ttl > MAX_TOKEN_TTL:
        raise InvalidInput(
            f"token lifetime must be positive and at most {MAX_TOKEN_TTL.days} days",
            reason="bad_ttl",
        )
    label = label.strip()[:100] or "api"
    project = project_view(project_row(session, project_id))
    require(decide(actor, Action.ISSUE_TOKEN, project, now=now))
    lock_chain(session)
    raw = new_raw_token()
    token = ApiToken(
        id=secrets.token_hex(8),
        token_sha256=hash_token(raw),
        user_id=actor.user_id,
        project_id=project_id,
        label=label,
        created_at=now,
        expires_at=now + ttl,
        revoked_at=None,
    )
    session.add(token)
    session.flush()
    record(
        session,
        TokenIssued(
            token_id=token.id,
            user_id=actor.user_id,
            project_id=project_id,
            expires_at=token.expires_at,
        ),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return IssuedToken(token=_view(token), raw=raw)


def revoke_token(
    session: Session, actor: Actor, token_id: str, *, reason: str, now: datetime
) -> TokenView:
    """Revoke a token (its owner or an admin); it stops working on the next request."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no API token with id {token_id!r}")
    require(decide(actor, Action.REVOKE_TOKEN, _view(token), now=now))
    lock_chain(session)
    session.refresh(token)
    if token.revoked_at is not None:
        raise Conflict(f"API token {token_id} is already revoked", reason="already_revoked")
    token.revoked_at = now
    session.flush()
    record(
        session,
        TokenRevoked(token_id=token.id, reason=reason.strip() or "revoked"),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return _view(token)


def list_tokens(session: Session, actor: Actor) -> list[TokenView]:
    """The actor's own tokens, newest first (never the tokens themselves)."""
    rows = session.execute(
        sa.select(ApiToken)
        .where(ApiToken.user_id == actor.user_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id)
    ).scalars()
    return [_view(t) for t in rows]


_tokens = cast(sa.Table, ApiToken.__table__)
_users = cast(sa.Table, User.__table__)
_roles = cast(sa.Table, UserRole.__table__)
# The token, its account and the account's roles in one round trip (a row per role).
_TOKEN_ACTOR = (
    sa.select(
        _tokens.c.id.label("token_id"),
        _tokens.c.project_id,
        _tokens.c.revoked_at,
        _tokens.c.expires_at,
        _users.c.id,
        _users.c.username,
        _users.c.disabled,
        _users.c.accredited_until,
        _roles.c.role,
    )
    .select_from(
        _tokens.outerjoin(_users, _users.c.id == _tokens.c.user_id).outerjoin(
            _roles, _roles.c.user_id == _users.c.id
        )
    )
    .where(_tokens.c.token_sha256 == sa.bindparam("x_sha256"))
)


def authenticate(session: Session, raw_token: str, *, now: datetime) -> AuthContext:
    """Who is calling, for which project: Unauthenticated for an unknown, expired or revoked
    token or a disabled account; Forbidden (with the reason) when the lifecycle no longer
    allows the project's use (membership, accreditation, project state and dates)."""
    hint = "Get a new token from the tre console or your notebook's login."
    if not raw_token.startswith(TOKEN_PREFIX) or len(raw_token) > 200:
        raise Unauthenticated("not a tre API token", hint=hint)
    rows = session.execute(_TOKEN_ACTOR, {"x_sha256": hash_token(raw_token)}).all()
    if not rows:
        raise Unauthenticated("unknown API token", hint=hint)
    token = rows[0]
    if token.revoked_at is not None:
        raise Unauthenticated("this API token was revoked", hint=hint)
    expires_at: datetime = token.expires_at  # aware UTC (UTCDateTime)
    if now >= expires_at:
        raise Unauthenticated(
            f"this API token expired at {expires_at:%Y-%m-%d %H:%M} UTC", hint=hint
        )
    if token.id is None:
        raise Unauthenticated("this account no longer exists")
    actor = actor_from_rows(rows)
    project = project_view(project_row(session, token.project_id))
    decision = decide(actor, Action.USE_PROJECT, project, now=now)
    if not decision.allowed:
        raise Forbidden(decision.reason, reason="no_project_access")
    return AuthContext(actor=actor, project=project, token_id=token.token_id)
