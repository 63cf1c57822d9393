"""tre.audit: typed audit events and the append-only, hash-chained log (layer 1).

`record(session, event, actor=..., now=...)` appends in the caller's transaction;
`verify(session)` recomputes the chain. Nothing else writes to the audit tables.
"""

from tre.audit.payload import (
    EVENT_TYPES,
    SECRET_MARKERS,
    TOKEN_PREFIX,
    AuditEvent,
    AuditPayload,
    denied_field_name,
)
from tre.audit.store import (
    GENESIS_HASH,
    ChainEntry,
    ChainLockRead,
    StoredEvent,
    VerifyResult,
    canonical_json,
    chain_entry,
    event_hash,
    head,
    lock_chain,
    read_events,
    record,
    user_actor,
    verify,
)

__all__ = [
    "EVENT_TYPES",
    "GENESIS_HASH",
    "SECRET_MARKERS",
    "TOKEN_PREFIX",
    "AuditEvent",
    "AuditPayload",
    "ChainEntry",
    "ChainLockRead",
    "StoredEvent",
    "VerifyResult",
    "canonical_json",
    "chain_entry",
    "denied_field_name",
    "event_hash",
    "head",
    "lock_chain",
    "read_events",
    "record",
    "user_actor",
    "verify",
]
