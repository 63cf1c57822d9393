"""Chapter 5 — degrees of freedom: std cells need n − 1 ≥ dof; models need df_resid ≥ min_dof.

ACRO: std → MinimumDoFCheck per cell (n − 1, empty −1), no threshold; models → int(df_resid)
with dof = 10 passing ("pass dof=10 >= 10").
"""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from tre.disclosure import Status, check_regression, check_table, load_preset

from ._tables import contributions, expected, verdicts

ACRO = load_preset("acro")


def test_std_cells_boundary_at_dof() -> None:
    table = contributions(
        """
             eleven         ten        empty
        x    1,2,3*9        1,2,3*8    -
        """
    )
    report = check_table(table, statistic="std", policy=ACRO)
    assert report.rules_applied == ("dof",)
    assert verdicts(report) == expected(
        """
             eleven   ten   empty
        x    ok       dof   dof
        """
    )


def test_quirk_std_flags_only_the_cells_below_the_limit() -> None:
    # ACRO returns the dof table as its mask, marking every cell with dof ≠ 0 (and summing the
    # dofs into its summary); tre flags exactly the failing cells and counts them (fix).
    table = contributions("  a        b        c\nx 1*30   1*11     1*5")
    report = check_table(table, statistic="std", policy=ACRO)
    assert verdicts(report) == expected("  a  b  c\nx ok ok dof")
    assert report.summary == {"dof": 1}


@pytest.mark.parametrize(("n_obs", "rank", "status"), [(13, 3, "pass"), (12, 3, "fail")])
def test_regression_boundary_at_min_dof(n_obs: int, rank: int, status: str) -> None:
    report = check_regression(n_obs=n_obs, rank=rank, policy=ACRO)
    assert report.dof == n_obs - rank
    assert report.status is Status(status)
    assert report.rules == (() if status == "pass" else ("dof",))


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
def test_regression_from_a_fitted_statsmodels_result_collinear_columns_cost_nothing() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(14, 2))
    design = sm.add_constant(np.column_stack([x, x[:, 0] * 2]))  # 4 columns, rank 3
    y = x @ [1.0, -1.0] + rng.normal(size=14)
    result = sm.OLS(y, design).fit()
    report = check_regression(result, policy=ACRO)
    assert (report.n_obs, report.rank, report.dof) == (14, 3, 11)
    assert report.status is Status.PASS
    assert report.notes == ("pass dof=11 >= 10",)


def test_datashield_refuses_models_with_too_many_parameters() -> None:
    policy = load_preset("datashield")
    assert check_regression(n_obs=100, rank=33, policy=policy).status is Status.PASS
    assert check_regression(n_obs=100, rank=34, policy=policy).status is Status.FAIL
