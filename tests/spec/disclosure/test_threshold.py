"""Chapter 1 — threshold: every cell needs at least `threshold` contributors (n < t fails).

ACRO: fail iff n < safe_threshold (10), so exactly 10 passes. OpenSAFELY's "≤ 7 redacted" is
threshold 8. DataSHIELD refuses the whole table when a cell has 0 < n < 3.
"""

from __future__ import annotations

import pytest

from tre.disclosure import Status, check_table, load_preset

from ._tables import contributions, counts, expected, verdicts

ACRO = load_preset("acro")


def test_frequency_table_boundaries_at_the_threshold() -> None:
    table = counts(
        """
            a    b    c    d
        x  10    9   11    1
        """
    )
    report = check_table(table, statistic="frequency", policy=ACRO)
    assert verdicts(report) == expected(
        """
            a    b          c    d
        x   ok   threshold  ok   threshold
        """
    )
    assert report.status is Status.FAIL
    assert report.summary == {"threshold": 2, "zero": 0}


def test_empty_cell_fails_threshold_and_zero_when_zeros_are_disclosive() -> None:
    report = check_table(counts("  a  b\nx 0 10"), statistic="frequency", policy=ACRO)
    assert verdicts(report) == expected("  a  b\nx threshold+zero ok")


def test_empty_cell_passes_when_zeros_are_not_disclosive() -> None:
    policy = ACRO.model_copy(update={"zeros_are_disclosive": False})
    report = check_table(counts("  a  b  c\nx 0 10 9"), statistic="frequency", policy=policy)
    assert verdicts(report) == expected("  a  b  c\nx ok ok threshold")


@pytest.mark.parametrize(
    ("n", "verdict"), [(7, "threshold"), (8, "ok"), (1, "threshold"), (0, "ok")]
)
def test_opensafely_redacts_seven_or_fewer(n: int, verdict: str) -> None:
    report = check_table(
        counts(f"  a\nx {n}"), statistic="frequency", policy=load_preset("opensafely")
    )
    assert verdicts(report) == {("x", "a"): verdict}


def test_datashield_refuses_the_table_for_one_small_nonzero_cell() -> None:
    policy = load_preset("datashield")
    ok = check_table(counts("  a b\nx 3 0"), statistic="frequency", policy=policy)
    assert ok.status is Status.PASS  # zeros allowed, 3 = nfilter.tab passes
    bad = check_table(counts("  a b\nx 2 50"), statistic="frequency", policy=policy)
    assert verdicts(bad) == expected("  a b\nx threshold ok")
    assert bad.status is Status.FAIL
    assert any("whole table" in note for note in bad.notes)


def test_quirk_missing_values_do_not_count_towards_n_for_magnitude_statistics() -> None:
    # ACRO counts records, so 5 values + 5 missing pass its threshold; tre counts the 5 values
    # the mean is computed from (fix). A frequency still counts every record.
    table = contributions(
        """
             a
        x    3*5,None*5
        """
    )
    assert verdicts(check_table(table, statistic="mean", policy=ACRO)) == {("x", "a"): "threshold"}
    assert verdicts(check_table(table, statistic="frequency", policy=ACRO)) == {("x", "a"): "ok"}


def test_count_statistic_counts_non_missing_values() -> None:
    table = contributions("  a\nx 1*10,None")
    assert verdicts(check_table(table, statistic="count", policy=ACRO)) == {("x", "a"): "ok"}
    table = contributions("  a\nx 1*9,None")
    assert verdicts(check_table(table, statistic="count", policy=ACRO)) == {("x", "a"): "threshold"}


def test_quirk_proportions_are_thresholded_on_their_counts() -> None:
    # ACRO with normalize=True thresholds the proportions (all < 10, so every cell fails).
    # tre has no proportion statistic: a table of shares is checked as the frequency table of
    # its numerators (and the margins are its denominators), so 12 of 30 passes (fix).
    report = check_table(counts("  a b\nx 12 18"), statistic="frequency", policy=ACRO)
    assert report.status is Status.PASS


def test_report_records_the_parameters_used() -> None:
    report = check_table(counts("  a\nx 12"), statistic="frequency", policy=ACRO)
    assert report.parameters == {
        "policy": "acro",
        "refuse_table": False,
        "threshold": 10,
        "zeros_are_disclosive": True,
    }
    assert report.rules_applied == ("threshold", "zero")


def test_quirk_survival_steps_are_checked_as_a_frequency_table() -> None:
    # ACRO's surv_func always fails (its dof check counts repeated "num at risk" values).
    # tre has no survival artefact: each step of a Kaplan–Meier / life table is a frequency
    # cell (events, censored, at risk), so a table of large steps passes and a step with
    # 3 events fails the threshold (fix).
    table = counts(
        """
                  events   censored   at_risk
        month1    12       10         200
        month2    3        11         178
        """
    )
    report = check_table(table, statistic="frequency", policy=ACRO)
    assert verdicts(report) == expected(
        """
                  events      censored   at_risk
        month1    ok          ok         ok
        month2    threshold   ok         ok
        """
    )
