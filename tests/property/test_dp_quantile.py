"""Property: tre's quantile scores from bin counts equal OpenDP's quantile scores from rows,
and the quantile privacy loss composes across groups no worse than all rows in one group."""

from __future__ import annotations

import bisect

import opendp.prelude as dp
from hypothesis import given, settings
from hypothesis import strategies as st

from tre.privacy import mechanisms

CANDS = [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-2, 17), min_size=0, max_size=40),
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]),
)
def test_scores_from_counts_equal_opendp_scores(values: list[int], alpha: float) -> None:
    data = [float(v) for v in values]
    bins = [0] * (len(CANDS) + 1)
    eq = [0] * len(CANDS)
    for x in data:
        i = bisect.bisect_left(CANDS, x)
        if i < len(CANDS) and CANDS[i] == x:
            eq[i] += 1
        else:
            bins[i] += 1
    t = dp.t.make_quantile_score_candidates(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance(), CANDS, alpha
    )
    weights = mechanisms.quantile_weights(CANDS, alpha)
    assert mechanisms.quantile_scores(bins, eq, weights) == list(t(data))


@given(st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_quantile_loss_is_superadditive_in_rows(parts: list[int]) -> None:
    scale = 3.0
    total = sum(mechanisms.quantile_rho(CANDS, 0.5, k, scale) for k in parts)
    assert total <= mechanisms.quantile_rho(CANDS, 0.5, sum(parts), scale) * (1 + 1e-9)


def test_gaussian_release_loss_comes_from_opendp() -> None:
    v = mechanisms.release_integers([10, 20], l2_sensitivity=5, rho=0.1)
    assert v.rho <= 0.1 and v.half_width > 0
