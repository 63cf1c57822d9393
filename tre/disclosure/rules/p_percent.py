"""p% rule: the rest of the cell, (total − x1 − x2), must be at least p × x1.

Otherwise the second-largest contributor could estimate the largest to within p%. ACRO
`PPercentCheck` (p=0.10): fail iff ratio < p, so equality passes; 1–2 contributors give ratio 0
(fail); an empty cell is not flagged. ACRO fails an all-zero cell (x1 = 0); tre does not:
nobody's value can be estimated from a total of zeros (docs/disclosure.md, quirk "all-zero").
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Statistic
from tre.disclosure.rules.base import Context, Rule, fail

STATISTICS = frozenset({Statistic.SUM, Statistic.MEAN})


def flag(ctx: Context) -> np.ndarray:
    """Cells whose largest contribution the runner-up could estimate within p%."""
    rule = ctx.policy.p_percent
    assert rule is not None
    top = ctx.stats.top(2)
    total = np.asarray(ctx.stats.total)
    x1 = top[:, 0]
    rest = total - x1 - top[:, 1]
    positive = x1 > 0
    ratio = np.full(len(total), np.inf)
    ratio[positive] = rest[positive] / x1[positive]
    return positive & (ratio < rule.p) & (np.asarray(ctx.stats.negatives) == 0)


RULE = Rule(
    id="p_percent",
    statistics=STATISTICS,
    enabled=lambda p: p.p_percent is not None,
    status=fail,
    parameters=lambda p: {"p_percent.p": p.p_percent.p} if p.p_percent else {},
    flag=flag,
    on_margins=True,
)
