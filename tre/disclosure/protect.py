"""protect_table: apply the protection the policy asks for (refusal, rounding or suppression)."""

from __future__ import annotations

from collections.abc import Sequence

from tre.disclosure.check import evaluate, require_policy, require_releases
from tre.disclosure.model import Cell, ProtectedTable, Release, Statistic
from tre.disclosure.policy import DisclosurePolicy
from tre.disclosure.rounding import round_evaluated
from tre.disclosure.suppression import suppress_evaluated
from tre.disclosure.table import build_table, parse_statistic


def protect_table(
    cells: Sequence[Cell],
    *,
    statistic: str | Statistic,
    policy: DisclosurePolicy,
    releases: Sequence[Release] = (),
    margins: bool = True,
) -> ProtectedTable:
    """Check a table, then round it (policy has `rounding`) or suppress it (otherwise)."""
    stat = parse_statistic(statistic)
    require_policy(policy)
    require_releases(releases)
    table = build_table(cells, need_ids=bool(releases))
    report = evaluate(table, stat, policy, releases=releases, margins=margins)
    if policy.rounding is not None:
        return round_evaluated(table, report, stat, policy, policy.rounding)
    return suppress_evaluated(table, report, stat, policy, margins=margins)
