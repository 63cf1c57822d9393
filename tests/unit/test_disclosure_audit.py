"""The LP audit and the certificate check catch recoverable patterns; the suppression falls
back to widening (and at worst to publishing nothing) when no rectangle protects enough."""

from __future__ import annotations

import numpy as np

from tre.disclosure import TOTAL, Cell, load_preset, lp_intervals, recoverable, suppress_table
from tre.disclosure.policy import SuppressionRule
from tre.disclosure.secondary import Pattern, verify_certificates
from tre.disclosure.suppression import _lp_weak, settle

NAN = np.nan


def test_a_single_suppression_in_a_row_is_recoverable() -> None:
    # cells 5, ?, 7 with row total 15: the hidden cell is exactly 3.
    published = np.array([[5, NAN, 7, 15], [1, 2, 3, 6], [6, NAN, 10, 21]], dtype=float)
    lo, hi = lp_intervals(published)
    assert lo[0, 1] == hi[0, 1] == 3
    assert recoverable(published)[0, 1]


def test_non_negativity_alone_can_pin_a_cell() -> None:
    # Row: a + b = 4 and column: a + c = 0 → c = 0, a = 0 (≥ 0), b = 4: all recovered.
    published = np.array([[NAN, NAN, 4], [NAN, 9, 9], [0, 13, 13]], dtype=float)
    assert recoverable(published)[0, 0]


def test_certificates_must_exist_and_be_strong_enough() -> None:
    grid = np.array([[3, 10, 13], [10, 10, 20], [13, 20, 33]], dtype=float)
    suppressed = np.zeros(grid.shape, dtype=bool)
    suppressed[:2, :2] = True
    primary = np.zeros(grid.shape, dtype=bool)
    primary[0, 0] = True
    good = Pattern(
        suppressed,
        primary,
        {(0, 0): (0, 0, 1, 1), (0, 1): (0, 1, 1, 0), (1, 0): (1, 0, 0, 1), (1, 1): (1, 1, 0, 0)},
    )
    assert not verify_certificates(grid, good, level=0.1, step=1, lower=0).any()
    missing = Pattern(suppressed, primary, {(0, 0): (0, 0, 1, 1)})
    assert verify_certificates(grid, missing, level=0.1, step=1, lower=0)[0, 1]
    # Protection 5 × 3 = 15 up is more than the corners (10) allow.
    assert verify_certificates(grid, good, level=5, step=1, lower=0)[0, 0]
    assert _lp_weak(grid, good, level=5, step=1, lower=0)[0, 0]


def test_protection_level_is_met_even_when_it_takes_the_margins() -> None:
    # (0,0) = 3 needs ±30 (level 10): no interior rectangle can move it up 30, so the heuristic
    # hides the row total, the column total and the grand total with it; the LP agrees.
    policy = load_preset("acro").model_copy(
        update={"suppression": SuppressionRule(protection_level=10)}
    )
    counts = [[3, 12, 11], [12, 10, 13], [11, 14, 12]]
    cells = [Cell(i, j, [1.0] * counts[i][j]) for i in range(3) for j in range(3)]
    table = suppress_table(cells, statistic="frequency", policy=policy)
    assert table.cells[0].suppressed == "primary"
    assert sum(m.suppressed is not None for m in table.margins) >= 3
    grid = np.full((4, 4), NAN)
    for c in (*table.cells, *table.margins):
        i = 3 if c.row_key is TOTAL else c.row_key
        j = 3 if c.col_key is TOTAL else c.col_key
        grid[i, j] = NAN if c.value is None else c.value
    lo, hi = lp_intervals(grid)
    assert lo[0, 0] == 0 and hi[0, 0] >= 33


def test_settle_widens_a_weak_pattern_until_the_lp_agrees() -> None:
    grid = np.array([[3, 40, 50, 93], [45, 60, 30, 135], [48, 100, 80, 228]], dtype=float)
    suppressed = np.zeros(grid.shape, dtype=bool)
    suppressed[0, 0] = suppressed[0, 1] = True  # row-only partner: column 0 gives (0,0) away
    primary = np.zeros(grid.shape, dtype=bool)
    primary[0, 0] = True
    weak = Pattern(suppressed, primary, {})
    assert recoverable(np.where(suppressed, NAN, grid))[0, 0]
    settled = settle(grid, weak, level=0.1, step=1, lower=0)
    assert settled.suppressed.sum() > 2
    assert not _lp_weak(grid, settled, level=0.1, step=1, lower=0).any()
