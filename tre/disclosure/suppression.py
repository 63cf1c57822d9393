"""suppress_table: primary suppression of failing cells, then secondary suppression so that no
suppressed cell can be recovered from the published cells and margins."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from tre.disclosure.audit import lp_intervals
from tre.disclosure.check import evaluate, require_policy, require_releases, rules_for
from tre.disclosure.grid import (
    ADDITIVE,
    additive_values,
    extended_grid,
    margin_stats,
)
from tre.disclosure.model import (
    TOTAL,
    Cell,
    DisclosureReport,
    ProtectedTable,
    PublishedCell,
    Release,
    Statistic,
    Status,
    Suppression,
)
from tre.disclosure.policy import DisclosurePolicy
from tre.disclosure.rules import Context
from tre.disclosure.secondary import Pattern, choose_complements, required, verify_certificates
from tre.disclosure.table import Table, build_table, parse_statistic

# Integer-valued statistics need an attacker interval at least one unit wide.
_COUNT_STEP = 1.0


def suppress_table(
    cells: Sequence[Cell],
    *,
    statistic: str | Statistic,
    policy: DisclosurePolicy,
    releases: Sequence[Release] = (),
    margins: bool = True,
) -> ProtectedTable:
    """Suppress failing cells (and margins) and enough complements that none can be recovered."""
    stat = parse_statistic(statistic)
    require_policy(policy)
    require_releases(releases)
    table = build_table(cells, need_ids=bool(releases))
    report = evaluate(table, stat, policy, releases=releases, margins=margins)
    return suppress_evaluated(table, report, stat, policy, margins=margins)


def suppress_evaluated(
    table: Table,
    report: DisclosureReport,
    statistic: Statistic,
    policy: DisclosurePolicy,
    *,
    margins: bool,
) -> ProtectedTable:
    """Suppression for a table already checked."""
    values = table.statistic_values(statistic)
    failing = report.failing()
    if policy.refuse_table and failing.any():
        return _refused(table, report, statistic, policy)
    rows, cols = table.shape
    cell_reason: list[Suppression | None] = ["primary" if f else None for f in failing.tolist()]
    margin_cells: tuple[PublishedCell, ...] = ()
    notes: list[str] = []
    params = {
        **report.parameters,
        "suppression.protection_level": policy.suppression.protection_level,
    }
    if statistic in ADDITIVE and margins:
        add = additive_values(table, statistic)
        grid = extended_grid(table, add)
        lower = 0.0 if not (table.negatives > 0).any() else -np.inf
        step = _COUNT_STEP if statistic in (Statistic.FREQUENCY, Statistic.COUNT) else 0.0
        if step == 0.0:
            positive = np.abs(add[add != 0])
            step = 1e-9 * float(positive.max()) if len(positive) else 1e-9
        primary = np.zeros(grid.shape, dtype=bool)
        primary[table.row_of, table.col_of] = failing
        primary[:rows, cols], primary[rows, :cols], primary[rows, cols] = _margin_failures(
            table, statistic, policy
        )
        if primary[:rows, cols].any() or primary[rows, :].any():
            notes.append(
                f"{int(primary[:rows, cols].sum() + primary[rows, :].sum())} margin(s) fail "
                "the rules themselves and are suppressed"
            )
        level = policy.suppression.protection_level
        pattern = _protect(grid, primary, level=level, step=step, lower=lower, add=add)
        suppressed = pattern.suppressed
        for k in np.flatnonzero(suppressed[table.row_of, table.col_of] & ~failing).tolist():
            cell_reason[k] = "secondary"
        margin_values = _margin_values(table, statistic, grid)
        margin_cells = _margin_cells(table, margin_values, pattern)
        n_secondary = int((pattern.suppressed & ~pattern.primary).sum())
        notes.append(
            f"{int(pattern.primary.sum())} primary and {n_secondary} secondary suppression(s); "
            "every suppressed entry has a verified protection interval"
        )
    shown = np.where(np.isfinite(values), values, np.nan).tolist()
    published = tuple(
        PublishedCell(key[0], key[1], None if reason or v != v else v, reason)
        for key, reason, v in zip(table.cell_keys, cell_reason, shown, strict=True)
    )
    changed = any(c.suppressed for c in published) or any(m.suppressed for m in margin_cells)
    status = Status.REVIEW if changed or report.status is not Status.PASS else Status.PASS
    return ProtectedTable(
        statistic=statistic,
        method="suppression" if changed else "none",
        status=status,
        cells=published,
        margins=margin_cells,
        report=report,
        parameters=params,
        notes=tuple(notes),
    )


def _plain(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _margin_failures(
    table: Table, statistic: Statistic, policy: DisclosurePolicy
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Which row totals, column totals and grand total fail the primary rules themselves."""
    rows, cols = table.shape
    rules = [r for r in rules_for(statistic, policy) if r.on_margins]
    k = max(2, policy.nk.n if policy.nk else 2)
    stats = margin_stats(table, k)
    ctx = Context(stats, statistic, policy)
    fails = np.zeros(stats.n_cells, dtype=bool)
    for rule in rules:
        if rule.status(policy) is Status.FAIL:
            fails |= rule.flag(ctx)
    return fails[:rows], fails[rows : rows + cols], bool(fails[rows + cols])


def _protect(
    grid: np.ndarray,
    primary: np.ndarray,
    *,
    level: float,
    step: float,
    lower: float,
    add: np.ndarray,
) -> Pattern:
    """Choose complements, verify every entry, widen the pattern where verification fails."""
    bonus = step if step >= 1 else 0.01 * float(np.median(np.abs(add))) + step
    cost = np.abs(grid) + bonus
    pattern = choose_complements(grid, primary, level=level, step=step, lower=lower, cost=cost)
    return settle(grid, pattern, level=level, step=step, lower=lower)


def settle(
    grid: np.ndarray, pattern: Pattern, *, level: float, step: float, lower: float
) -> Pattern:
    """Verify every suppressed entry (certificate, else LP); widen the pattern until it holds."""
    for _ in range(3):
        weak = verify_certificates(grid, pattern, level=level, step=step, lower=lower)
        if not weak.any():
            return pattern
        weak &= _lp_weak(grid, pattern, level=level, step=step, lower=lower, only=weak)
        if not weak.any():
            return pattern
        # Hide the whole row and column of every entry the LP still pins down.
        wider = pattern.suppressed.copy()
        for i, j in zip(*np.nonzero(weak), strict=True):
            wider[i, :] = True
            wider[:, j] = True
        pattern = Pattern(wider, pattern.primary, pattern.certificates)
    weak = _lp_weak(grid, pattern, level=level, step=step, lower=lower)
    if weak.any():
        # Last resort: publish nothing of this table.
        pattern = Pattern(np.ones(grid.shape, dtype=bool), pattern.primary, {})
    return pattern


def _lp_weak(
    grid: np.ndarray,
    pattern: Pattern,
    *,
    level: float,
    step: float,
    lower: float,
    only: np.ndarray | None = None,
) -> np.ndarray:
    """Suppressed entries (of `only`) whose attacker interval by LP is narrower than required."""
    published = np.where(pattern.suppressed, np.nan, grid)
    lo, hi = lp_intervals(published, lower, only=only)
    need_up, need_down = required(grid, level, step, lower)
    tol = 1e-9 * max(1.0, float(np.abs(grid).max()))
    primary_ok = (hi >= grid + need_up - tol) & (lo <= grid - need_down + tol)
    other_ok = (hi - lo) > tol
    ok = np.where(pattern.primary, primary_ok, other_ok)
    weak = pattern.suppressed & ~ok
    return weak if only is None else weak & only


def _margin_values(table: Table, statistic: Statistic, grid: np.ndarray) -> np.ndarray:
    """The published margins: totals, or for a mean table the means of the margins."""
    if statistic is not Statistic.MEAN:
        return grid
    counts = extended_grid(table, table.n.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return grid / counts


def _margin_cells(table: Table, values: np.ndarray, pattern: Pattern) -> tuple[PublishedCell, ...]:
    rows, cols = table.shape
    out = []

    def cell(row: Hashable, col: Hashable, i: int, j: int) -> PublishedCell:
        if pattern.suppressed[i, j]:
            reason: Suppression = "primary" if pattern.primary[i, j] else "secondary"
            return PublishedCell(row, col, None, reason)
        return PublishedCell(row, col, _plain(values[i, j]), None)

    for i, key in enumerate(table.row_keys):
        out.append(cell(key, TOTAL, i, cols))
    for j, key in enumerate(table.col_keys):
        out.append(cell(TOTAL, key, rows, j))
    out.append(cell(TOTAL, TOTAL, rows, cols))
    return tuple(out)


def _refused(
    table: Table, report: DisclosureReport, statistic: Statistic, policy: DisclosurePolicy
) -> ProtectedTable:
    cells = tuple(PublishedCell(r, c, None, "refused") for r, c in table.cell_keys)
    return ProtectedTable(
        statistic=statistic,
        method="refusal",
        status=Status.FAIL,
        cells=cells,
        margins=(),
        report=report,
        parameters=dict(report.parameters),
        notes=("refuse_table: a cell fails, so the whole table is withheld",),
    )
