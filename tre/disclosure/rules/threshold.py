"""Threshold (minimum frequency): a cell needs at least `threshold` contributors.

Sources: SDAP handbook / SACRO rule of thumb 10; ACRO `MinimumThresholdCheck` (fail iff
n < safe_threshold, so n = threshold passes); OpenSAFELY "redact ≤ 7" is threshold 8;
DataSHIELD nfilter.tab 3 with zeros allowed. An empty cell is flagged only when zeros are
disclosive (ACRO flags it always; see docs/disclosure.md, quirk "empty bins").
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Statistic
from tre.disclosure.rules.base import ALL, Context, Rule, always, fail


def flag(ctx: Context) -> np.ndarray:
    """Cells with fewer contributors than the threshold (empty cells only if zeros disclose)."""
    n = ctx.contributors
    low = n < ctx.policy.threshold
    if not ctx.policy.zeros_are_disclosive:
        low &= n > 0
    return low


RULE = Rule(
    id="threshold",
    # std is covered by the dof rule (n − 1 ≥ dof), as in ACRO.
    statistics=ALL - {Statistic.STD},
    enabled=always,
    status=fail,
    parameters=lambda p: {
        "threshold": p.threshold,
        "zeros_are_disclosive": p.zeros_are_disclosive,
    },
    flag=flag,
    on_margins=True,
)
