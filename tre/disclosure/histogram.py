"""check_histogram: a histogram is a frequency table of its bins.

Bin counts are numpy's `histogram` counts (the last bin is closed, so the maximum is counted;
ACRO's digitize drops it). Each bin gets the threshold and zero rules; when the edges come from
the data (bins given as a number, no range) the outer edges are the data's minimum and maximum,
so the first and last bins also get the min/max rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tre.disclosure.check import make_report, require_policy
from tre.disclosure.model import HistogramReport, Statistic
from tre.disclosure.policy import DisclosurePolicy
from tre.disclosure.rules import Context
from tre.disclosure.rules import threshold as threshold_rule
from tre.disclosure.rules import zero as zero_rule
from tre.disclosure.rules.min_max import RULE as MIN_MAX
from tre.errors import InvalidInput

EDGE_NOTE = "Please check extreme bin edges are not disclosive"


class _BinStats:
    """Bin counts seen as cells (each record is one contribution)."""

    def __init__(self, counts: np.ndarray) -> None:
        self.records = counts
        self.n = counts
        self.n_cells = len(counts)


def _values(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise InvalidInput(
            f"histogram values must be a sequence of numbers, got {type(values).__name__}",
            hint="pass one number (or None for missing) per record",
        )
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        arr = values.astype(np.float64).ravel()
        missing = np.zeros(len(arr), dtype=bool)
    else:
        items = list(values)
        missing = np.array([v is None for v in items], dtype=bool)
        try:
            arr = np.array([0.0 if v is None else v for v in items], dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(
                "a histogram value is not a number", hint="pass numbers, or None for missing"
            ) from None
    bad = ~np.isfinite(arr) & ~missing
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        what = "NaN" if np.isnan(arr[pos]) else "infinite"
        raise InvalidInput(
            f"histogram value #{pos} is {what}",
            hint="pass finite numbers, and None for a missing value",
        )
    return arr[~missing]


def check_histogram(
    values: Sequence[float | None] | np.ndarray,
    bins: int | Sequence[float] | np.ndarray = 10,
    *,
    policy: DisclosurePolicy,
    range: tuple[float, float] | None = None,
) -> HistogramReport:
    """Check the bins of a histogram of these values (None = missing, left out)."""
    require_policy(policy)
    data = _values(values)
    if len(data) == 0:
        raise InvalidInput("the histogram has no values", hint="pass at least one number")
    if isinstance(bins, bool) or not isinstance(bins, int | Sequence | np.ndarray):
        raise InvalidInput(
            f"bins must be a number of bins or a list of edges, got {type(bins).__name__}",
            hint="e.g. bins=10 or bins=[0, 10, 20]",
        )
    try:
        counts, edges = np.histogram(data, bins=bins, range=range)
    except ValueError as exc:
        raise InvalidInput(
            f"bad bins: {exc}", hint="bins must be ≥ 1, or increasing finite edges"
        ) from None
    stats = _BinStats(counts.astype(np.int64))
    ctx = Context(stats, Statistic.FREQUENCY, policy)
    rules = [r for r in (threshold_rule.RULE, zero_rule.RULE) if r.enabled(policy)]
    columns = [r.flag(ctx) for r in rules]
    data_edges = isinstance(bins, int) and range is None
    if data_edges and policy.min_max is not None:
        # Outer edges are the data's min and max: one record's values unless shared.
        extremes = np.zeros(len(counts), dtype=bool)
        holders = policy.min_max_holders
        extremes[0] = int((data == edges[0]).sum()) < holders
        extremes[-1] |= int((data == edges[-1]).sum()) < holders
        rules.append(MIN_MAX)
        columns.append(extremes)
    flags = np.column_stack(columns) if columns else np.zeros((len(counts), 0), dtype=bool)
    keys = tuple(
        (i, (float(edges[i]), float(edges[i + 1]))) for i in np.arange(len(counts)).tolist()
    )
    report = make_report(
        kind="histogram",
        statistic=Statistic.FREQUENCY,
        policy=policy,
        rules=tuple(rules),
        flags=flags,
        keys=keys,
        notes=(EDGE_NOTE,),
    )
    return HistogramReport(
        status=report.status,
        counts=tuple(int(c) for c in counts),
        edges=tuple(float(e) for e in edges),
        report=report,
    )
