"""The disclosure rules, one module each, in reporting order."""

from __future__ import annotations

from tre.disclosure.rules import (
    differencing,
    dof,
    min_max,
    missing,
    mode,
    negative,
    nk,
    p_percent,
    threshold,
    zero,
)
from tre.disclosure.rules.base import Context, Rule

RULES: tuple[Rule, ...] = (
    threshold.RULE,
    zero.RULE,
    nk.RULE,
    p_percent.RULE,
    dof.RULE,
    missing.RULE,
    min_max.RULE,
    mode.RULE,
    differencing.RULE,
    negative.RULE,
)

__all__ = ["RULES", "Context", "Rule"]
