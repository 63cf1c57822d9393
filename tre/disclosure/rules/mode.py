"""Mode: class disclosure when (almost) everyone shares the modal value, or a lone holder.

ACRO runs only the zero check on modes (no threshold); tre applies the threshold too, and this
rule flags (review by default) non-empty cells whose modal value is held by at least
`mode.max_share` of the records, or by fewer than `mode.min_holders` records (then the "mode"
is one record's value).
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Statistic, Status
from tre.disclosure.rules.base import Context, Rule


def flag(ctx: Context) -> np.ndarray:
    """Non-empty cells whose mode reveals a class or a single record's value."""
    rule = ctx.policy.mode
    assert rule is not None
    n = np.asarray(ctx.stats.n)
    _, freq = ctx.stats.modes()
    share = np.zeros(len(n))
    share[n > 0] = freq[n > 0] / n[n > 0]
    return (n > 0) & ((share >= rule.max_share) | (freq < rule.min_holders))


RULE = Rule(
    id="mode",
    statistics=frozenset({Statistic.MODE}),
    enabled=lambda p: p.mode is not None,
    status=lambda p: Status(p.mode.status if p.mode else "review"),
    parameters=lambda p: (
        {
            "mode.status": p.mode.status,
            "mode.max_share": p.mode.max_share,
            "mode.min_holders": p.mode.min_holders,
        }
        if p.mode
        else {}
    ),
    flag=flag,
)
