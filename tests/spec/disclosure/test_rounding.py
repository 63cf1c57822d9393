"""Chapter 14 — rounding: base-N (ACRO), the ONS 10-5 rule, OpenSAFELY redact-≤7-then-round-5,
and midpoint 6. Totals are the sums of the published cells in every scheme."""

from __future__ import annotations

import numpy as np
import pytest

from tre.disclosure import TOTAL, Status, load_preset, midpoint6, round_table, round_to_base
from tre.disclosure.policy import RoundingRule

from ._tables import counts


def published(table) -> list[object]:  # type: ignore[no-untyped-def]
    return ["R" if c.suppressed else int(c.value) for c in table.cells]


def test_opensafely_worked_example() -> None:
    # OpenSAFELY docs: heart disease 3, 8, 16, 23 → [REDACTED], 10, 15, 25; total 50.
    table = round_table(
        counts("  a b c d\nheart 3 8 16 23\npopulation 18 23 31 44"),
        statistic="frequency",
        policy=load_preset("opensafely"),
    )
    assert published(table)[:4] == ["R", 10, 15, 25]
    assert table.value("heart", TOTAL) == 50
    assert published(table)[4:] == [20, 25, 30, 45]
    assert table.value("population", TOTAL) == 120
    assert table.status is Status.REVIEW


def test_ons_10_5_suppresses_below_ten_and_rounds_the_rest() -> None:
    table = round_table(
        counts("  a b c d\nx 9 10 12 13"), statistic="frequency", policy=load_preset("ons")
    )
    assert published(table) == ["R", 10, 10, 15]
    assert table.value("x", TOTAL) == 35


def test_midpoint6() -> None:
    assert midpoint6(np.arange(0, 20)).tolist() == ([0] + [3] * 6 + [9] * 6 + [15] * 6 + [21])
    table = round_table(
        counts("  a b c\nx 0 6 7"),
        statistic="frequency",
        policy=load_preset("opensafely-midpoint6"),
    )
    assert published(table) == [0, 3, 9]


@pytest.mark.parametrize(
    ("half", "expected"), [("up", [20, 30, 40, 50]), ("even", [20, 20, 40, 40])]
)
def test_quirk_halves_round_up_unless_even_is_asked_for(half: str, expected: list[int]) -> None:
    # ACRO rounds with pandas (half to even: 15→20, 25→20, 35→40, 45→40); tre rounds halves up
    # by default (fix) and keeps "even" as an option.
    assert round_to_base(np.array([15, 25, 35, 45]), 10, half).tolist() == expected


def test_acro_base_rounding_redacts_nothing() -> None:
    table = round_table(
        counts("  a b\nx 3 9"),
        statistic="frequency",
        policy=load_preset("acro"),
        scheme=RoundingRule(scheme="base", base=5),
    )
    assert published(table) == [5, 10]
    assert table.parameters["rounding.scheme"] == "base"
