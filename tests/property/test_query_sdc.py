"""SDC mode sends the disclosure engine a rebuilt contribution vector per cell (count, total,
top contributions, smallest value), not every person's contribution. Its verdicts must equal
the verdicts on the true per-person list, for any contributions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tre.disclosure import Cell, check_table
from tre.query.sdc import TOP_CONTRIBUTIONS, _contributions, sdc_policy

POLICY = sdc_policy("acro")

person = st.one_of(st.none(), st.integers(min_value=-50, max_value=10**7))
cell = st.lists(person, min_size=0, max_size=40)


def _summary(values: list[int | None]) -> list[int | None] | object:
    present = [v for v in values if v is not None]
    top = sorted(present, reverse=True)[:TOP_CONTRIBUTIONS]
    return _contributions(
        len(present),
        len(values) - len(present),
        sum(present),
        top,
        min(present) if present else None,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(cell, min_size=1, max_size=6), st.booleans())
def test_verdicts_on_the_summary_equal_verdicts_on_every_contribution(
    table: list[list[int | None]], missing_checked: bool
) -> None:
    policy = POLICY.model_copy(update={"check_missing_values": missing_checked})
    full = [Cell(i, "c", values) for i, values in enumerate(table)]
    summary = [Cell(i, "c", _summary(values)) for i, values in enumerate(table)]  # type: ignore[arg-type]
    a = check_table(full, statistic="sum", policy=policy)
    b = check_table(summary, statistic="sum", policy=policy)
    assert [(v.status, v.rules) for v in a.cells] == [(v.status, v.rules) for v in b.cells]


@settings(max_examples=200, deadline=None)
@given(cell)
def test_the_summary_keeps_count_total_and_top_values(values: list[int | None]) -> None:
    present = [v for v in values if v is not None]
    out = list(_summary(values))  # type: ignore[call-overload]
    got = [v for v in out if v is not None]
    assert len(got) == len(present) and len(out) == len(values)
    assert sum(got) == sum(present)
    k = min(len(present), TOP_CONTRIBUTIONS)
    assert sorted(got, reverse=True)[:k] == sorted(present, reverse=True)[:k]
    assert (min(got) < 0) == (min(present) < 0) if present else got == []
