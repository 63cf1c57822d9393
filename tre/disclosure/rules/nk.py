"""Dominance (n,k): the n largest contributions must make up less than k of the cell total.

ACRO `NKCheck` (n=2, k=0.90): fail iff top_n_sum / total ≥ k — the `≥` is matched; fewer than
n contributors give ratio 1 (fail); an all-zero or empty cell (0/0) is not flagged. Cells that
contain a negative value are left to the `negative` rule (dominance is not defined there).
Applies to sum and mean.
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Statistic
from tre.disclosure.rules.base import Context, Rule, fail

STATISTICS = frozenset({Statistic.SUM, Statistic.MEAN})


def flag(ctx: Context) -> np.ndarray:
    """Cells dominated by their n largest contributors."""
    rule = ctx.policy.nk
    assert rule is not None
    total = np.asarray(ctx.stats.total)
    top_n = ctx.stats.top(rule.n).sum(axis=1)
    positive = total > 0
    ratio = np.zeros(len(total))
    ratio[positive] = top_n[positive] / total[positive]
    return positive & (ratio >= rule.k) & (np.asarray(ctx.stats.negatives) == 0)


RULE = Rule(
    id="nk",
    statistics=STATISTICS,
    enabled=lambda p: p.nk is not None,
    status=fail,
    parameters=lambda p: {"nk.n": p.nk.n, "nk.k": p.nk.k} if p.nk else {},
    flag=flag,
    on_margins=True,
)
