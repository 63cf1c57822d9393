"""Planning does bounded work whatever the noise scale: a fixed-point sum of costs at a large
scale once hung the service process in OpenDP's exact discrete-Gaussian accuracy (a sum over
every integer up to ~the scale). Timeouts make these tests fail instead of hanging."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import opendp.prelude as dp
import pytest

from tests.query_support import HEALTH_COLUMNS, FixtureCatalog, grant, health_rows, publish
from tre.privacy import mechanisms
from tre.query.execute import Limits, Worker
from tre.query.service import QueryService, QuerySettings

G = grant("health")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    root = Path(tmp_path_factory.mktemp("qplan"))
    catalog = FixtureCatalog(
        {"health": publish(root, "health", health_rows(50), HEALTH_COLUMNS, 5)}
    )
    svc = QueryService(
        catalog, None, None, QuerySettings(), worker=Worker(Limits(timeout_seconds=10))
    )
    yield svc
    svc.close()


@pytest.mark.timeout(20)
def test_half_width_at_the_scale_of_a_cost_sum_is_immediate() -> None:
    # cost bounds 0–50,000 at scale 100, 20 rows per person: σ ≈ 1e8 at ρ = 0.5 split 1 way.
    hw = mechanisms.gaussian_half_width(1.4e8)
    assert hw == pytest.approx(1.96 * 1.4e8, rel=1e-3)


@pytest.mark.parametrize("scale", [10_001.0, 23_456.7, 99_999.9])
def test_fast_half_width_bounds_opendp_exact_value_by_at_most_one(scale: float) -> None:
    exact = float(dp.discrete_gaussian_scale_to_accuracy(scale, 0.05))
    fast = mechanisms.gaussian_half_width(scale)
    assert exact <= fast <= exact + 1


def test_small_scales_use_opendp_exact_value() -> None:
    for scale in (0.5, 3.7, 250.0, 9_999.0):
        assert mechanisms.gaussian_half_width(scale) == float(
            dp.discrete_gaussian_scale_to_accuracy(scale, 0.05)
        )


@pytest.mark.timeout(20)
def test_sum_of_costs_over_two_public_keys_plans_in_bounded_time(service: QueryService) -> None:
    # ρ = 1e-4 puts the noise scale of SUM(cost) (bounds 0–5,000 × 100, 5 rows) near 1.8e8:
    # before the fix this spent minutes in the service process.
    sql = "SELECT sex, diagnosis_chapter, SUM(cost) FROM health GROUP BY sex, diagnosis_chapter"
    p = service.prepare(sql, G, rho=1e-4)
    (m,) = p.measurements
    assert m.scale > 1e8 and m.half_width is not None and math.isfinite(m.half_width)
    e = service.explain(sql, G, rho=1e-4)
    assert e.half_widths[-1] == pytest.approx(m.half_width / 100)
