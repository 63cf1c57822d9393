"""Stage 3, plan: the SQL tre runs (generated, never the researcher's text) and the DP accounting.

The aggregated relation holds at most `bound` rows per person (`_tre_rank <= k` per dataset,
multiplied across joins on the pseudonym), values are clamped to policy bounds and scaled to
integers, so every aggregate's sensitivity follows from policy alone. The budget ρ is split
evenly over the noisy measurements; each measurement's scale comes from `tre.privacy`, which
asks OpenDP for the loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from tre.privacy import mechanisms
from tre.query.errors import QueryRefused
from tre.query.model import (
    AggKind,
    NoKeys,
    PublicKeys,
    ThresholdKeys,
    ValidatedQuery,
)

MAX_QUANTILE_CANDIDATES = 1000
# Each quantile cell is a noisy max over up to 1,000 scores in the service process (~2 ms).
MAX_QUANTILE_CELLS = 1000
DEFAULT_THRESHOLD_DELTA = 1e-7


class MeasureKind(StrEnum):
    """How one vector of exact aggregates is protected."""

    GAUSSIAN = "gaussian"  # discrete Gaussian on integers (zCDP)
    THRESHOLD = "threshold"  # Gaussian + τ on counts of people, for keys from the data
    QUANTILE = "quantile"  # noisy max over OpenDP quantile scores


@dataclass(frozen=True)
class Measurement:
    """One noisy release: its column in the exact result, sensitivity and noise parameters."""

    kind: MeasureKind
    column: str  # column of the exact result (or the quantile statement's name)
    l2: float  # L2 sensitivity (gaussian / threshold), d_in rows for quantiles
    rho: float  # ρ this measurement may spend
    scale: float
    half_width: float | None  # 95% half-width in the measured (scaled) units
    scale_factor: int = 1  # divide released values by this (fixed-point sums)
    threshold: int | None = None
    delta: float = 0.0
    l0: int = 0
    linf: int = 0
    candidates: tuple[int, ...] = ()
    alpha: float | None = None


@dataclass(frozen=True)
class Plan:
    """Everything needed to execute and protect one query; holds no data."""

    query: ValidatedQuery
    main_sql: str
    quantile_sqls: tuple[str, ...]
    measurements: tuple[Measurement, ...]
    rho: float  # ρ spent according to OpenDP's maps (≤ the requested ρ)
    delta: float
    description: tuple[str, ...]
    requested_rho: float = 0.0  # the ρ the researcher asked for (the cache rule compares it)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split_from(v: ValidatedQuery) -> tuple[str, str]:
    prefix, _, from_sql = v.from_sql.partition("\x00")
    return prefix, from_sql


def _select_core(v: ValidatedQuery, items: list[str], extra_where: str | None = None) -> str:
    _, from_sql = _split_from(v)
    keys = [f"{k} AS __tre_k{i}" for i, k in enumerate(v.key_sqls)]
    sql = f"SELECT {', '.join([*keys, *items])} FROM {from_sql}"
    conds = [c for c in (v.where_sql, extra_where) if c]
    if conds:
        sql += " WHERE " + " AND ".join(f"({c})" for c in conds)
    return sql


def _wrap(v: ValidatedQuery, inner: str, group_cols: list[str]) -> str:
    prefix, _ = _split_from(v)
    if group_cols:
        inner += " GROUP BY " + ", ".join(group_cols)
    sql = f"{prefix}SELECT * FROM ({inner}) AS __tre_g"
    if v.having_sql:
        sql += f" WHERE {v.having_sql}"
    return sql


def _candidates(lo: float, hi: float, scale: int) -> tuple[int, ...]:
    lo_s, hi_s = round(lo * scale), round(hi * scale)
    step = max(1, math.ceil((hi_s - lo_s) / (MAX_QUANTILE_CANDIDATES - 1)))
    out = list(range(lo_s, hi_s + 1, step))
    if out[-1] != hi_s:
        out.append(hi_s)
    return tuple(out)


def plan(
    v: ValidatedQuery, *, rho: float, threshold_delta: float = DEFAULT_THRESHOLD_DELTA
) -> Plan:
    """Generate tre's SQL for the validated query and fix the noise of every measurement."""
    if rho <= 0:
        raise ValueError("rho must be positive")
    bound = v.bound
    if isinstance(v.keys, PublicKeys):
        groups = max(1, len(v.keys.rows))
    elif isinstance(v.keys, NoKeys):
        groups = 1
    else:
        groups = bound
    touch = min(bound, groups)  # groups one person can appear in
    n_quantiles = sum(a.kind is AggKind.QUANTILE for a in v.aggregates)
    if n_quantiles and isinstance(v.keys, ThresholdKeys):
        raise QueryRefused(
            "quantiles (MEDIAN, quantile_*, MIN/MAX) are answered only for public group keys",
            reason="quantile_needs_public_keys",
            hint="Group by columns with public categories, a CASE with literal results or a "
            "binning such as floor(x / 10) * 10 of a bounded column.",
        )
    if n_quantiles * groups > MAX_QUANTILE_CELLS:
        raise QueryRefused(
            f"the query asks for {n_quantiles * groups} quantile cells; at most "
            f"{MAX_QUANTILE_CELLS} are answered in one query",
            reason="too_many_groups",
            hint="Group quantiles by fewer or coarser keys, or ask for fewer quantiles.",
        )

    items: list[str] = []
    specs: list[tuple[MeasureKind, str, float, int, dict[str, object]]] = []
    quantile_sqls: list[str] = []
    words: list[str] = []
    people_col = None
    for i, a in enumerate(v.aggregates):
        col = f"__tre_a{i}"
        if a.kind is AggKind.ROWS:
            items.append(f"COUNT(*) AS {col}")
            specs.append((MeasureKind.GAUSSIAN, col, float(bound), 1, {}))
        elif a.kind is AggKind.PEOPLE:
            items.append(f"COUNT(DISTINCT {a.sql_value}) AS {col}")
            specs.append((MeasureKind.GAUSSIAN, col, math.sqrt(touch), 1, {}))
            people_col = people_col or col
        elif a.kind is AggKind.COUNT:
            items.append(f"COUNT({a.sql_value}) AS {col}")
            specs.append((MeasureKind.GAUSSIAN, col, float(bound), 1, {}))
        elif a.kind in (AggKind.SUM, AggKind.AVG):
            assert a.bounds is not None
            m = max(abs(round(a.bounds[0] * a.scale)), abs(round(a.bounds[1] * a.scale)))
            items.append(f"SUM({a.sql_value}) AS {col}")
            specs.append((MeasureKind.GAUSSIAN, col, float(bound * m), a.scale, {}))
            if a.kind is AggKind.AVG:
                items.append(f"COUNT({a.sql_value}) AS {col}_n")
                specs.append((MeasureKind.GAUSSIAN, f"{col}_n", float(bound), 1, {}))
        else:
            assert a.bounds is not None and a.alpha is not None
            cands = _candidates(a.bounds[0], a.bounds[1], a.scale)
            lo_s = cands[0]
            step = cands[1] - cands[0] if len(cands) > 1 else 1
            value = f"({a.sql_value} - {lo_s})"
            inner = _select_core(
                v,
                [f"{value} // {step} AS __tre_i", f"({value} % {step} = 0) AS __tre_eq"],
                extra_where=f"{a.sql_value} IS NOT NULL",
            )
            keys = [f"__tre_k{j}" for j in range(len(v.key_sqls))]
            grouped = f"SELECT {', '.join([*keys, '__tre_i', '__tre_eq', 'COUNT(*) AS __tre_n'])} FROM ({inner}) AS __tre_r"
            quantile_sqls.append(_wrap(v, grouped, [*keys, "__tre_i", "__tre_eq"]))
            specs.append(
                (
                    MeasureKind.QUANTILE,
                    f"q{len(quantile_sqls) - 1}",
                    float(bound),
                    a.scale,
                    {"candidates": cands, "alpha": a.alpha},
                )
            )
        words.append(
            f"{a.output} = {a.label}"
            + (f" of values clamped to [{a.bounds[0]:g}, {a.bounds[1]:g}]" if a.bounds else "")
        )
    threshold = isinstance(v.keys, ThresholdKeys)
    if threshold:
        if people_col is None:
            if v.person_sql:
                items.append(f"COUNT(DISTINCT {v.person_sql}) AS __tre_people")
                specs.append(
                    (
                        MeasureKind.THRESHOLD,
                        "__tre_people",
                        math.sqrt(bound),
                        1,
                        {"l0": bound, "linf": 1},
                    )
                )
            else:
                items.append("COUNT(*) AS __tre_people")
                specs.append(
                    (
                        MeasureKind.THRESHOLD,
                        "__tre_people",
                        float(bound),
                        1,
                        {"l0": bound, "linf": bound},
                    )
                )
        else:
            # The released people count doubles as the thresholded count.
            idx = next(j for j, s in enumerate(specs) if s[1] == people_col)
            specs[idx] = (
                MeasureKind.THRESHOLD,
                people_col,
                math.sqrt(bound),
                1,
                {"l0": bound, "linf": 1},
            )

    share = rho / len(specs)
    measurements: list[Measurement] = []
    spent_rho = 0.0
    spent_delta = 0.0
    for kind, col, l2, factor, extra in specs:
        if kind is MeasureKind.GAUSSIAN:
            scale = mechanisms.gaussian_scale_for(l2, share)
            r = mechanisms.gaussian_rho(l2, scale)
            measurements.append(
                Measurement(kind, col, l2, r, scale, mechanisms.gaussian_half_width(scale), factor)
            )
            spent_rho += r
        elif kind is MeasureKind.THRESHOLD:
            l0, linf = int(extra["l0"]), int(extra["linf"])  # type: ignore[call-overload]
            scale, tau = mechanisms.threshold_params(
                l0=l0, l2=l2, linf=linf, rho=share, delta=threshold_delta
            )
            r, d = mechanisms.threshold_cost(l0=l0, l2=l2, linf=linf, scale=scale, threshold=tau)
            measurements.append(
                Measurement(
                    kind,
                    col,
                    l2,
                    r,
                    scale,
                    mechanisms.gaussian_half_width(scale),
                    factor,
                    threshold=tau,
                    delta=d,
                    l0=l0,
                    linf=linf,
                )
            )
            spent_rho += r
            spent_delta += d
        else:
            qc = extra["candidates"]
            assert isinstance(qc, tuple)
            alpha = float(extra["alpha"])  # type: ignore[arg-type]
            scale = mechanisms.quantile_scale_for(qc, alpha, int(l2), share)
            r = mechanisms.quantile_rho(qc, alpha, int(l2), scale)
            measurements.append(
                Measurement(kind, col, l2, r, scale, None, factor, candidates=qc, alpha=alpha)
            )
            spent_rho += r
    main_items = [it for it in items]
    keys = [f"__tre_k{j}" for j in range(len(v.key_sqls))]
    main_sql = ""
    if main_items:
        main_sql = _wrap(v, _select_core(v, main_items), [str(i + 1) for i in range(len(keys))])
    description = _describe(v, words, bound, threshold, measurements)
    return Plan(
        query=v,
        main_sql=main_sql,
        quantile_sqls=tuple(quantile_sqls),
        measurements=tuple(measurements),
        rho=spent_rho,
        delta=spent_delta,
        description=description,
        requested_rho=rho,
    )


def _describe(
    v: ValidatedQuery, words: list[str], bound: int, threshold: bool, ms: list[Measurement]
) -> tuple[str, ...]:
    data = [vs for vs in v.views if not vs.is_lookup]
    out = [
        "read "
        + ", ".join(
            f"{vs.dataset} v{vs.version} (at most {vs.limit} rows per person)" for vs in data
        ),
    ]
    if len(data) > 1 or bound != (data[0].limit if data else bound):
        out.append(f"join on the person pseudonym: at most {bound} rows per person after joining")
    lookups = [vs.dataset.removeprefix("lookup:") for vs in v.views if vs.is_lookup]
    if lookups:
        out.append(
            f"join the public lookup table(s) {', '.join(lookups)} on their unique key: "
            "rows per person unchanged"
        )
    if v.where_sql:
        out.append("filter rows (WHERE)")
    if isinstance(v.keys, PublicKeys):
        out.append(
            f"group by {', '.join(v.key_names)}: {len(v.keys.rows)} public keys, all released (empty groups included)"
        )
    elif isinstance(v.keys, ThresholdKeys):
        t = next(m for m in ms if m.kind is MeasureKind.THRESHOLD)
        out.append(
            f"group by {', '.join(v.key_names)}: keys from the data, released only when a noisy count of people reaches τ = {t.threshold}"
        )
    out.extend(words)
    out.append(
        f"noise: discrete Gaussian (counts, sums) and noisy-max quantiles from OpenDP; {len(ms)} measurement(s) share ρ"
    )
    return tuple(out)
