"""Chapter 9 — negative values: dominance is not defined for a cell with a negative
contribution, so it gets rule `negative` (review).

ACRO marks the cells containing negatives for review and evaluates no other cell of the table;
tre still checks dominance on every other cell (fix), so a dominated cell next to a negative
one fails.
"""

from __future__ import annotations

from tre.disclosure import Status, check_table, load_preset

from ._tables import contributions, expected, verdicts

ACRO = load_preset("acro")


def test_negative_cells_need_review_and_other_cells_are_still_checked() -> None:
    table = contributions(
        """
             has_negative    dominated       fine
        x    -5,10*11        1000,1*11       10*12
        """
    )
    report = check_table(table, statistic="sum", policy=ACRO)
    assert verdicts(report) == expected(
        """
             has_negative   dominated      fine
        x    negative       nk+p_percent   ok
        """
    )
    assert report.status is Status.FAIL


def test_only_negatives_give_review() -> None:
    report = check_table(contributions("  a\nx -5,10*11"), statistic="mean", policy=ACRO)
    assert report.status is Status.REVIEW
