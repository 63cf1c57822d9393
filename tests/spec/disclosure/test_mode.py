"""Chapter 8 — mode: threshold and zero apply (ACRO runs only the zero check: no threshold —
tre fixes that); the `mode` rule flags (review) a cell whose modal value everyone shares
(class disclosure) or that fewer than `mode.min_holders` records hold."""

from __future__ import annotations

from tre.disclosure import check_table, load_preset

from ._tables import contributions, expected, verdicts

ACRO = load_preset("acro")


def test_quirk_mode_gets_the_threshold() -> None:
    table = contributions(
        """
             nine         ten
        x    1*5,2*4      1*6,2*4
        """
    )
    assert verdicts(check_table(table, statistic="mode", policy=ACRO)) == expected(
        """
             nine        ten
        x    threshold   ok
        """
    )


def test_mode_class_disclosure_and_lone_holders() -> None:
    table = contributions(
        """
             everyone    distinct            shared
        x    3*12        1,2,3,4,5,6,7,8,9,10,11,12   1*6,2*6
        """
    )
    assert verdicts(check_table(table, statistic="mode", policy=ACRO)) == expected(
        """
             everyone   distinct   shared
        x    mode       mode       ok
        """
    )
