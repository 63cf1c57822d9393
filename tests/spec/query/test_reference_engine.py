"""Spec: for every supported single-dataset shape, tre's DuckDB engine and OpenDP's own Polars
Context (the reference engine) agree on the bounded aggregates before noise and on the privacy
loss: tre's ρ at the noise scales OpenDP picks equals OpenDP's ρ (the sensitivities agree).

Not covered by the reference, because OpenDP 0.16's Context cannot state them: joins (refused),
CASE keys (`when/then` refused), DP quantiles (tre scores candidates as OpenDP does; see
tests/property/test_dp_quantile.py) and τ-thresholded keys."""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.query_support import FixtureCatalog, Shape, grant, shapes, tre_exact
from tre.privacy import mechanisms, reference
from tre.query.service import QueryService

G = grant("health")


@pytest.mark.parametrize("shape", shapes(5), ids=lambda s: s.name)
def test_tre_and_opendp_context_agree(
    shape: Shape, service: QueryService, query_catalog: FixtureCatalog
) -> None:
    data = pl.from_arrow(pq.read_table(query_catalog.get("health").files[0]))
    assert isinstance(data, pl.DataFrame)
    assert_agree(service, data, shape)


def assert_agree(service: QueryService, data: pl.DataFrame, shape: Shape) -> None:
    """Bounded aggregates equal per key (absent keys are zeros); ρ equal at OpenDP's scales."""
    ours, l2 = tre_exact(service, G, shape)
    theirs = reference.bounded(data, shape.reference)
    zero = (0,) * len(shape.columns)
    for key in set(ours) | set(theirs):
        assert ours.get(key, zero) == theirs.get(key, zero), (shape.name, key)
    ref_loss = reference.loss(data, shape.reference, global_scale=3.0)
    tre_rho = sum(
        mechanisms.gaussian_rho(l2[c], s)
        for c, s in zip(shape.columns, ref_loss.scales, strict=True)
    )
    assert tre_rho == pytest.approx(ref_loss.rho, rel=1e-9), shape.name
