"""Stage 5, protect: noise from OpenDP on the exact bounded aggregates; keys public or τ-gated.

Public keys are all released (missing groups are zeros, extra ones dropped); data-derived keys
pass only when their noisy people count reaches τ. Every cell gets its 95% half-width.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tre.privacy import mechanisms
from tre.query.model import AggKind, NoKeys, PublicKeys, Scalar, ThresholdKeys
from tre.query.plan import MeasureKind, Measurement, Plan


@dataclass(frozen=True)
class Cell:
    """One released number and its 95% half-width (None where no interval is known)."""

    value: float | int | None
    half_width: float | None


@dataclass(frozen=True)
class Protected:
    """Released rows: group key values and cells, in output order."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Scalar | Cell, ...], ...]


def _key(row: tuple[Any, ...]) -> str:
    return json.dumps(
        [v if not isinstance(v, float) or not v.is_integer() else int(v) for v in row], default=str
    )


def protect(plan: Plan, exact: tuple[tuple[tuple[Any, ...], ...], ...]) -> Protected:
    """Release the plan's measurements over the exact results `exact` (main, then quantiles)."""
    v = plan.query
    nk = len(v.key_sqls)
    main_rows = exact[0] if plan.main_sql else ()
    q_rows = exact[1:] if plan.main_sql else exact
    main_cols = [m.column for m in plan.measurements if m.kind is not MeasureKind.QUANTILE]

    # The universe of key rows that noise is added to.
    by_key: dict[str, tuple[Scalar, ...]] = {}
    exact_by_key: dict[str, dict[str, int]] = {}
    for r in main_rows:
        k = _key(r[:nk])
        by_key.setdefault(k, tuple(r[:nk]))
        exact_by_key[k] = {c: int(x or 0) for c, x in zip(main_cols, r[nk:], strict=True)}
    hist: list[dict[str, tuple[list[int], list[int]]]] = []
    qms = [m for m in plan.measurements if m.kind is MeasureKind.QUANTILE]
    for m, rows in zip(qms, q_rows, strict=True):
        per: dict[str, tuple[list[int], list[int]]] = {}
        n = len(m.candidates)
        for r in rows:
            k = _key(r[:nk])
            by_key.setdefault(k, tuple(r[:nk]))
            bins, eq = per.setdefault(k, ([0] * (n + 1), [0] * n))
            i, is_eq, cnt = int(r[nk]), bool(r[nk + 1]), int(r[nk + 2])
            if is_eq and i < n:
                eq[i] += cnt
            else:
                bins[min(i + 1, n)] += cnt
        hist.append(per)

    if isinstance(v.keys, PublicKeys):
        universe = [(_key(row), tuple(row)) for row in v.keys.rows]
    elif isinstance(v.keys, NoKeys):
        universe = [("[]", ())]
    else:
        universe = sorted(by_key.items())

    noisy: dict[str, dict[str, int]] = {}
    cells: dict[str, Measurement] = {}
    released_keys = [k for k, _ in universe]
    for m in plan.measurements:
        cells[m.column] = m
        if m.kind is MeasureKind.GAUSSIAN:
            vals = [exact_by_key.get(k, {}).get(m.column, 0) for k, _ in universe]
            out = mechanisms.add_gaussian(vals, m.scale)
            noisy[m.column] = dict(zip(released_keys, out, strict=True))
        elif m.kind is MeasureKind.THRESHOLD:
            counts = {k: exact_by_key.get(k, {}).get(m.column, 0) for k, _ in universe}
            assert m.threshold is not None
            noisy[m.column] = mechanisms.apply_threshold(counts, m.scale, m.threshold)
    if isinstance(v.keys, ThresholdKeys):
        tm = next(m for m in plan.measurements if m.kind is MeasureKind.THRESHOLD)
        passed = noisy[tm.column]
        universe = [(k, row) for k, row in universe if k in passed]

    quantiles: list[dict[str, float]] = []
    for m, per in zip(qms, hist, strict=True):
        picked: dict[str, float] = {}
        n = len(m.candidates)
        for k, _ in universe:
            bins, eq = per.get(k, ([0] * (n + 1), [0] * n))
            q = mechanisms.pick_quantile(m.candidates, m.alpha or 0.5, bins, eq, m.scale)
            picked[k] = q / m.scale_factor
        quantiles.append(picked)

    out_rows: list[tuple[Scalar | Cell, ...]] = []
    for k, key_row in universe:
        agg_cells: list[Cell] = []
        qi = 0
        for i, a in enumerate(v.aggregates):
            col = f"__tre_a{i}"
            if a.kind is AggKind.QUANTILE:
                agg_cells.append(Cell(quantiles[qi][k], None))
                qi += 1
                continue
            m = cells[col]
            val = noisy[col].get(k, 0)
            hw = m.half_width
            if a.kind in (AggKind.ROWS, AggKind.PEOPLE, AggKind.COUNT):
                agg_cells.append(Cell(int(val), hw))
            elif a.kind is AggKind.SUM:
                agg_cells.append(Cell(val / a.scale, (hw or 0) / a.scale))
            else:
                mn = cells[f"{col}_n"]
                n_val = noisy[f"{col}_n"].get(k, 0)
                total = val / a.scale
                denom = max(n_val, 1)
                avg = (
                    min(max(total / denom, a.bounds[0]), a.bounds[1]) if a.bounds else total / denom
                )
                # Delta-method interval for a ratio of two noisy values (approximate).
                hw_avg = ((hw or 0) / a.scale + abs(avg) * (mn.half_width or 0)) / denom
                agg_cells.append(Cell(avg, hw_avg))
        out_row: list[Scalar | Cell] = []
        for o in v.outputs:
            out_row.append(_clean(key_row[o.index]) if o.role == "key" else agg_cells[o.index])
        out_rows.append(tuple(out_row))
    for idx, desc in reversed(v.order_by):
        out_rows.sort(key=_by(idx), reverse=desc)
    return Protected(columns=tuple(o.name for o in v.outputs), rows=tuple(out_rows))


def _clean(v: Any) -> Scalar:
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    return str(v)


def _by(idx: int) -> Callable[[tuple[Scalar | Cell, ...]], tuple[int, Any]]:
    return lambda row: _sort_key(row[idx])


def _sort_key(v: Scalar | Cell) -> tuple[int, Any]:
    x = v.value if isinstance(v, Cell) else v
    if x is None:
        return (1, "")
    return (0, x if isinstance(x, int | float) else str(x))
