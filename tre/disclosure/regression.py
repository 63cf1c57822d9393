"""check_regression: residual degrees of freedom of a model (and DataSHIELD's parameter ratio).

ACRO `MinimumDoFCheck` for ols/logit/probit: dof = int(df_resid) = n_obs − rank(X); fail iff
dof < safe_dof_threshold (10), so dof = 10 passes. Collinear columns do not cost dof.
DataSHIELD glmDS1 refuses a model with more than nfilter.glm × N parameters.
"""

from __future__ import annotations

from typing import Any

from tre.disclosure.check import require_policy
from tre.disclosure.model import RegressionReport, RuleId, Status
from tre.disclosure.policy import DisclosurePolicy
from tre.errors import InvalidInput


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidInput(f"{name} must be a whole number", hint=f"pass {name} as an int")
    if value < 0:
        raise InvalidInput(f"{name} must be ≥ 0, got {int(value)}", hint=f"check {name}")
    return int(value)


def check_regression(
    model: Any = None,
    *,
    policy: DisclosurePolicy,
    n_obs: int | None = None,
    rank: int | None = None,
) -> RegressionReport:
    """Check a fitted model (statsmodels results) or n_obs and rank of its design matrix."""
    require_policy(policy)
    if model is not None:
        if n_obs is not None or rank is not None:
            raise InvalidInput(
                "pass either a fitted model or n_obs and rank, not both",
                hint="check_regression(result, policy=...) or check_regression(n_obs=, rank=)",
            )
        if not hasattr(model, "df_resid") or not hasattr(model, "nobs"):
            raise InvalidInput(
                f"{type(model).__name__} has no df_resid/nobs",
                hint="pass a fitted statsmodels results object, or n_obs and rank",
            )
        n = _count("nobs", float(model.nobs))
        dof = int(model.df_resid)  # ACRO: int(model.df_resid)
        r = n - dof
    else:
        if n_obs is None or rank is None:
            raise InvalidInput(
                "check_regression needs a fitted model, or both n_obs and rank",
                hint="rank is the rank of the design matrix (columns incl. the intercept)",
            )
        n, r = _count("n_obs", n_obs), _count("rank", rank)
        if r > n:
            raise InvalidInput(
                f"rank {r} exceeds n_obs {n}", hint="the rank of X is at most its rows"
            )
        dof = n - r
    rules: list[RuleId] = []
    notes: list[str] = []
    params: dict[str, Any] = {"policy": policy.name}
    reg = policy.regression
    if reg.min_dof is not None:
        params["regression.min_dof"] = reg.min_dof
        if dof < reg.min_dof:
            rules.append("dof")
            notes.append(f"fail dof={dof} < {reg.min_dof}")
        else:
            notes.append(f"pass dof={dof} >= {reg.min_dof}")
    if reg.max_param_ratio is not None:
        params["regression.max_param_ratio"] = reg.max_param_ratio
        if r > reg.max_param_ratio * n:
            if "dof" not in rules:
                rules.append("dof")
            notes.append(f"fail parameters={r} > {reg.max_param_ratio} × n_obs")
    return RegressionReport(
        status=Status.FAIL if rules else Status.PASS,
        dof=dof,
        n_obs=n,
        rank=r,
        rules=tuple(rules),
        parameters=params,
        notes=tuple(notes),
    )
