"""Automatic disclosure checks of output items, with `tre.disclosure` and the request's preset.

* A table is a frequency table of its count column: each row is one cell whose contributors
  are that row's count (threshold and zero rules) — unless it is the result of a
  differentially private query (verified by the caller): its counts carry noise, are not
  record counts, may be negative, and the noise is what protects them. Without per-cell contributions nothing
  else can be checked — the verdict says so — and when the table came from a tre query its
  own disclosure report rides along and its status counts too (worst wins).
* A figure is checked through the table it was drawn from (which must be in the request).
* A model summary is checked for residual degrees of freedom when n_obs and rank are given.
* Free text, and anything that cannot be checked, gets `review` (ACRO's custom outputs).
An exception request never changes a status (as in ACRO): checkers weigh it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tre.disclosure import Cell, DisclosurePolicy, check_regression, check_table
from tre.errors import InvalidInput
from tre.outputs.files import TableData
from tre.outputs.types import CheckResult, CheckStatus, Provenance

COUNT_NAMES = ("count", "n", "freq", "frequency", "records", "people", "n_people", "total")
COUNTS_ONLY_NOTE = (
    "checked on its counts only: the table carries no per-cell contributions, so dominance "
    "(n,k), p% and the other magnitude rules could not be applied; output checkers judge those"
)
TEXT_NOTE = "free text is not checked automatically: output checkers review it by hand"
DP_SKIPPED_NOTE = (
    "the count-based SDC rules (threshold, zero) were not applied: noisy counts say nothing "
    "certain about the records behind a cell, and may be negative"
)
DP_UNVERIFIED_NOTE = (
    "the file says it is a differentially private query result, but no DP query with its id "
    "was answered for this project: its counts were checked as record counts"
)
_ORDER = (CheckStatus.PASS, CheckStatus.REVIEW, CheckStatus.FAIL)


def worst(*statuses: CheckStatus) -> CheckStatus:
    """The most severe of the statuses (fail > review > pass)."""
    return max(statuses, key=_ORDER.index, default=CheckStatus.PASS)


def find_count_column(table: TableData, requested: str | None) -> str | None:
    """The column holding each row's number of contributors: the one named, or a usual name."""
    if requested is not None:
        if requested not in table.columns:
            raise InvalidInput(
                f"count column {requested!r} is not a column of the table",
                reason="bad_count_column",
                hint=f"The columns are: {', '.join(table.columns)}.",
            )
        return requested
    lowered = {c.lower(): c for c in table.columns}
    for name in COUNT_NAMES:
        if name in lowered:
            return lowered[name]
    return None


def dp_note(rho: float) -> str:
    """The verdict's note for a verified differentially private query result."""
    return (
        f"differentially private: protected by noise, cost ρ={rho:g}; counts are not record counts"
    )


def _count(name: str, value: Any, row: int, column: str, hint: str) -> int | None:
    """A row's count; None when the cell is already redacted (blank or a marker text)."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(
            f"{name}: column {column!r}, row {row}: a count must be a whole number",
            reason="bad_count",
        )
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    # Integers are compared as integers: float() of a huge count would overflow.
    if value < 0 or (isinstance(value, float) and not value.is_integer()):
        raise InvalidInput(
            f"{name}: column {column!r}, row {row}: a count must be a whole number ≥ 0",
            reason="bad_count",
            hint=hint,
        )
    return int(value)


def check_table_item(
    name: str,
    table: TableData,
    policy: DisclosurePolicy,
    *,
    count_column: str | None = None,
    provenance: Provenance | None = None,
    dp_rho: float | None = None,
) -> CheckResult:
    """Check a table on its count column; fold in the query's own report if it has one.

    `dp_rho` is the privacy cost of the DP query the table came from, given by the caller only
    once it has verified that provenance (the file's own word is not enough): such a table's
    counts carry noise, so the count-based rules — and the refusal of negative counts — do
    not apply to it.
    """
    notes: list[str] = []
    status = CheckStatus.PASS
    claims_dp = provenance is not None and provenance.mode == "dp"
    if provenance is not None and provenance.disclosure is not None:
        carried = str(provenance.disclosure.get("status", "review"))
        carried_status = CheckStatus(carried) if carried in _ORDER else CheckStatus.REVIEW
        status = worst(status, carried_status)
        notes.append(f"the query engine's disclosure report rides along (status {carried})")
    column = find_count_column(table, count_column)
    if dp_rho is not None:
        return CheckResult(status=status, notes=(dp_note(dp_rho), DP_SKIPPED_NOTE, *notes))
    if claims_dp:
        notes.append(DP_UNVERIFIED_NOTE)
    if column is None:
        notes.append(
            "no count column (name one, e.g. 'n' or 'count'): the table was not checked "
            "automatically; output checkers check it by hand"
        )
        return CheckResult(status=worst(status, CheckStatus.REVIEW), notes=tuple(notes))
    col_index = table.columns.index(column)
    # Only n's relation to the threshold matters to the frequency rules: capping the
    # placeholder contributions keeps memory bounded whatever the counts are.
    cap = policy.threshold + 1
    count_hint = (
        "Counts are numbers of records or people. Noisy counts are accepted only from a "
        "differentially private query tre answered for this project (its result JSON)."
        if claims_dp
        else "Counts are numbers of records or people."
    )
    cells: list[Cell] = []
    positions: list[int] = []
    redacted = 0
    for i, row in enumerate(table.rows):
        n = _count(name, row[col_index], i + 1, column, count_hint)
        if n is None:
            redacted += 1
            continue
        cells.append(Cell(i, column, np.zeros(min(n, cap), dtype=np.int8)))
        positions.append(i)
    if redacted:
        notes.append(f"{redacted} redacted count(s) (blank or text) were not checked")
    if not cells:
        notes.append("no counts to check")
        return CheckResult(status=worst(status, CheckStatus.REVIEW), notes=tuple(notes))
    report = check_table(cells, statistic="frequency", policy=policy, margins=False)
    flagged: dict[str, list[list[int]]] = {}
    for verdict in report.cells:
        for rule in verdict.rules:
            flagged.setdefault(rule, []).append([_row(verdict.row_key), col_index])
    notes.insert(0, COUNTS_ONLY_NOTE)
    notes.extend(report.notes)
    return CheckResult(
        status=worst(status, CheckStatus(report.status.value)),
        notes=tuple(notes),
        summary={k: int(v) for k, v in report.summary.items()},
        cells=flagged,
        report=report.to_dict(),
    )


def _row(key: object) -> int:
    """The row position a cell was keyed by (check_table_item keys cells by row index)."""
    assert isinstance(key, int)
    return key


def check_figure_item(underlying_name: str, underlying: CheckResult) -> CheckResult:
    """A figure's verdict is its underlying table's, with a note for the checkers."""
    return CheckResult(
        status=underlying.status,
        notes=(
            f"checked through its underlying table {underlying_name!r}",
            "Please check extreme values and bin edges shown in the figure are not disclosive",
        ),
        summary=underlying.summary,
    )


def check_model_item(
    policy: DisclosurePolicy, *, n_obs: int | None = None, rank: int | None = None
) -> CheckResult:
    """Residual degrees of freedom of a model summary, when its n_obs and rank are given."""
    if n_obs is None or rank is None:
        return CheckResult(
            status=CheckStatus.REVIEW,
            notes=("no n_obs and rank given: residual degrees of freedom not checked",),
        )
    report = check_regression(policy=policy, n_obs=n_obs, rank=rank)
    return CheckResult(
        status=CheckStatus(report.status.value),
        notes=(f"residual degrees of freedom {report.dof}", *report.notes),
        summary={rule: 1 for rule in report.rules},
        report={
            "kind": "regression",
            "status": report.status.value,
            "dof": report.dof,
            "n_obs": report.n_obs,
            "rank": report.rank,
            "rules": list(report.rules),
            "parameters": dict(report.parameters),
            "notes": list(report.notes),
        },
    )


def check_text_item() -> CheckResult:
    """Free text: always reviewed by hand."""
    return CheckResult(status=CheckStatus.REVIEW, notes=(TEXT_NOTE,))
