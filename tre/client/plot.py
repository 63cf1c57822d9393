"""Draw query results with their 95% error bars (matplotlib)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tre.client.errors import TREClientError
from tre.client.frames import HW_SUFFIX


def plot(
    df: pl.DataFrame,
    x: str,
    y: str,
    *,
    kind: str = "bar",
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """Plot `y` against `x` with error bars from `<y>_hw95`; returns the matplotlib Axes."""
    for name in (x, y):
        if name not in df.columns:
            raise TREClientError(
                f"the result has no column {name!r}",
                reason="invalid_input",
                status=0,
                hint=f"Columns: {', '.join(df.columns)}.",
            )
    if kind not in ("bar", "point"):
        raise TREClientError(
            f"unknown plot kind {kind!r}",
            reason="invalid_input",
            status=0,
            hint="Use bar or point.",
        )
    import matplotlib.pyplot as plt

    rows = df.select(x, y, *([f"{y}{HW_SUFFIX}"] if f"{y}{HW_SUFFIX}" in df.columns else []))
    rows = rows.filter(pl.col(y).is_not_null())
    labels = [str(v) for v in rows[x].to_list()]
    values = rows[y].cast(pl.Float64).to_list()
    hw_col = f"{y}{HW_SUFFIX}"
    errors = (
        [h if h is not None else 0.0 for h in rows[hw_col].to_list()]
        if hw_col in rows.columns
        else None
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(labels) + 2), 3.5))
    positions = list(range(len(labels)))
    if kind == "bar":
        ax.bar(positions, values, yerr=errors, capsize=3, color="#4c72b0")
    else:
        ax.errorbar(positions, values, yerr=errors, fmt="o", capsize=3, color="#4c72b0")
    ax.set_xticks(positions)
    ax.set_xticklabels(
        labels, rotation=45 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center"
    )
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} (± 95% noise interval)" if errors is not None else y)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax
