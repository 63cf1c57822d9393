"""Zeros and class disclosure: an empty cell says that nobody in the group has the attribute.

Sources: SDAP handbook (class disclosure), OpenSAFELY (zero/100% cells can disclose), ACRO
`PresenceOfZeroCheck` (fail iff zeros_are_disclosive and n == 0) for the statistics whose
statbarn carries ClassDisclosure: frequency/count, median, min, max, mode (not sum/mean/std).
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Statistic
from tre.disclosure.rules.base import Context, Rule, fail

STATISTICS = frozenset(
    {
        Statistic.FREQUENCY,
        Statistic.COUNT,
        Statistic.MEDIAN,
        Statistic.MIN,
        Statistic.MAX,
        Statistic.MODE,
    }
)


def flag(ctx: Context) -> np.ndarray:
    """Cells with no contributors."""
    return ctx.contributors == 0


RULE = Rule(
    id="zero",
    statistics=STATISTICS,
    enabled=lambda p: p.zeros_are_disclosive,
    status=fail,
    parameters=lambda p: {"zeros_are_disclosive": p.zeros_are_disclosive},
    flag=flag,
    on_margins=True,
)
