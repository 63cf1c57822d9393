"""Invariant: after suppress_table, no suppressed cell or margin can be recovered from what is
published — the attacker's LP interval for each is wider than a point, and for each primary
cell it spans the required protection — and everything published is the true value."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tre.disclosure import TOTAL, Cell, load_preset, lp_intervals, suppress_table
from tre.disclosure.secondary import required

ACRO = load_preset("acro")


def published_grid(table, rows: int, cols: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.full((rows + 1, cols + 1), np.nan)
    for c in (*table.cells, *table.margins):
        i = rows if c.row_key is TOTAL else c.row_key
        j = cols if c.col_key is TOTAL else c.col_key
        out[i, j] = np.nan if c.value is None else c.value
    return out


grids = st.integers(1, 5).flatmap(
    lambda r: st.integers(1, 5).flatmap(
        lambda c: st.lists(
            st.lists(st.integers(0, 40), min_size=c, max_size=c), min_size=r, max_size=r
        )
    )
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids)
def test_no_suppressed_count_is_recoverable(counts: list[list[int]]) -> None:
    rows, cols = len(counts), len(counts[0])
    cells = [Cell(i, j, [1.0] * counts[i][j]) for i in range(rows) for j in range(cols)]
    table = suppress_table(cells, statistic="frequency", policy=ACRO)
    truth = np.zeros((rows + 1, cols + 1))
    truth[:rows, :cols] = counts
    truth[:rows, cols] = truth[:rows, :cols].sum(1)
    truth[rows, :] = truth[:rows, :].sum(0)
    grid = published_grid(table, rows, cols)
    hidden = np.isnan(grid)
    assert np.array_equal(grid[~hidden], truth[~hidden])  # published numbers are true
    failing = table.report.failing()
    for k, cell in enumerate(table.cells):
        assert (cell.suppressed is not None) >= bool(failing[k])  # every failing cell hidden
    if not hidden.any():
        return
    lo, hi = lp_intervals(grid)
    assert ((hi - lo)[hidden] >= 1 - 1e-7).all()
    primary = np.zeros_like(hidden)
    for cell in table.cells:
        primary[cell.row_key, cell.col_key] = cell.suppressed == "primary"
    need_up, need_down = required(truth, 0.1, 1.0, 0.0)
    assert (hi[primary] >= truth[primary] + need_up[primary] - 1e-7).all()
    assert (lo[primary] <= truth[primary] - need_down[primary] + 1e-7).all()


sums = st.integers(2, 4).flatmap(
    lambda r: st.integers(2, 4).flatmap(
        lambda c: st.lists(
            st.lists(
                st.lists(st.integers(0, 500), min_size=0, max_size=14), min_size=c, max_size=c
            ),
            min_size=r,
            max_size=r,
        )
    )
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sums)
def test_no_suppressed_sum_is_recoverable(values: list[list[list[int]]]) -> None:
    rows, cols = len(values), len(values[0])
    cells = [Cell(i, j, [float(v) for v in values[i][j]]) for i in range(rows) for j in range(cols)]
    table = suppress_table(cells, statistic="sum", policy=ACRO)
    grid = published_grid(table, rows, cols)
    hidden = np.isnan(grid)
    if hidden.any():
        lo, hi = lp_intervals(grid)
        width = (hi - lo)[hidden]
        assert (width > 1e-6).all()
