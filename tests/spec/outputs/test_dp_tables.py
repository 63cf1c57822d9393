"""Spec: differentially private query results are not checked as record counts.

A table whose (verified) provenance is a tre DP query passes with the noise as its protection
— small and negative noisy counts included —, while the same counts without that provenance
keep the threshold and zero rules and the refusal of negative counts.
"""

from __future__ import annotations

import pytest

from tre.disclosure import load_preset
from tre.errors import InvalidInput
from tre.outputs.checks import DP_SKIPPED_NOTE, DP_UNVERIFIED_NOTE, check_table_item
from tre.outputs.files import TableData
from tre.outputs.types import Provenance

ACRO = load_preset("acro")
NOISY = TableData(("region", "n"), (("north", 412), ("south", -37), ("east", 3), ("west", 0)))
DP = Provenance(query_id="q-dp", mode="dp", datasets=(("admissions", 1),))


def test_a_verified_dp_table_passes_on_its_noise() -> None:
    result = check_table_item("dp.json", NOISY, ACRO, provenance=DP, dp_rho=0.5)
    assert result.status.value == "pass"
    assert result.notes[0] == (
        "differentially private: protected by noise, cost ρ=0.5; counts are not record counts"
    )
    assert DP_SKIPPED_NOTE in result.notes
    assert result.cells == {} and result.report is None  # no SDC rule was applied


@pytest.mark.parametrize("provenance", [None, DP, Provenance(query_id="q", mode="sdc")])
def test_a_negative_count_without_verified_dp_provenance_is_refused(
    provenance: Provenance | None,
) -> None:
    with pytest.raises(
        InvalidInput, match=r"column 'n', row 2: a count must be a whole number ≥ 0"
    ) as err:
        check_table_item("t.json", NOISY, ACRO, provenance=provenance)
    assert err.value.reason == "bad_count" and "-37" not in str(err.value.body())
    assert ("differentially private" in (err.value.hint or "")) is (provenance is DP)


def test_unverified_dp_counts_are_checked_as_record_counts() -> None:
    table = TableData(("region", "n"), (("north", 412), ("east", 3)))
    result = check_table_item("t.json", table, ACRO, provenance=DP)  # no dp_rho: not verified
    assert result.status.value == "fail" and result.cells["threshold"] == [[1, 1]]
    assert DP_UNVERIFIED_NOTE in result.notes


def test_the_same_small_counts_fail_without_dp() -> None:
    table = TableData(("region", "n"), (("north", 412), ("east", 3), ("west", 0)))
    result = check_table_item("t.csv", table, ACRO)
    assert result.status.value == "fail"
    assert result.cells["threshold"] == [[1, 1], [2, 1]] and result.cells["zero"] == [[2, 1]]
