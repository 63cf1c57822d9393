"""Reports: worst status wins, verdicts materialise in input order, JSON has no values."""

from __future__ import annotations

import json

from tre.disclosure import Cell, Status, check_table, load_preset
from tre.disclosure.model import worst

ACRO = load_preset("acro").model_copy(update={"check_missing_values": True})


def test_worst_status_wins() -> None:
    assert worst([]) is Status.PASS
    assert worst([Status.PASS, Status.REVIEW]) is Status.REVIEW
    assert worst([Status.REVIEW, Status.FAIL, Status.PASS]) is Status.FAIL


def test_review_alone_gives_review_and_fail_beats_it() -> None:
    review_only = [Cell("x", "a", [5.0] * 12 + [None])]
    assert check_table(review_only, statistic="mean", policy=ACRO).status is Status.REVIEW
    both = [*review_only, Cell("x", "b", [5.0] * 3)]
    report = check_table(both, statistic="mean", policy=ACRO)
    assert report.status is Status.FAIL
    assert [c.status for c in report.cells] == [Status.REVIEW, Status.FAIL]


def test_verdicts_keep_input_order_and_json_has_no_values() -> None:
    cells = [
        Cell(r, c, [987.5] * n)
        for r, c, n in [("y", 2, 3), ("x", 1, 20), ("y", 1, 20), ("x", 2, 20)]
    ]
    report = check_table(cells, statistic="sum", policy=ACRO)
    assert [(v.row_key, v.col_key) for v in report.cells] == [
        ("y", 2),
        ("x", 1),
        ("y", 1),
        ("x", 2),
    ]
    text = json.dumps(report.to_dict())
    assert "987" not in text
    assert report.verdict("y", 2).rules == ("threshold",)
