"""Chapter 11 — histograms: each bin is a frequency cell (threshold, zero), with counts exactly
as numpy's `histogram` computes them; edges taken from the data reveal its min and max."""

from __future__ import annotations

import numpy as np

from tre.disclosure import Status, check_histogram, load_preset

ACRO = load_preset("acro")


def test_quirk_the_maximum_is_counted_in_the_last_bin() -> None:
    # ACRO's np.digitize drops values equal to the last edge; tre counts them (numpy, fix).
    values = [0.0] * 10 + [1.0] * 10
    report = check_histogram(values, [0.0, 0.5, 1.0], policy=ACRO)
    assert report.counts == (10, 10)
    assert report.counts == tuple(np.histogram(values, [0.0, 0.5, 1.0])[0])
    assert report.status is Status.PASS
    assert report.report.notes == ("Please check extreme bin edges are not disclosive",)


def test_bins_at_and_below_the_threshold() -> None:
    values = [1.0] * 10 + [2.0] * 9 + [3.5] * 12
    report = check_histogram(values, [0, 1.5, 3, 4], policy=ACRO)
    assert [b.rules for b in report.bins] == [(), ("threshold",), ()]
    assert report.bins[1].col_key == (1.5, 3.0)


def test_quirk_empty_bins_pass_when_zeros_are_not_disclosive() -> None:
    # ACRO fails an empty bin on the threshold even with zeros_are_disclosive: False (contrary
    # to its docstring); tre follows the setting (fix).
    values = [1.0] * 10 + [3.5] * 10
    lenient = ACRO.model_copy(update={"zeros_are_disclosive": False})
    assert check_histogram(values, [0, 1.5, 3, 4], policy=lenient).status is Status.PASS
    strict = check_histogram(values, [0, 1.5, 3, 4], policy=ACRO)
    assert strict.bins[1].rules == ("threshold", "zero")


def test_edges_from_the_data_reveal_min_and_max() -> None:
    values = list(np.linspace(0, 100, 40)) + [50.0] * 20
    report = check_histogram(values, 4, policy=ACRO)
    assert report.bins[0].rules == ("min_max",)
    assert report.bins[-1].rules == ("min_max",)
    assert report.status is Status.REVIEW
    fixed = check_histogram(values, 4, range=(0, 100), policy=ACRO)
    assert fixed.status is Status.PASS


def test_missing_values_are_left_out() -> None:
    report = check_histogram([1.0] * 10 + [None], [0, 2], policy=ACRO)
    assert report.counts == (10,)
