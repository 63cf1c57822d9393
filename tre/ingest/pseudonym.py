"""Keyed pseudonyms as DuckDB SQL: HMAC-SHA256 from sha256 with the ipad/opad construction.

HMAC(K, m) = H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)) for a key of at most one block (64 bytes).
The two padded keys are constants per ingest, computed here in Python and handed to DuckDB as
query parameters (never spliced into SQL text, so they cannot leak through an echoed query).
DuckDB then computes every pseudonym vectorised; Python never loops over rows.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from tre.catalog.keys import derive_key

_BLOCK = 64


@dataclass(frozen=True, repr=False)
class HmacPads:
    """The key xor-ed with ipad and opad (secret: repr hides them)."""

    inner: bytes
    outer: bytes

    def __repr__(self) -> str:
        return "HmacPads(<secret>)"


def hmac_pads(key: bytes) -> HmacPads:
    """ipad/opad blocks for `key` (keys longer than a block are hashed first, as RFC 2104 says)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\x00")
    return HmacPads(
        inner=bytes(b ^ 0x36 for b in padded),
        outer=bytes(b ^ 0x5C for b in padded),
    )


_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()
_ASCII_UPPER = str.maketrans(_LOWER, _UPPER)


def normalise(identifier: str) -> str:
    """The normalised identifier: surrounding spaces removed, ASCII letters upper-cased.

    ASCII-only on purpose: Unicode case mapping differs between libraries (ß → SS or ẞ), and a
    pseudonym must not depend on which library computed it.
    """
    return identifier.strip(" ").translate(_ASCII_UPPER)


def normalise_sql(expr: str) -> str:
    """`normalise` as a DuckDB SQL expression.

    Identifiers are nearly always normalised already; `translate` is slow (about 1.5 µs a
    value), so it runs only for values with a lower-case letter or an outer space. A value
    equal to its Unicode upper case has no ASCII lower-case letter, so skipping it is exact.
    """
    slow = f"translate(trim({expr}, ' '), '{_LOWER}', '{_UPPER}')"
    clean = (
        f"{expr} = upper({expr}) AND NOT starts_with({expr}, ' ') AND NOT ends_with({expr}, ' ')"
    )
    return f"(CASE WHEN {clean} THEN {expr} ELSE {slow} END)"


def hmac_sql(
    message_expr: str, inner_param: str = "$hmac_inner", outer_param: str = "$hmac_outer"
) -> str:
    """SQL giving lower-case hex HMAC-SHA256 of the VARCHAR `message_expr` (UTF-8 bytes)."""
    inner = f"unhex(sha256({inner_param}::BLOB || encode({message_expr})))"
    return f"sha256({outer_param}::BLOB || {inner})"


def hmac_params(key: bytes) -> dict[str, bytes]:
    """Query parameters for `hmac_sql`."""
    pads = hmac_pads(key)
    return {"hmac_inner": pads.inner, "hmac_outer": pads.outer}


def pseudonym(key: bytes, identifier: str) -> str:
    """The pseudonym of one identifier, in Python (for tests and single look-ups only)."""
    return hmac.new(key, normalise(identifier).encode("utf-8"), hashlib.sha256).hexdigest()


def rank_seed(key: bytes) -> int:
    """A signed 64-bit seed for the keyed row order, derived from (never equal to) the key."""
    return int.from_bytes(derive_key(key, "row rank order")[:8], "big", signed=True)
