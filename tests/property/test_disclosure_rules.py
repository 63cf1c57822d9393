"""Invariant: the vectorised engine gives exactly the verdicts of a plain per-cell reading of
the rules (an oracle written from docs/disclosure.md), for every statistic and random tables."""

from __future__ import annotations

import statistics as pystats

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tre.disclosure import Cell, check_table, load_preset
from tre.disclosure.table import build_table

ACRO = load_preset("acro").model_copy(update={"check_missing_values": True})
STATS = ["frequency", "count", "sum", "mean", "median", "min", "max", "mode", "std"]


def oracle(values: list[float | None], statistic: str) -> tuple[str, ...]:
    p = ACRO
    xs = [v for v in values if v is not None]
    n = len(values) if statistic == "frequency" else len(xs)
    flags: list[str] = []
    if statistic != "std" and (n < p.threshold):
        flags.append("threshold")
    if statistic in ("frequency", "count", "median", "min", "max", "mode") and n == 0:
        flags.append("zero")
    negative = any(x < 0 for x in xs)
    if statistic in ("sum", "mean") and not negative:
        top = [*sorted(xs, reverse=True), 0.0, 0.0]
        total = sum(xs)
        if total > 0 and (top[0] + top[1]) / total >= p.nk.k:  # type: ignore[union-attr]
            flags.append("nk")
        if top[0] > 0 and (total - top[0] - top[1]) / top[0] < p.p_percent.p:  # type: ignore[union-attr]
            flags.append("p_percent")
    if statistic == "std" and n - 1 < p.dof:  # type: ignore[operator]
        flags.append("dof")
    if statistic != "frequency" and len(xs) < len(values):
        flags.append("missing")
    if statistic in ("min", "max") and xs:
        extreme = min(xs) if statistic == "min" else max(xs)
        if xs.count(extreme) < p.threshold:
            flags.append("min_max")
    if statistic == "mode" and xs:
        freq = max(xs.count(x) for x in set(xs))
        if freq / len(xs) >= 1.0 or freq < 2:
            flags.append("mode")
    if statistic in ("sum", "mean") and negative:
        flags.append("negative")
    return tuple(flags)


value = st.one_of(st.none(), st.integers(-3, 60).map(float), st.sampled_from([0.0, 5.0]))
cell_values = st.lists(value, max_size=16)


@settings(max_examples=150, deadline=None)
@given(st.lists(cell_values, min_size=1, max_size=6), st.sampled_from(STATS))
def test_engine_matches_the_per_cell_oracle(
    columns: list[list[float | None]], statistic: str
) -> None:
    cells = [Cell("r", j, vals) for j, vals in enumerate(columns)]
    report = check_table(cells, statistic=statistic, policy=ACRO)
    assert [v.rules for v in report.cells] == [oracle(vals, statistic) for vals in columns]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(-50, 50).map(float), max_size=12), min_size=1, max_size=5))
def test_statistic_values_match_python(columns: list[list[float]]) -> None:
    table = build_table([Cell("r", j, vals) for j, vals in enumerate(columns)])
    for stat, fn in [
        ("sum", sum),
        ("min", min),
        ("max", max),
        ("median", pystats.median),
        ("mode", lambda xs: min(pystats.multimode(xs))),
        ("std", pystats.stdev),
    ]:
        from tre.disclosure import Statistic

        got = table.statistic_values(Statistic(stat))
        for j, xs in enumerate(columns):
            need = 2 if stat == "std" else 1
            if len(xs) < need:
                assert np.isnan(got[j]) or stat == "sum"
            else:
                assert np.isclose(got[j], fn(xs)), (stat, xs)
    top = table.top(3)
    for j, xs in enumerate(columns):
        assert top[j].tolist() == (sorted(xs, reverse=True) + [0.0] * 3)[:3]
