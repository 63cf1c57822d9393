"""Chapter 6 — missing values: with check_missing_values, a cell whose statistic ignored
missing values gets status review (ACRO MissingCheck). Off by default, as in ACRO's yaml."""

from __future__ import annotations

from tre.disclosure import Status, check_table, load_preset

from ._tables import contributions, expected, verdicts

ACRO = load_preset("acro")
CHECKING = ACRO.model_copy(update={"check_missing_values": True})
TABLE = "  a              b\nx 10*11,None    10*12"


def test_missing_values_need_review_when_checked() -> None:
    report = check_table(contributions(TABLE), statistic="mean", policy=CHECKING)
    assert verdicts(report) == expected("  a b\nx missing ok")
    assert report.status is Status.REVIEW


def test_missing_values_are_not_checked_by_default() -> None:
    report = check_table(contributions(TABLE), statistic="mean", policy=ACRO)
    assert "missing" not in report.rules_applied
    assert report.status is Status.PASS


def test_frequencies_count_records_so_missing_does_not_apply() -> None:
    report = check_table(contributions(TABLE), statistic="frequency", policy=CHECKING)
    assert "missing" not in report.rules_applied
