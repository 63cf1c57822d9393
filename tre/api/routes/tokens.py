"""API tokens: issue (shown once), list your own, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path

from tre import governance as g
from tre.api.convert import token_out
from tre.api.deps import Caller, Now, SessionCaller, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.wire.tokens import IssuedTokenOut, RevokeIn, TokenIssueIn, TokenOut

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERROR_RESPONSES)
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")]


@router.post("", response_model=IssuedTokenOut, status_code=201)
def issue(body: TokenIssueIn, who: SessionCaller, svc: Svc, at: Now) -> IssuedTokenOut:
    """Issue a token for a project you may use now; the token is in this response only."""
    with svc.db.transaction() as s:
        issued = g.issue_token(
            s,
            who.actor,
            body.project_id,
            now=at,
            ttl=timedelta(hours=body.ttl_hours),
            label=body.label,
        )
    return IssuedTokenOut(token=issued.raw, info=token_out(issued.token))


@router.get("", response_model=list[TokenOut])
def list_tokens(who: Caller, svc: Svc) -> list[TokenOut]:
    """Your tokens, newest first (never the tokens themselves)."""
    with svc.db.read() as s:
        return [token_out(t) for t in g.list_tokens(s, who.actor)]


@router.post("/{token_id}/revoke", response_model=TokenOut)
def revoke(token_id: TokenId, body: RevokeIn, who: Caller, svc: Svc, at: Now) -> TokenOut:
    """Revoke a token (its owner or an admin): it stops working on the next request."""
    with svc.db.transaction() as s:
        return token_out(g.revoke_token(s, who.actor, token_id, reason=body.reason, now=at))
