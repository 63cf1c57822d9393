"""Denial of service against the SERVICE process (not the sandboxed worker, which has its own
OS limits): query shapes a researcher controls must never make planning or protection do
unbounded work. Each test has a generous timeout (pytest-timeout), so a regression to minutes of
work fails instead of hanging the suite; no test asserts on wall-clock time, which would be flaky
on a loaded machine (timings belong in bench/)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from tests.query_support import grant
from tre.errors import UserError
from tre.privacy import mechanisms
from tre.query.errors import QueryRefused
from tre.query.service import QueryService

G = grant("health", "benefits")
HEALTHY = "SELECT sex, COUNT(*) AS n FROM health GROUP BY sex"


def _quick(fn: Callable[[], object]) -> None:
    with contextlib.suppress(UserError):
        fn()


@pytest.mark.timeout(120)
def test_a_tiny_privacy_parameter_plans_in_bounded_time(service: QueryService) -> None:
    # A minute ρ makes the noise scale astronomically large; planning must not scale with it.
    for rho in (1e-4, 1e-6, 1e-12, 1e-300):
        _quick(
            lambda rho=rho: service.explain(
                "SELECT sex, diagnosis_chapter, SUM(cost) FROM health GROUP BY 1, 2", G, rho=rho
            )
        )
    _quick(lambda: service.explain(HEALTHY, G, epsilon=1e-300))
    with pytest.raises(UserError):
        service.explain(HEALTHY, G, rho=1e-12)


@pytest.mark.timeout(120)
def test_having_over_thousands_of_public_keys_is_fast_and_right(service: QueryService) -> None:
    # floor(cost / 1) over bounds 0–5,000: 5,001 public keys filtered by HAVING in the service.
    sql = "SELECT floor(cost / 1) AS c, COUNT(*) FROM health GROUP BY c HAVING c > 4990"
    e = service.explain(sql, G, rho=0.1)
    assert e.groups == 10  # 4991 … 5000


@pytest.mark.timeout(120)
def test_many_quantiles_are_refused_before_any_work(service: QueryService) -> None:
    sql = (
        "SELECT "
        + ", ".join(f"quantile_cont(cost, 0.{i:02d}) AS q{i}" for i in range(1, 60))
        + " FROM health"
    )
    with pytest.raises(QueryRefused) as info:
        service.run(sql, G, rho=0.1)
    assert info.value.reason == "too_many_aggregates"


@pytest.mark.timeout(120)
def test_many_aggregates_are_refused(service: QueryService) -> None:
    sql = "SELECT " + ", ".join(f"SUM(cost) AS s{i}" for i in range(40)) + " FROM health"
    with pytest.raises(QueryRefused) as info:
        service.run(sql, G, rho=0.1)
    assert info.value.reason == "too_many_aggregates"


@pytest.mark.timeout(120)
def test_quantiles_over_many_groups_are_refused(service: QueryService) -> None:
    # 5,001 cost bins × 1 median would be 5,001 noisy-max draws in the service process.
    sql = "SELECT floor(cost / 1) AS c, MEDIAN(length_of_stay) FROM health GROUP BY c"
    with pytest.raises(QueryRefused) as info:
        service.run(sql, G, rho=0.1)
    assert info.value.reason == "too_many_groups"
    with pytest.raises(QueryRefused) as info:
        service.run(
            "SELECT diagnosis_code, MEDIAN(cost) FROM health GROUP BY diagnosis_code", G, rho=0.1
        )
    assert info.value.reason == "quantile_needs_public_keys"
    assert len(service.run(HEALTHY, G, rho=0.1).rows) == 2


@pytest.mark.timeout(120)
def test_grouped_quantiles_at_the_cap_are_answered_in_bounded_time(service: QueryService) -> None:
    # 31 × 2 × 5 = 310 groups × 3 quantiles = 930 cells (under the cap of 1,000).
    sql = (
        "SELECT length_of_stay, sex, diagnosis_chapter, MEDIAN(cost) AS a, "
        "quantile_cont(cost, 0.9) AS b, MAX(length_of_stay) AS c FROM health GROUP BY 1, 2, 3"
    )
    r = service.run(sql, G, rho=0.5)
    assert len(r.rows) == 310


@pytest.mark.timeout(10)
def test_scale_search_is_bounded_even_if_a_map_never_agrees() -> None:
    with pytest.raises(ValueError):
        mechanisms._widen(lambda s: 1.0, 1.0, 0.5)
