"""Chapter 7 — min and max: a published extreme is one record's value unless at least
`min_max.min_holders` records (default: the threshold) share it.

ACRO passes min/max tables with n ≥ 10; tre flags them for review (fix), OpenSAFELY fails them.
"""

from __future__ import annotations

from tre.disclosure import Status, check_table, load_preset
from tre.disclosure.policy import MinMaxRule

from ._tables import contributions, expected, verdicts

ACRO = load_preset("acro")
TABLE = """
     unique_max        shared_max       small
x    1*11,99           1*2,99*10        99*3
"""


def test_quirk_max_of_a_single_record_needs_review() -> None:
    report = check_table(contributions(TABLE), statistic="max", policy=ACRO)
    assert verdicts(report) == expected(
        """
             unique_max   shared_max   small
        x    min_max      ok           threshold+min_max
        """
    )
    assert report.status is Status.FAIL


def test_min_looks_at_the_smallest_value() -> None:
    report = check_table(contributions(TABLE), statistic="min", policy=ACRO)
    assert verdicts(report) == expected(
        """
             unique_max   shared_max   small
        x    ok           min_max      threshold+min_max
        """
    )


def test_opensafely_fails_min_max_and_holders_are_a_parameter() -> None:
    report = check_table(
        contributions("  a\nx 1*11,99"), statistic="max", policy=load_preset("opensafely")
    )
    assert report.status is Status.FAIL
    lenient = ACRO.model_copy(update={"min_max": MinMaxRule(status="review", min_holders=1)})
    assert check_table(contributions("  a\nx 1*11,99"), statistic="max", policy=lenient).status is (
        Status.PASS
    )


def test_min_max_rule_can_be_switched_off_to_match_acro() -> None:
    acro_like = ACRO.model_copy(update={"min_max": None})
    report = check_table(contributions("  a\nx 1*11,99"), statistic="max", policy=acro_like)
    assert report.status is Status.PASS
