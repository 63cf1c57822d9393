"""Degrees of freedom for a standard deviation: each cell needs n − 1 ≥ dof.

ACRO `MinimumDoFCheck` on std tables (n − 1 per cell, an empty cell −1), so with dof 10 a cell
needs 11 values. ACRO reports the dof table itself as the cell mask (every cell with dof ≠ 0
marked); tre flags exactly the cells below the limit (docs/disclosure.md, quirk "std mask").
Residual degrees of freedom of models are checked by `check_regression`.
"""

from __future__ import annotations

import numpy as np

from tre.disclosure.model import Statistic
from tre.disclosure.rules.base import Context, Rule, fail


def flag(ctx: Context) -> np.ndarray:
    """Cells whose n − 1 is below the dof limit."""
    assert ctx.policy.dof is not None
    return (np.asarray(ctx.stats.n) - 1) < ctx.policy.dof


RULE = Rule(
    id="dof",
    statistics=frozenset({Statistic.STD}),
    enabled=lambda p: p.dof is not None,
    status=fail,
    parameters=lambda p: {"dof": p.dof},
    flag=flag,
)
