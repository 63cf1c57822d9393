"""Server answers as polars DataFrames (`.to_pandas()` gives pandas)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from tre.wire.budgets import BudgetHistoryOut, ProjectBudgetsOut
from tre.wire.datasets import DatasetDetailOut, DatasetOut

HW_SUFFIX = "_hw95"


def result_frame(answer: Mapping[str, Any]) -> pl.DataFrame:
    """A query answer: key columns, each aggregate, and `<aggregate>_hw95` after it.

    The half-width is that of a 95% confidence interval for the noise (value ± half-width);
    it is null where the engine cannot state one (averages and quantiles).
    """
    columns: Sequence[Mapping[str, Any]] = answer["columns"]
    rows: Sequence[Sequence[Any]] = answer["rows"]
    hws: Sequence[Sequence[Any]] = answer["half_widths_95"]
    data: dict[str, pl.Series] = {}
    for i, c in enumerate(columns):
        name = str(c["name"])
        data[name] = pl.Series(name, [r[i] for r in rows], strict=False)
        if c["role"] == "aggregate":
            hw = f"{name}{HW_SUFFIX}"
            data[hw] = pl.Series(hw, [h[i] for h in hws], dtype=pl.Float64, strict=False)
    return pl.DataFrame(list(data.values()))


def datasets_frame(items: Sequence[DatasetOut]) -> pl.DataFrame:
    """The catalogue: one row per dataset."""
    return pl.DataFrame(
        {
            "name": [d.name for d in items],
            "title": [d.title for d in items],
            "latest_version": [d.latest_version for d in items],
            "rows": [d.row_count for d in items],
            "people": [d.person_count for d in items],
            "rows_per_person_limit": [d.contribution_limit for d in items],
        },
        schema_overrides={
            "latest_version": pl.Int64,
            "rows": pl.Int64,
            "people": pl.Int64,
            "rows_per_person_limit": pl.Int64,
        },
    )


def schema_frame(detail: DatasetDetailOut) -> pl.DataFrame:
    """A dataset's columns and their public metadata (types, bounds, categories)."""
    cols = [c for c in detail.columns if c.column_class != "rank"]
    return pl.DataFrame(
        {
            "column": [c.name for c in cols],
            "class": [c.column_class for c in cols],
            "type": [c.type for c in cols],
            "nullable": [c.nullable for c in cols],
            "lower": [c.bounds[0] if c.bounds else None for c in cols],
            "upper": [c.bounds[1] if c.bounds else None for c in cols],
            "categories": [", ".join(c.categories) if c.categories else None for c in cols],
            "group_by": [c.group_by for c in cols],
            "description": [c.description for c in cols],
        },
        schema_overrides={"lower": pl.Float64, "upper": pl.Float64},
    )


def budget_frame(budgets: ProjectBudgetsOut) -> pl.DataFrame:
    """A project's budget per dataset, in ε (at the shown δ) and in ρ."""
    ds = budgets.datasets
    return pl.DataFrame(
        {
            "dataset": [a.dataset for a in ds],
            "epsilon_allowed": [a.allowed.epsilon for a in ds],
            "epsilon_spent": [a.spent.epsilon for a in ds],
            "epsilon_remaining": [a.remaining.epsilon for a in ds],
            "rho_allowed": [float(a.allowed.rho) for a in ds],
            "rho_spent": [float(a.spent.rho) for a in ds],
            "rho_reserved": [float(a.reserved.rho) for a in ds],
            "rho_remaining": [float(a.remaining.rho) for a in ds],
            "valid_until": [a.valid_until for a in ds],
        },
        schema_overrides={
            "epsilon_allowed": pl.Float64,
            "epsilon_spent": pl.Float64,
            "epsilon_remaining": pl.Float64,
            "rho_allowed": pl.Float64,
            "rho_spent": pl.Float64,
            "rho_reserved": pl.Float64,
            "rho_remaining": pl.Float64,
            "valid_until": pl.Date,
        },
    )


def history_frame(history: BudgetHistoryOut) -> pl.DataFrame:
    """The project's budget reservations, one row per reservation and dataset, newest first."""
    rows: list[dict[str, Any]] = []
    for r in history.reservations:
        for dataset, held in sorted(r.reserved.items()):
            spent = r.committed.get(dataset) if r.committed else None
            rows.append(
                {
                    "reservation": r.id,
                    "state": r.state,
                    "created_at": r.created_at,
                    "settled_at": r.settled_at,
                    "dataset": dataset,
                    "rho_reserved": float(held.rho),
                    "rho_spent": float(spent.rho) if spent is not None else None,
                }
            )
    schema: dict[str, Any] = {
        "reservation": pl.Utf8,
        "state": pl.Utf8,
        "created_at": pl.Datetime("us", "UTC"),
        "settled_at": pl.Datetime("us", "UTC"),
        "dataset": pl.Utf8,
        "rho_reserved": pl.Float64,
        "rho_spent": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
