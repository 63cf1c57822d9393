"""Chapter 10 — differencing against the project's earlier releases.

A release is the sets of records its published numbers describe (cells and margins). When a
published set of this table contains an earlier one, or sits inside it, their difference is a
group anyone can count; 1..t−1 records fail. ACRO only asks for a manual review.
"""

from __future__ import annotations

from tre.disclosure import Cell, Release, ReleasedSet, Status, check_table, load_preset

from ._tables import verdicts

ACRO = load_preset("acro")


def people(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def cell(row: str, col: str, ids: list[str]) -> Cell:
    return Cell(row, col, [1.0] * len(ids), ids=ids)


# Earlier: everyone in region North, by sex (margins published).
EARLIER = Release.from_cells(
    "2024 table",
    [cell("north", "f", people("f", 40)), cell("north", "m", people("m", 35))],
)


def test_a_nested_table_that_drops_three_records_fails() -> None:
    # Now: the same people aged ≥ 18 — three women fewer. f: 37 vs 40 isolates 3 women.
    now = [cell("north", "f", people("f", 37)), cell("north", "m", people("m", 35))]
    report = check_table(now, statistic="frequency", policy=ACRO, releases=[EARLIER], margins=False)
    assert verdicts(report) == {("north", "f"): "differencing", ("north", "m"): "ok"}
    assert report.parameters["differencing.threshold"] == 10
    # With margins published, the row total (72 vs 75) isolates the same three women, so
    # every cell of the row is flagged.
    with_margins = check_table(now, statistic="frequency", policy=ACRO, releases=[EARLIER])
    assert set(verdicts(with_margins).values()) == {"differencing"}


def test_a_difference_of_exactly_the_threshold_passes() -> None:
    now = [cell("north", "f", people("f", 30)), cell("north", "m", people("m", 35))]
    report = check_table(now, statistic="frequency", policy=ACRO, releases=[EARLIER])
    assert report.status is Status.PASS


def test_a_margin_difference_flags_the_cells_of_that_row() -> None:
    # Earlier: only the region total (75). Now: the row sums to 74 → one person isolated.
    earlier = Release(
        "total", (ReleasedSet("north", frozenset(people("f", 40) + people("m", 35))),)
    )
    now = [cell("north", "f", people("f", 39)), cell("north", "m", people("m", 35))]
    report = check_table(now, statistic="frequency", policy=ACRO, releases=[earlier])
    assert verdicts(report) == {("north", "f"): "differencing", ("north", "m"): "differencing"}


def test_overlapping_but_not_nested_sets_are_not_flagged() -> None:
    now = [
        cell("north", "f", [*people("f", 38), "x1", "x2"]),
        cell("north", "m", people("m", 35)),
    ]
    report = check_table(now, statistic="frequency", policy=ACRO, releases=[EARLIER])
    assert verdicts(report)[("north", "f")] == "ok"


def test_identical_sets_are_not_a_difference_and_no_release_means_no_rule() -> None:
    now = [cell("north", "f", people("f", 40)), cell("north", "m", people("m", 35))]
    assert check_table(now, statistic="frequency", policy=ACRO, releases=[EARLIER]).status is (
        Status.PASS
    )
    assert "differencing" not in check_table(now, statistic="frequency", policy=ACRO).rules_applied
