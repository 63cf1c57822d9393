"""The reference engine: a query through OpenDP's own Polars `Context` (slow, but OpenDP's).

tre's DuckDB engine exists to be fast; this one exists to keep it honest. A `ReferenceQuery`
describes the question in OpenDP's terms (contribution bound by `truncate_per_group` keeping the
lowest per-person ranks, a row filter, `group_by().agg()` of `dp.len()` and `dp.sum()` over
integer-scaled clipped values, public keys by `with_keys`). `bounded(...)` returns OpenDP's
bounded aggregates before noise (its own measurement at a vanishing noise scale: the discrete
Gaussian then returns its input) and `loss(...)` OpenDP's privacy loss and per-statistic noise
scales at a given global scale. `release(...)` runs the whole Context path (the scale search
included), as a researcher using OpenDP directly would; the benchmark times it.

Shapes avoided (OpenDP 0.16, ARCHITECTURE §6): joins (OpenDP refuses them), `when/then`,
`truncate_num_groups` (crashes), redefining a truncated column (#2949).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import opendp.prelude as dp
import polars as pl
from opendp.accuracy import summarize_polars_measurement

from tre.privacy.features import enable_opendp

enable_opendp()

# A scale at which OpenDP's discrete Gaussian returns its input (P(noise ≠ 0) < 1e-300).
VANISHING_SCALE = 1e-9
# Rows any reference frame may hold (OpenDP needs a bound for sums; far above test data).
MAX_LENGTH = 1 << 30


@dataclass(frozen=True)
class RefAggregate:
    """One statistic: rows (`dp.len`), people (one row per person and group) or an integer sum."""

    kind: Literal["rows", "people", "sum"]
    column: str | None = None
    bounds: tuple[int, int] | None = None  # clip bounds of an integer column


@dataclass(frozen=True)
class ReferenceQuery:
    """A question in OpenDP's terms (see the module docstring)."""

    identifier: str
    rank: str
    limit: int
    by: tuple[str, ...]
    aggregates: tuple[RefAggregate, ...]
    keys: tuple[tuple[Any, ...], ...] | None = None  # public keys (None: no GROUP BY)
    where: pl.Expr | None = None
    # Row-level columns computed before OpenDP sees the frame (fixed-point values, binned keys):
    # OpenDP 0.16 refuses arithmetic and rounding inside the plan; a row-level map is stable.
    derive: tuple[pl.Expr, ...] = ()


@dataclass(frozen=True)
class ReferenceLoss:
    """OpenDP's privacy loss (ρ) at a global scale and its noise scale per statistic."""

    rho: float
    scales: tuple[float, ...]


def _frame(data: pl.DataFrame | pl.LazyFrame, q: ReferenceQuery) -> pl.LazyFrame:
    # Sorted by rank within each person, so that OpenDP's keep="first" keeps the same rows as
    # tre's `rank <= k` (OpenDP 0.16's SortBy truncation is refused inside some plans).
    lazy = data.lazy().sort(q.identifier, q.rank)
    return lazy.with_columns(*q.derive) if q.derive else lazy


def _context(data: pl.LazyFrame, q: ReferenceQuery, rho: float) -> Any:
    margins = [dp.polars.Margin(max_length=MAX_LENGTH)]
    if q.by:
        margins.append(dp.polars.Margin(by=list(q.by), invariant="keys", max_length=MAX_LENGTH))
    return dp.Context.compositor(
        data=data,
        privacy_unit=dp.unit_of(contributions=1, identifier=q.identifier),
        privacy_loss=dp.loss_of(rho=rho),
        margins=margins,
    )


def _stat(a: RefAggregate, i: int) -> Any:
    name = f"a{i}"
    if a.kind == "rows":
        return dp.len().alias(name)
    if a.kind == "people":
        # Rows were truncated to one per person and group for this statistic's frame.
        return dp.len().alias(name)
    assert a.column is not None and a.bounds is not None
    lo, hi = a.bounds
    return pl.col(a.column).clip(lo, hi).dp.sum((lo, hi)).alias(name)  # type: ignore[attr-defined]  # OpenDP registers the `dp` namespace at runtime


def _query(ctx: Any, q: ReferenceQuery, people: bool, rho: float | None) -> Any:
    start = ctx.query(rho=rho) if rho is not None else ctx.query()
    query = start.truncate_per_group(q.limit, keep="first")
    if q.where is not None:
        query = query.filter(q.where)
    if people:
        # COUNT(DISTINCT person): one row per person and group, after the rank bound.
        query = query.truncate_per_group(1, by=list(q.by))
    return query


def _groups(q: ReferenceQuery) -> list[tuple[bool, list[int]]]:
    rows = [i for i, a in enumerate(q.aggregates) if a.kind != "people"]
    groups: list[tuple[bool, list[int]]] = [(False, rows)] if rows else []
    groups.extend((True, [i]) for i, a in enumerate(q.aggregates) if a.kind == "people")
    return groups


def _queries(ctx: Any, q: ReferenceQuery, rho: float | None = None) -> list[tuple[Any, list[int]]]:
    """One Context query per frame: the row statistics together, each people count alone."""
    out: list[tuple[Any, list[int]]] = []
    for people, idx in _groups(q):
        base = _query(ctx, q, people, rho)
        stats = [_stat(q.aggregates[i], i) for i in idx]
        if q.by:
            query = base.group_by(list(q.by)).agg(*stats)
            assert q.keys is not None
            query = query.with_keys(
                pl.LazyFrame([list(k) for k in q.keys], schema=list(q.by), orient="row")
            )
        else:
            query = base.select(*stats)
        out.append((query, idx))
    return out


def _measurement(query: Any, scale: float) -> tuple[Any, Any]:
    plan = object.__getattribute__(query, "polars_plan")
    inner = object.__getattribute__(query, "_query")
    domain, metric = inner._chain
    m = dp.m.make_private_lazyframe(domain, metric, inner._output_measure, plan, global_scale=scale)
    return m, inner._d_in


def bounded(data: pl.DataFrame, q: ReferenceQuery) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """OpenDP's bounded aggregates before noise, per key (in `q.aggregates` order)."""
    frame_in = _frame(data, q).collect().lazy()
    ctx = _context(frame_in, q, 0.25)
    out: dict[tuple[Any, ...], list[int]] = {}
    for query, idx in _queries(ctx, q):
        m, _ = _measurement(query, VANISHING_SCALE)
        frame = m(frame_in).collect()
        for row in frame.iter_rows(named=True):
            key = tuple(row[c] for c in q.by)
            cells = out.setdefault(key, [0] * len(q.aggregates))
            for i in idx:
                cells[i] = int(row[f"a{i}"] or 0)
    return {k: tuple(v) for k, v in out.items()}


def loss(data: pl.DataFrame, q: ReferenceQuery, global_scale: float) -> ReferenceLoss:
    """OpenDP's ρ for the whole query and each statistic's noise scale at `global_scale`."""
    ctx = _context(_frame(data, q).collect().lazy(), q, 0.25)
    total = 0.0
    scales = [0.0] * len(q.aggregates)
    for query, idx in _queries(ctx, q):
        m, d_in = _measurement(query, global_scale)
        total += float(m.map(d_in))
        summary = summarize_polars_measurement(m)
        for i, s in zip(idx, summary["scale"].to_list(), strict=True):
            scales[i] = float(s)
    return ReferenceLoss(rho=total, scales=tuple(scales))


def release(data: pl.DataFrame | pl.LazyFrame, q: ReferenceQuery, rho: float) -> list[pl.DataFrame]:
    """The full Context path at budget `rho` split evenly over its queries (scale search included)."""
    share = rho / len(_groups(q))
    ctx = _context(_frame(data, q), q, rho)
    return [query.release().collect() for query, _ in _queries(ctx, q, share)]


__all__: Sequence[str] = (
    "RefAggregate",
    "ReferenceLoss",
    "ReferenceQuery",
    "bounded",
    "loss",
    "release",
)
