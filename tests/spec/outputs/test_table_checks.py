"""Spec: a table's automatic verdict from its counts (tables in, verdicts out), per preset.

Each row of a table is one cell whose contributors are its count. ACRO/SACRO (`acro`):
threshold 10 (n = 10 passes), empty cells disclosive. OpenSAFELY (`opensafely`): threshold 8
("≤ 7 redacted"), zeros allowed. DataSHIELD (`datashield`): threshold 3, zeros allowed.
Blank or text counts are treated as already redacted and not checked.
"""

from __future__ import annotations

import pytest

from tre.disclosure import load_preset
from tre.outputs.checks import COUNTS_ONLY_NOTE, check_table_item
from tre.outputs.files import TableData

#  preset         counts                      status   threshold rows   zero rows
CASES = [
    ("acro", (25, 14, 10), "pass", [], []),
    ("acro", (25, 9, 10), "fail", [1], []),
    ("acro", (25, 0, 10), "fail", [1], [1]),
    ("acro", (1, 2, 3), "fail", [0, 1, 2], []),
    ("opensafely", (8, 100), "pass", [], []),
    ("opensafely", (7, 100), "fail", [0], []),
    ("opensafely", (0, 100), "pass", [], []),
    ("datashield", (3, 0, 2), "fail", [2], []),
    ("acro", (25, None, "[REDACTED]"), "pass", [], []),
]


@pytest.mark.parametrize(("preset", "counts", "status", "threshold", "zero"), CASES)
def test_verdicts_from_counts(
    preset: str,
    counts: tuple[object, ...],
    status: str,
    threshold: list[int],
    zero: list[int],
) -> None:
    table = TableData(("group", "n"), tuple((f"g{i}", c) for i, c in enumerate(counts)))
    result = check_table_item("t.csv", table, load_preset(preset))
    assert result.status.value == status
    assert result.cells.get("threshold", []) == [[r, 1] for r in threshold]
    assert result.cells.get("zero", []) == [[r, 1] for r in zero]
    assert COUNTS_ONLY_NOTE in result.notes
    assert result.report is not None and result.report["parameters"]["policy"] == preset


def test_a_table_without_a_count_column_is_reviewed_by_hand() -> None:
    table = TableData(("group", "mean_cost"), (("a", 1.5), ("b", 2.5)))
    result = check_table_item("t.csv", table, load_preset("acro"))
    assert result.status.value == "review"
    assert "not checked automatically" in result.notes[0]


def test_the_count_column_can_be_named() -> None:
    table = TableData(("group", "people_admitted"), (("a", 3), ("b", 30)))
    result = check_table_item("t.csv", table, load_preset("acro"), count_column="people_admitted")
    assert result.status.value == "fail" and result.cells["threshold"] == [[0, 1]]


def test_huge_counts_are_checked_without_allocating_them() -> None:
    table = TableData(("group", "n"), (("a", 10**12),))
    assert check_table_item("t.csv", table, load_preset("acro")).status.value == "pass"
