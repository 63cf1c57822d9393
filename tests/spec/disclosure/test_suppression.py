"""Chapter 13 — suppression: failing cells are suppressed (primary), then complementary cells
(secondary) so that no suppressed cell can be recovered from the published cells and margins.

ACRO has no secondary suppression: it deletes the failing cells' records and recomputes the
margins, so its published totals are not the true totals. tre publishes true margins and
protects the suppressed cells; every pattern here is audited by linear programming.
"""

from __future__ import annotations

import numpy as np

from tre.disclosure import TOTAL, Status, load_preset, lp_intervals, suppress_table

from ._tables import contributions, counts

ACRO = load_preset("acro")


def grid(table) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The published extended grid (cells, row totals, column totals, grand total; NaN hidden)."""
    rows = list(dict.fromkeys(c.row_key for c in table.cells))
    cols = list(dict.fromkeys(c.col_key for c in table.cells))
    out = np.full((len(rows) + 1, len(cols) + 1), np.nan)
    for c in (*table.cells, *table.margins):
        i = len(rows) if c.row_key is TOTAL else rows.index(c.row_key)
        j = len(cols) if c.col_key is TOTAL else cols.index(c.col_key)
        out[i, j] = np.nan if c.value is None else c.value
    return out


def pattern(table) -> str:  # type: ignore[no-untyped-def]
    """The cells as a text grid: value, P (primary) or S (secondary)."""
    marks = {"primary": "P", "secondary": "S"}
    return " ".join(marks[c.suppressed] if c.suppressed else str(int(c.value)) for c in table.cells)


def test_one_small_cell_gets_three_complements_forming_a_rectangle() -> None:
    table = suppress_table(
        counts(
            """
                a    b    c
            x  20    3   30
            y  15   25   12
            z  40   11   18
            """
        ),
        statistic="frequency",
        policy=ACRO,
    )
    # The cheapest rectangle through (x, b) that can move it ±1: (x,c), (z,b), (z,c).
    assert pattern(table) == "20 P S 15 25 12 40 S S"
    assert table.value("x", TOTAL) == 53  # true margins are published
    assert table.status is Status.REVIEW
    lo, hi = lp_intervals(grid(table))
    assert lo[0, 1] == 0 and hi[0, 1] == 14  # the attacker only knows 0 ≤ (x,b) ≤ 14


def test_no_suppressed_cell_is_recoverable_in_a_table_with_many_failures() -> None:
    table = suppress_table(
        counts(
            """
                a    b    c    d
            w   2   30   12   40
            x  25    0   14   22
            y  11   16    5   30
            z  50   45   60    1
            """
        ),
        statistic="frequency",
        policy=ACRO,
    )
    published = grid(table)
    lo, hi = lp_intervals(published)
    hidden = np.isnan(published)
    assert hidden.sum() >= 8
    assert ((hi - lo)[hidden] >= 1).all()


def test_a_margin_that_fails_is_suppressed_too() -> None:
    # Row x totals 7 < 10: the row total itself is primary.
    table = suppress_table(
        counts("   a  b  c\nx  3  4  0\ny 20 30 25\nz 15 12 40"), statistic="frequency", policy=ACRO
    )
    row_total = next(m for m in table.margins if m.row_key == "x")
    assert row_total.suppressed == "primary"
    published = grid(table)
    lo, hi = lp_intervals(published)
    assert ((hi - lo)[np.isnan(published)] > 0).all()


def test_dominated_sum_is_protected_by_the_protection_level() -> None:
    table = suppress_table(
        contributions(
            """
                 a             b             c
            x    900,1*11      10*12         20*12
            y    10*12         30*12         10*12
            z    20*12         10*12         40*12
            """
        ),
        statistic="sum",
        policy=ACRO,
    )
    published = grid(table)
    lo, hi = lp_intervals(published)
    true = 911.0
    # ±10 % of the dominated cell's value stays open to the attacker.
    assert lo[0, 0] <= true * 0.9 and hi[0, 0] >= true * 1.1
    assert table.cells[0].suppressed == "primary"


def test_non_additive_statistics_get_primary_suppression_only() -> None:
    table = suppress_table(
        contributions("  a        b\nx 1*5     2*12"), statistic="median", policy=ACRO
    )
    assert [c.suppressed for c in table.cells] == ["primary", None]
    assert table.margins == ()


def test_datashield_refuses_the_whole_table() -> None:
    table = suppress_table(
        counts("  a  b\nx 2 50"), statistic="frequency", policy=load_preset("datashield")
    )
    assert table.method == "refusal" and table.status is Status.FAIL
    assert all(c.value is None for c in table.cells)


def test_a_passing_table_is_published_unchanged() -> None:
    table = suppress_table(counts("  a  b\nx 12 50"), statistic="frequency", policy=ACRO)
    assert table.method == "none" and table.status is Status.PASS
    assert table.value(TOTAL, TOTAL) == 62


def test_protect_table_applies_what_the_policy_asks_for() -> None:
    from tre.disclosure import Cell, Release, protect_table

    table = counts("  a  b  c\nx 3 30 40\ny 25 35 45")
    assert protect_table(table, statistic="frequency", policy=ACRO).method == "suppression"
    assert (
        protect_table(table, statistic="frequency", policy=load_preset("opensafely")).method
        == "rounding"
    )
    assert (
        protect_table(
            counts("  a b\nx 2 30"), statistic="frequency", policy=load_preset("datashield")
        ).method
        == "refusal"
    )
    # A cell that fails only by differencing against an earlier release is suppressed too.
    ids = [f"p{i}" for i in range(40)]
    earlier = Release.from_cells("2024", [Cell("x", "a", [1.0] * 40, ids=ids)], margins=False)
    now = [
        Cell("x", "a", [1.0] * 38, ids=ids[:38]),
        Cell("x", "b", [1.0] * 30, ids=[f"q{i}" for i in range(30)]),
        Cell("y", "a", [1.0] * 25, ids=[f"r{i}" for i in range(25)]),
        Cell("y", "b", [1.0] * 35, ids=[f"s{i}" for i in range(35)]),
    ]
    protected = protect_table(now, statistic="frequency", policy=ACRO, releases=[earlier])
    assert protected.report.verdict("x", "a").rules == ("differencing",)
    assert [c.suppressed for c in protected.cells] == [
        "primary",
        "secondary",
        "secondary",
        "secondary",
    ]
