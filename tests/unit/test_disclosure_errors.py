"""Bad input to tre.disclosure fails with an InvalidInput naming the problem, and a hint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tre.disclosure import (
    Cell,
    check_histogram,
    check_regression,
    check_table,
    load_policy,
    load_preset,
    round_table,
)
from tre.errors import InvalidInput, NotFound

ACRO = load_preset("acro")
GOOD = [Cell("x", "a", [1.0] * 10)]


@pytest.mark.parametrize(
    ("cells", "statistic", "message"),
    [
        (GOOD, "variance", "unknown statistic 'variance'"),
        ([], "sum", "the table is empty"),
        ([Cell("x", "a", [1.0, float("nan")])], "sum", "value #1 is NaN"),
        ([Cell("x", "a", np.array([1.0, np.inf]))], "sum", "value #1 is infinite"),
        ([Cell("x", "a", np.array([np.nan]))], "sum", "value #0 is NaN"),
        ([Cell("x", "a", ["one"])], "sum", "a value is not a number"),
        ([Cell("x", "a", 5)], "sum", "values must be a sequence"),  # type: ignore[arg-type]
        ([Cell("x", "a", [1]), Cell("x", "a", [2])], "sum", "appears twice"),
        (
            [Cell("x", "a", [1]), Cell("y", "b", [2])],
            "sum",
            "cell (row 'x', column 'b') is missing",
        ),
        (["not a cell"], "sum", "cells[0] is a str, not a Cell"),
        ([Cell(["unhashable"], "a", [1])], "sum", "not hashable"),
    ],
)
def test_bad_tables_are_refused_with_the_problem_named(
    cells: list[Cell], statistic: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        check_table(cells, statistic=statistic, policy=ACRO)
    assert message in err.value.message
    assert err.value.hint


def test_error_messages_never_quote_values() -> None:
    with pytest.raises(InvalidInput) as err:
        check_table([Cell("x", "a", [123456.789, float("nan")])], statistic="sum", policy=ACRO)
    assert "123456" not in str(err.value)


def test_policy_must_be_a_policy() -> None:
    with pytest.raises(InvalidInput, match="policy must be a DisclosurePolicy"):
        check_table(GOOD, statistic="sum", policy={"threshold": 10})  # type: ignore[arg-type]


def test_differencing_needs_ids_one_per_value() -> None:
    from tre.disclosure import Release

    release = Release.from_cells("r", [Cell("x", "a", [1.0], ids=["p1"])])
    with pytest.raises(InvalidInput, match="has no ids"):
        check_table(GOOD, statistic="frequency", policy=ACRO, releases=[release])
    with pytest.raises(InvalidInput, match="2 ids for 10 values"):
        check_table(
            [Cell("x", "a", [1.0] * 10, ids=["a", "b"])],
            statistic="frequency",
            policy=ACRO,
            releases=[release],
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs a fitted model, or both n_obs and rank"),
        ({"n_obs": 5, "rank": 6}, "rank 6 exceeds n_obs 5"),
        ({"n_obs": -1, "rank": 0}, "n_obs must be ≥ 0"),
        ({"n_obs": 2.5, "rank": 1}, "n_obs must be a whole number"),
    ],
)
def test_bad_regressions(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_regression(policy=ACRO, **kwargs)  # type: ignore[arg-type]


def test_regression_model_without_df_resid() -> None:
    with pytest.raises(InvalidInput, match="has no df_resid"):
        check_regression(object(), policy=ACRO)


@pytest.mark.parametrize(
    ("values", "bins", "message"),
    [
        ([], 3, "no values"),
        ([1.0, float("nan")], 3, "value #1 is NaN"),
        ([1.0, float("-inf")], 3, "value #1 is infinite"),
        ([1.0, 2.0], [3.0, 1.0], "bad bins"),
        ([1.0, 2.0], "ten", "bins must be"),
    ],
)
def test_bad_histograms(values: list[float], bins: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_histogram(values, bins, policy=ACRO)  # type: ignore[arg-type]


def test_rounding_needs_a_scheme_and_counts() -> None:
    with pytest.raises(InvalidInput, match="has no rounding scheme"):
        round_table(GOOD, statistic="frequency", policy=ACRO)
    with pytest.raises(InvalidInput, match="applies to counts, not to a sum table"):
        round_table(GOOD, statistic="sum", policy=load_preset("ons"))


def test_policy_file_errors_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nthreshold: 10\nnk: {n: 2, kk: 0.9}\n")
    with pytest.raises(InvalidInput) as err:
        load_policy(path)
    assert str(path) in err.value.message and "nk.k" in err.value.message
    assert "nk.kk: Extra inputs are not permitted" in err.value.details["problems"]

    path.write_text("name: bad\nthreshold: ten\n")
    with pytest.raises(InvalidInput, match="key threshold: Input should be a valid integer"):
        load_policy(path)

    path.write_text("name: bad\nthreshold: 10\nzeros_are_disclosive: 1\n")
    with pytest.raises(InvalidInput, match="key zeros_are_disclosive"):
        load_policy(path)

    path.write_text("name: bad\nthreshold: 10\nrounding: {scheme: midpoint6, base: 5}\n")
    with pytest.raises(InvalidInput, match="midpoint6 needs base 6"):
        load_policy(path)

    path.write_text("name: [unclosed\n")
    with pytest.raises(InvalidInput, match="is not valid YAML"):
        load_policy(path)

    path.write_text("- a list\n")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        load_policy(path)


def test_unknown_preset_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no disclosure preset named 'nope'") as err:
        load_preset("nope")
    assert "acro" in (err.value.hint or "")
    with pytest.raises(NotFound, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")
    with pytest.raises(NotFound):
        load_preset("../datasets/x")
