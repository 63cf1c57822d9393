"""Negative values: dominance is not defined, so a cell with a negative contribution needs review.

ACRO returns review for NK and P% when any record of the table is negative, flags only the
cells containing negatives and evaluates no other cell. tre flags the same cells (rule
`negative`, status review by default) but still checks dominance on every other cell.
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Status
from tre.disclosure.rules.base import Context, Rule, always
from tre.disclosure.rules.nk import STATISTICS


def flag(ctx: Context) -> np.ndarray:
    """Cells containing at least one negative value."""
    return np.asarray(ctx.stats.negatives) > 0


RULE = Rule(
    id="negative",
    statistics=STATISTICS,
    enabled=always,
    status=lambda p: Status(p.negative),
    parameters=lambda p: {"negative": p.negative},
    flag=flag,
    on_margins=True,
)
