"""Chapter 2 — zeros and class disclosure: an empty cell fails when zeros are disclosive.

ACRO's PresenceOfZeroCheck runs for frequency, median, min, max and mode (statbarns with the
ClassDisclosure risk) — not for sum and mean (an empty sum still fails the threshold) nor std.
"""

from __future__ import annotations

import pytest

from tre.disclosure import check_table, load_preset

from ._tables import contributions, verdicts

ACRO = load_preset("acro")
TABLE = "  a  b\nx  -  5*12"


@pytest.mark.parametrize(
    ("statistic", "empty_cell"),
    [
        ("frequency", "threshold+zero"),
        ("count", "threshold+zero"),
        ("median", "threshold+zero"),
        ("min", "threshold+zero"),
        ("max", "threshold+zero"),
        ("mode", "threshold+zero"),
        ("sum", "threshold"),
        ("mean", "threshold"),
        ("std", "dof"),
    ],
)
def test_which_statistics_get_the_zero_rule(statistic: str, empty_cell: str) -> None:
    report = check_table(contributions(TABLE), statistic=statistic, policy=ACRO)
    assert verdicts(report)[("x", "a")] == empty_cell


def test_zero_rule_is_off_when_zeros_are_not_disclosive() -> None:
    policy = ACRO.model_copy(update={"zeros_are_disclosive": False})
    report = check_table(contributions(TABLE), statistic="frequency", policy=policy)
    assert "zero" not in report.rules_applied
    assert verdicts(report)[("x", "a")] == "ok"
