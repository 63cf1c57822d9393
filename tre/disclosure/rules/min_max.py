"""Minimum and maximum: a published extreme is one record's value unless enough records share it.

SDAP handbook: min/max are unsafe unless shown non-disclosive (e.g. ≥ threshold units share the
value); OpenSAFELY redacts them. ACRO passes them with n ≥ 10; tre flags (review by default)
every non-empty cell whose extreme is held by fewer than `min_max.min_holders` records
(default: the threshold).
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Statistic, Status
from tre.disclosure.rules.base import Context, Rule


def flag(ctx: Context) -> np.ndarray:
    """Non-empty cells whose published extreme is shared by too few records."""
    table = ctx.stats
    extreme = table.minima if ctx.statistic is Statistic.MIN else table.maxima
    holders = table.holders(extreme)
    return (np.asarray(table.n) > 0) & (holders < ctx.policy.min_max_holders)


RULE = Rule(
    id="min_max",
    statistics=frozenset({Statistic.MIN, Statistic.MAX}),
    enabled=lambda p: p.min_max is not None,
    status=lambda p: Status(p.min_max.status if p.min_max else "review"),
    parameters=lambda p: (
        {"min_max.status": p.min_max.status, "min_max.min_holders": p.min_max_holders}
        if p.min_max
        else {}
    ),
    flag=flag,
)
