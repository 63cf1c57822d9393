"""OpenDP measurements for aggregates computed elsewhere (the DuckDB engine's exact, bounded values).

Every privacy loss here comes from an OpenDP privacy map, and every random number from an
OpenDP sampler. Accounting is zero-concentrated DP (ρ); τ-thresholding adds a δ. tre never
computes a privacy loss with its own formula: where it picks a noise scale analytically, it
then asks OpenDP for the loss at that scale and widens the scale until OpenDP agrees.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import opendp.prelude as dp

from tre.privacy.features import enable_opendp

enable_opendp()

# A 95% confidence interval: the half-width that noise stays within with probability 0.95.
ALPHA_95 = 0.05


@dataclass(frozen=True)
class NoisyVector:
    """Integers released with discrete Gaussian noise, with the scale, loss and 95% half-width."""

    values: tuple[int, ...]
    scale: float
    rho: float
    half_width: float


@dataclass(frozen=True)
class ThresholdRelease:
    """Counts released by propose-test-release: only keys whose noisy count passed τ."""

    counts: dict[Hashable, int]
    scale: float
    threshold: int
    rho: float
    delta: float
    half_width: float


@dataclass(frozen=True)
class QuantileRelease:
    """A DP quantile chosen among candidates by OpenDP's noisy max over quantile scores."""

    value: float
    scale: float
    rho: float


def _int_space() -> tuple[Any, Any]:
    return dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64")


def _widen(loss: Any, scale: float, target: float) -> float:
    """The first scale from `scale` upwards whose `loss(scale)` is at most `target`.

    Steps grow geometrically (1 ppm, 2 ppm, 4 ppm, …), so a privacy map that rounds up by more
    than expected costs a few dozen OpenDP calls, never an unbounded loop in the service.
    """
    step = 1e-6
    for _ in range(200):
        if loss(scale) <= target:
            return scale
        scale *= 1.0 + step
        step *= 2.0
    raise ValueError("no noise scale reaches this privacy loss")


@functools.lru_cache(maxsize=256)
def gaussian_measurement(scale: float) -> Any:
    """OpenDP's discrete Gaussian on integer vectors (zCDP), at `scale` (built once per scale)."""
    return dp.m.make_gaussian(*_int_space(), scale=scale)


@functools.lru_cache(maxsize=4096)
def gaussian_rho(l2_sensitivity: float, scale: float) -> float:
    """ρ of the discrete Gaussian at `scale` for an L2 sensitivity, from OpenDP's privacy map."""
    if l2_sensitivity == 0:
        return 0.0
    m = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="f64", nan=False)), dp.l2_distance(T="f64"), scale=scale
    )
    # The float-input map accepts a real-valued L2 distance (e.g. √k for distinct counts);
    # on integer inputs OpenDP's integer and float Gaussians share the same map.
    return float(m.map(float(l2_sensitivity)))


@functools.lru_cache(maxsize=4096)
def gaussian_scale_for(l2_sensitivity: float, rho: float) -> float:
    """The smallest scale (to 1 ppm) whose OpenDP loss for `l2_sensitivity` is at most `rho`."""
    if rho <= 0:
        raise ValueError("rho must be positive")
    if l2_sensitivity == 0:
        return 1.0
    scale = l2_sensitivity / math.sqrt(2 * rho)
    return _widen(lambda s: gaussian_rho(l2_sensitivity, s), scale, rho)


def gaussian_half_width(scale: float, alpha: float = ALPHA_95) -> float:
    """Half-width of the (1-alpha) interval of OpenDP's discrete Gaussian at `scale`.

    OpenDP's exact discrete accuracy sums the probability mass integer by integer, so its time
    grows linearly with the scale (about 0.5 s at 1e6, minutes at the 1e8 of a fixed-point sum
    of costs): it is used only up to `EXACT_ACCURACY_MAX_SCALE`. Above, the discrete Gaussian's
    tail beyond t is the continuous Gaussian's beyond t − ½ (Poisson summation; the error is
    below e^(−2π²σ²), nothing at σ ≥ 10⁴), so OpenDP's continuous accuracy plus one, rounded
    up, is an upper bound on the exact value (and at most one unit above it).
    """
    return _half_width(float(scale), float(alpha))


EXACT_ACCURACY_MAX_SCALE = 1e4


@functools.lru_cache(maxsize=4096)
def _half_width(scale: float, alpha: float) -> float:
    if scale <= EXACT_ACCURACY_MAX_SCALE:
        return float(dp.discrete_gaussian_scale_to_accuracy(scale, alpha))
    return float(math.ceil(dp.gaussian_scale_to_accuracy(scale, alpha) + 1.0))


def release_integers(values: Sequence[int], l2_sensitivity: float, rho: float) -> NoisyVector:
    """Add discrete Gaussian noise to exact integer aggregates; loss ≤ rho by OpenDP's map."""
    scale = gaussian_scale_for(l2_sensitivity, rho)
    spent = gaussian_rho(l2_sensitivity, scale)
    noisy = gaussian_measurement(scale)([int(v) for v in values]) if values else []
    return NoisyVector(
        values=tuple(int(v) for v in noisy),
        scale=scale,
        rho=spent,
        half_width=gaussian_half_width(scale),
    )


def _threshold_space() -> tuple[Any, Any]:
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T="i64"))
    return domain, dp.l02inf_distance(dp.absolute_distance(T="i64"))


@functools.lru_cache(maxsize=4096)
def threshold_cost(
    *, l0: int, l2: float, linf: int, scale: float, threshold: int
) -> tuple[float, float]:
    """(ρ, δ) of OpenDP's Gaussian threshold measurement for these sensitivities."""
    m = dp.m.make_gaussian_threshold(*_threshold_space(), scale=scale, threshold=threshold)
    # The integer measurement takes an integer L2 distance: round up (never under-count).
    rho, delta = m.map((l0, math.ceil(l2 - 1e-12), linf))
    return float(rho), float(delta)


@functools.lru_cache(maxsize=1024)
def threshold_params(
    *, l0: int, l2: float, linf: int, rho: float, delta: float
) -> tuple[float, int]:
    """(scale, τ): the noise scale for `rho` and the smallest τ whose δ is at most `delta`."""
    if delta <= 0:
        raise ValueError("thresholding needs delta > 0")
    scale = gaussian_scale_for(math.ceil(l2 - 1e-12), rho)
    # δ falls as τ grows: double until it fits, then bisect to the smallest integer τ.
    lo, hi = linf, max(linf + 1, 2)
    while threshold_cost(l0=l0, l2=l2, linf=linf, scale=scale, threshold=hi)[1] > delta:
        lo, hi = hi, hi * 2
        if hi > 2**40:
            raise ValueError("no threshold reaches this delta")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if threshold_cost(l0=l0, l2=l2, linf=linf, scale=scale, threshold=mid)[1] > delta:
            lo = mid
        else:
            hi = mid
    scale = _widen(
        lambda s: threshold_cost(l0=l0, l2=l2, linf=linf, scale=s, threshold=hi)[0], scale, rho
    )
    return scale, hi


def release_threshold(
    counts: Mapping[str, int], *, l0: int, l2: float, linf: int, rho: float, delta: float
) -> ThresholdRelease:
    """Release the counts of keys that OpenDP's Gaussian threshold measurement lets through."""
    scale, tau = threshold_params(l0=l0, l2=l2, linf=linf, rho=rho, delta=delta)
    spent_rho, spent_delta = threshold_cost(l0=l0, l2=l2, linf=linf, scale=scale, threshold=tau)
    m = dp.m.make_gaussian_threshold(*_threshold_space(), scale=scale, threshold=tau)
    released = m({str(k): int(v) for k, v in counts.items()}) if counts else {}
    return ThresholdRelease(
        counts={k: int(v) for k, v in released.items()},
        scale=scale,
        threshold=tau,
        rho=spent_rho,
        delta=spent_delta,
        half_width=gaussian_half_width(scale),
    )


# --- quantiles ----------------------------------------------------------------------------------


def _score_space(candidates: Sequence[float], alpha: float) -> Any:
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    return dp.t.make_quantile_score_candidates(
        domain, dp.symmetric_distance(), [float(c) for c in candidates], alpha
    )


def quantile_weights(candidates: Sequence[float], alpha: float) -> tuple[int, int]:
    """(a, b−a): OpenDP's integer weights of values above and below a candidate for `alpha`.

    OpenDP scores candidate c as |(b−a)·#{x < c} − a·#{x > c}| for alpha ≈ a/b; probing its
    transformation with one value above and one below every candidate reads the weights off,
    so that tre scores from bin counts exactly as OpenDP scores from rows.
    """
    t = _score_space(candidates, alpha)
    above = [float(candidates[-1]) + 1.0]
    below = [float(candidates[0]) - 1.0]
    a = int(t(above)[0])
    b_minus_a = int(t(below)[0])
    return a, b_minus_a


def quantile_scores(
    bin_counts: Sequence[int], equal_counts: Sequence[int], weights: tuple[int, int]
) -> list[int]:
    """Scores per candidate from counts of values strictly between and equal to candidates.

    `bin_counts[i]` counts values strictly below candidate i and at or above candidate i−1's
    open interval (len = len(candidates) + 1; the last bin holds values above every candidate);
    `equal_counts[i]` counts values equal to candidate i.
    """
    a, b_minus_a = weights
    total = sum(bin_counts) + sum(equal_counts)
    scores = []
    below = 0
    for i, eq in enumerate(equal_counts):
        below += bin_counts[i]
        above = total - below - eq
        scores.append(abs(b_minus_a * below - a * above))
        below += eq
    return scores


def quantile_scale_for(candidates: Sequence[float], alpha: float, d_in: int, rho: float) -> float:
    """The smallest scale whose OpenDP loss (scores → noisy min) at `d_in` is at most `rho`."""
    return _quantile_scale(tuple(float(c) for c in candidates), float(alpha), int(d_in), rho)


@functools.lru_cache(maxsize=1024)
def _quantile_scale(candidates: tuple[float, ...], alpha: float, d_in: int, rho: float) -> float:
    t = _score_space(candidates, alpha)
    sens = float(t.map(d_in))
    scale = max(sens, 1.0) / math.sqrt(2 * rho)
    return _widen(lambda s: float(_quantile_measurement(t, s).map(d_in)), scale, rho)


def _quantile_measurement(t: Any, scale: float) -> Any:
    return t >> dp.m.then_noisy_max(dp.zero_concentrated_divergence(), scale=scale, negate=True)


def release_quantile(
    candidates: Sequence[float],
    alpha: float,
    bin_counts: Sequence[int],
    equal_counts: Sequence[int],
    *,
    d_in: int,
    rho: float,
) -> QuantileRelease:
    """Pick the `alpha`-quantile among `candidates` with OpenDP's noisy max over exact scores."""
    t = _score_space(candidates, alpha)
    scale = quantile_scale_for(candidates, alpha, d_in, rho)
    chained = _quantile_measurement(t, scale)
    spent = float(chained.map(d_in))
    scores = quantile_scores(bin_counts, equal_counts, quantile_weights(candidates, alpha))
    noisy_min = dp.m.make_noisy_max(
        t.output_domain, t.output_metric, dp.zero_concentrated_divergence(), scale, negate=True
    )
    index = int(noisy_min(scores))
    return QuantileRelease(value=float(candidates[index]), scale=scale, rho=spent)


def quantile_rho(candidates: Sequence[float], alpha: float, d_in: int, scale: float) -> float:
    """ρ of tre's quantile release at `scale` for `d_in` rows per person, from OpenDP's map."""
    return _quantile_rho(tuple(float(c) for c in candidates), float(alpha), int(d_in), scale)


@functools.lru_cache(maxsize=1024)
def _quantile_rho(candidates: tuple[float, ...], alpha: float, d_in: int, scale: float) -> float:
    return float(_quantile_measurement(_score_space(candidates, alpha), scale).map(d_in))


# --- conversions ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def rho_to_epsilon(rho: float, delta: float) -> float:
    """ε of (ε, δ)-DP implied by ρ-zCDP, from OpenDP's zCDP → approximate-DP conversion."""
    if rho <= 0:
        return 0.0
    # A Gaussian at scale 1 has ρ = d²/2, so d = √(2ρ) gives a mechanism with exactly loss ρ.
    profile = _unit_gaussian_approx_dp().map(math.sqrt(2 * rho))
    return float(profile.epsilon(delta))


@functools.lru_cache(maxsize=1)
def _unit_gaussian_approx_dp() -> Any:
    # Built once: the conversion is then one privacy-map call (a bisection makes ~80 of them).
    return dp.c.make_zCDP_to_approxDP(
        dp.m.make_gaussian(
            dp.vector_domain(dp.atom_domain(T="f64", nan=False)),
            dp.l2_distance(T="f64"),
            scale=1.0,
        )
    )


@functools.lru_cache(maxsize=1024)
def epsilon_to_rho(epsilon: float, delta: float) -> float:
    """The largest ρ (to 1e-10 relative) whose OpenDP conversion gives at most (ε, δ)-DP."""
    if epsilon <= 0 or delta <= 0:
        raise ValueError("epsilon and delta must be positive")
    # Bracket from the classical bound ε ≤ ρ + 2√(ρ ln 1/δ) (OpenDP's conversion is tighter,
    # so this ρ is feasible): ~35 privacy-map calls instead of 80 from [0, ε].
    root_l = math.sqrt(math.log(1 / delta))
    lo = (math.sqrt(root_l**2 + epsilon) - root_l) ** 2
    if rho_to_epsilon(lo, delta) > epsilon:
        lo = 0.0
    hi = epsilon  # the conversion never gives ε below ρ, so ρ = ε is (nearly) infeasible
    for _ in range(64):
        if rho_to_epsilon(hi, delta) > epsilon:
            break
        lo, hi = hi, hi * 2
    for _ in range(80):
        if hi - lo <= 1e-10 * hi:
            break
        mid = (lo + hi) / 2
        if rho_to_epsilon(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo


# --- releases at a scale fixed by the plan ------------------------------------------------------


def add_gaussian(values: Sequence[int], scale: float) -> tuple[int, ...]:
    """Release integers with OpenDP's discrete Gaussian at a scale the plan already fixed."""
    if not values:
        return ()
    return tuple(int(v) for v in gaussian_measurement(scale)([int(v) for v in values]))


def apply_threshold(counts: Mapping[str, int], scale: float, threshold: int) -> dict[str, int]:
    """Release the counts that pass OpenDP's Gaussian threshold measurement at (scale, τ)."""
    if not counts:
        return {}
    m = _threshold_measurement(scale, threshold)
    return {str(k): int(v) for k, v in m({str(k): int(v) for k, v in counts.items()}).items()}


@functools.lru_cache(maxsize=256)
def _threshold_measurement(scale: float, threshold: int) -> Any:
    return dp.m.make_gaussian_threshold(*_threshold_space(), scale=scale, threshold=threshold)


def pick_quantile(
    candidates: Sequence[float],
    alpha: float,
    bin_counts: Sequence[int],
    equal_counts: Sequence[int],
    scale: float,
) -> float:
    """The candidate OpenDP's noisy min over exact quantile scores picks, at a fixed scale."""
    cands = tuple(float(c) for c in candidates)
    weights, noisy_min = _quantile_picker(cands, float(alpha), float(scale))
    scores = quantile_scores(bin_counts, equal_counts, weights)
    return cands[int(noisy_min(scores))]


@functools.lru_cache(maxsize=64)
def _quantile_picker(
    candidates: tuple[float, ...], alpha: float, scale: float
) -> tuple[tuple[int, int], Any]:
    # Built once per (candidates, α, scale): a grouped median picks once per group, and
    # rebuilding OpenDP's transformation and measurement per group cost ~8 ms each.
    t = _score_space(candidates, alpha)
    noisy_min = dp.m.make_noisy_max(
        t.output_domain, t.output_metric, dp.zero_concentrated_divergence(), scale, negate=True
    )
    return quantile_weights(candidates, alpha), noisy_min
