"""Missing values: a cell whose statistic silently ignored missing values needs review.

ACRO `MissingCheck` (when check_missing_values): cells containing NaN get status review.
Frequencies count records, so missing values do not apply to them.
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.rules.base import MAGNITUDE, Context, Rule, review


def flag(ctx: Context) -> np.ndarray:
    """Cells with at least one missing value."""
    return np.asarray(ctx.stats.records) > np.asarray(ctx.stats.n)


RULE = Rule(
    id="missing",
    statistics=MAGNITUDE,
    enabled=lambda p: p.check_missing_values,
    status=review,
    parameters=lambda p: {"check_missing_values": p.check_missing_values},
    flag=flag,
    on_margins=True,
)
