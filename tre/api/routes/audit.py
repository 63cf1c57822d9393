"""The audit log: list events and verify the hash chain (admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tre import audit
from tre import governance as g
from tre.api.deps import Now, SessionCaller, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.errors import InvalidInput
from tre.wire.audit import AuditEventOut, AuditPageOut, VerifyOut

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)
MAX_SEQ = 2**62


@router.get("/events", response_model=AuditPageOut)
def events(
    who: SessionCaller,
    svc: Svc,
    at: Now,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    event_type: Annotated[str | None, Query(pattern=r"^[a-z_]+\.[a-z_]+$", max_length=80)] = None,
) -> AuditPageOut:
    """Events after `after_seq`, oldest first, optionally of one type."""
    g.require(g.decide(who.actor, g.Action.READ_AUDIT, g.SYSTEM, now=at))
    with svc.db.read() as s:
        rows = audit.read_events(s, after_seq=after_seq, limit=limit, event_type=event_type)
    return AuditPageOut(
        events=[AuditEventOut(**vars(e)) for e in rows],
        next_after_seq=rows[-1].seq if len(rows) == limit else None,
    )


@router.get("/verify", response_model=VerifyOut)
def verify(
    who: SessionCaller,
    svc: Svc,
    at: Now,
    anchor_seq: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    anchor_hash: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
) -> VerifyOut:
    """Recompute the chain; with an anchor (seq and hash kept elsewhere), detect rewrites."""
    g.require(g.decide(who.actor, g.Action.READ_AUDIT, g.SYSTEM, now=at))
    if (anchor_seq is None) != (anchor_hash is None):
        raise InvalidInput(
            "give both anchor_seq and anchor_hash, or neither",
            details={
                "fields": [
                    {"path": "query.anchor_hash", "message": "both or neither", "type": "anchor"}
                ]
            },
        )
    anchor = (anchor_seq, anchor_hash) if anchor_seq is not None and anchor_hash else None
    with svc.db.read() as s:
        result = audit.verify(s, anchor=anchor)
    return VerifyOut(**vars(result))
