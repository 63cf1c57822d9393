"""Chapter 3 — dominance (n,k): fail when the n largest contributions are ≥ k of the total.

ACRO NKCheck, n=2, k=0.90, `≥` (matched: exactly 90 % fails). Fewer than n contributors give
ratio 1 (fail); an empty or all-zero cell (0/0) is not flagged. Applies to sum and mean only.
"""

from __future__ import annotations

import pytest

from tre.disclosure import check_table, load_preset
from tre.disclosure.policy import NKRule

from ._tables import contributions, expected, verdicts

# p% is switched off to look at (n,k) alone (with ACRO's defaults p% ⇒ nk anyway).
NK_ONLY = load_preset("acro").model_copy(update={"p_percent": None})


def test_quirk_nk_boundary_at_exactly_k_fails() -> None:
    table = contributions(
        """
             exactly_k          below_k            above_k
        x    45,45,1*10         44,45,1*11         46,45,1*9
        """
    )
    report = check_table(table, statistic="sum", policy=NK_ONLY)
    assert verdicts(report) == expected(
        """
             exactly_k   below_k   above_k
        x    nk          ok        nk
        """
    )


def test_few_contributors_dominate_and_empty_or_zero_cells_do_not() -> None:
    table = contributions(
        """
             one      two        empty   zeros    spread
        x    50       30,20      -       0*12     10*12
        """
    )
    report = check_table(table, statistic="sum", policy=NK_ONLY)
    assert verdicts(report) == expected(
        """
             one            two            empty        zeros   spread
        x    threshold+nk   threshold+nk   threshold    ok      ok
        """
    )


def test_nk_applies_to_means_too() -> None:
    table = contributions("  a\nx 1000,1*11")
    assert verdicts(check_table(table, statistic="mean", policy=NK_ONLY)) == {("x", "a"): "nk"}


@pytest.mark.parametrize(("n", "verdict"), [(1, "ok"), (2, "ok"), (3, "nk")])
def test_n_and_k_are_parameters(n: int, verdict: str) -> None:
    # top-1 = 30 %, top-2 = 55 %, top-3 = 75 % of 100.
    policy = NK_ONLY.model_copy(update={"nk": NKRule(n=n, k=0.75)})
    table = contributions("  a\nx 30,25,20,2.5*10")
    assert verdicts(check_table(table, statistic="sum", policy=policy)) == {("x", "a"): verdict}
