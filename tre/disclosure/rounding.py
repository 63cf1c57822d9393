"""Rounding schemes: base-N, ONS 10-5, OpenSAFELY redact-≤7-then-round-to-5, midpoint 6.

Totals are always the sum of the published (rounded, unredacted) cells — OpenSAFELY's rule —
so a redacted cell can never be recovered by subtracting rounded cells from a true total.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tre.disclosure.check import evaluate, require_policy
from tre.disclosure.model import (
    TOTAL,
    Cell,
    DisclosureReport,
    ProtectedTable,
    PublishedCell,
    Statistic,
    Status,
)
from tre.disclosure.policy import DisclosurePolicy, RoundingRule
from tre.disclosure.table import Table, build_table, parse_statistic
from tre.errors import InvalidInput

_COUNTS = (Statistic.FREQUENCY, Statistic.COUNT)


def round_to_base(values: np.ndarray, base: int, half: str = "up") -> np.ndarray:
    """Round to the nearest multiple of base; halves go up (away from zero) or to even."""
    scaled = np.asarray(values, dtype=np.float64) / base
    if half == "even":
        return np.round(scaled) * base  # numpy rounds halves to even, like ACRO's pandas
    return np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) * base


def midpoint6(counts: np.ndarray) -> np.ndarray:
    """OpenSAFELY midpoint 6: ceil(x/6)·6 − 3 for x > 0, and 0 stays 0 (1–6→3, 7–12→9)."""
    x = np.asarray(counts, dtype=np.float64)
    return np.ceil(x / 6) * 6 - 3 * (x != 0)


def round_table(
    cells: Sequence[Cell],
    *,
    statistic: str | Statistic,
    policy: DisclosurePolicy,
    scheme: RoundingRule | None = None,
) -> ProtectedTable:
    """Apply the policy's (or the given) rounding scheme to a table; totals sum the cells."""
    stat = parse_statistic(statistic)
    require_policy(policy)
    rule = scheme or policy.rounding
    if rule is None:
        raise InvalidInput(
            f"policy {policy.name!r} has no rounding scheme",
            hint="set `rounding:` in the policy or pass scheme=RoundingRule(scheme='base')",
        )
    table = build_table(cells)
    report = evaluate(table, stat, policy)
    return round_evaluated(table, report, stat, policy, rule)


def round_evaluated(
    table: Table,
    report: DisclosureReport,
    statistic: Statistic,
    policy: DisclosurePolicy,
    rule: RoundingRule,
) -> ProtectedTable:
    """Rounding for a table already checked."""
    if rule.scheme != "base" and statistic not in _COUNTS:
        raise InvalidInput(
            f"rounding scheme {rule.scheme!r} applies to counts, not to a {statistic.value} table",
            hint="use statistic 'frequency' or 'count', or scheme 'base'",
        )
    values = table.statistic_values(statistic)
    if statistic in _COUNTS and (values < 0).any():
        raise InvalidInput("a count is negative", hint="counts must be ≥ 0")
    failing = report.failing()
    if policy.refuse_table and failing.any():
        from tre.disclosure.suppression import _refused

        return _refused(table, report, statistic, policy)
    if rule.scheme == "midpoint6":
        rounded = midpoint6(values)
        redact = np.zeros(len(values), dtype=bool)
    else:
        rounded = round_to_base(values, rule.base, rule.half)
        # ONS 10-5 and OpenSAFELY first redact the cells that fail the primary rules
        # (threshold 10, resp. ≤ 7 = threshold 8); base rounding (ACRO) redacts nothing.
        redact = failing if rule.scheme in ("ons_10_5", "opensafely") else np.zeros_like(failing)
    finite = np.isfinite(rounded)
    published = tuple(
        PublishedCell(r, c, None, "redacted")
        if redact[k]
        else PublishedCell(r, c, float(rounded[k]) if finite[k] else None, None)
        for k, (r, c) in enumerate(table.cell_keys)
    )
    margins: tuple[PublishedCell, ...] = ()
    if statistic in (*_COUNTS, Statistic.SUM):
        shown = np.where(redact | ~finite, 0.0, rounded)
        rows, cols = table.shape
        grid = np.zeros((rows, cols))
        grid[table.row_of, table.col_of] = shown
        margins = (
            *(
                PublishedCell(k, TOTAL, float(v))
                for k, v in zip(table.row_keys, grid.sum(1), strict=True)
            ),
            *(
                PublishedCell(TOTAL, k, float(v))
                for k, v in zip(table.col_keys, grid.sum(0), strict=True)
            ),
            PublishedCell(TOTAL, TOTAL, float(grid.sum())),
        )
    changed = bool(redact.any()) or not np.array_equal(rounded[finite], values[finite])
    return ProtectedTable(
        statistic=statistic,
        method="rounding",
        # Like ACRO, a mitigated output goes to review; unlike ACRO, an unchanged one passes.
        status=Status.REVIEW if changed or report.status is not Status.PASS else Status.PASS,
        cells=published,
        margins=margins,
        report=report,
        parameters={
            **report.parameters,
            "rounding.scheme": rule.scheme,
            "rounding.base": rule.base,
            "rounding.half": rule.half,
        },
        notes=(f"rounding {rule.scheme} applied; totals are sums of the published cells",),
    )
