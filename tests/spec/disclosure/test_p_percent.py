"""Chapter 4 — p% rule: fail when (total − x1 − x2) / x1 < p.

ACRO PPercentCheck, p = 0.10; equality passes; 1–2 contributors fail (ratio 0); an empty cell
passes. With ACRO's defaults a p% failure implies an (n,k) failure, so these tables raise k to
0.99 to see p% on its own.
"""

from __future__ import annotations

from tre.disclosure import check_table, load_preset
from tre.disclosure.policy import NKRule

from ._tables import contributions, expected, verdicts

P_ONLY = load_preset("acro").model_copy(update={"nk": NKRule(n=2, k=0.99)})


def test_p_percent_boundary_at_exactly_p_passes() -> None:
    table = contributions(
        """
             exactly_p          below_p           above_p
        x    100,50,1*10        100,50,0.9*10     100,50,1.1*10
        """
    )
    report = check_table(table, statistic="sum", policy=P_ONLY)
    assert verdicts(report) == expected(
        """
             exactly_p   below_p     above_p
        x    ok          p_percent   ok
        """
    )


def test_one_or_two_contributors_fail_and_empty_passes() -> None:
    table = contributions("  one   two    empty\nx 5*1  9,1    -")
    report = check_table(table, statistic="sum", policy=P_ONLY)
    assert verdicts(report) == expected(
        "  one                      two                      empty\n"
        "x threshold+nk+p_percent   threshold+nk+p_percent   threshold"
    )


def test_quirk_all_zero_cell_passes_p_percent() -> None:
    # ACRO takes ratio = total − top2 = 0 < 0.1 when the largest value is 0, and fails the
    # cell although its comment says "treat as non-disclosive"; tre passes it (fix).
    report = check_table(contributions("  a\nx 0*12"), statistic="sum", policy=P_ONLY)
    assert verdicts(report) == {("x", "a"): "ok"}
