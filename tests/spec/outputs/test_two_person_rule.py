"""Spec: which outcome a round's review decisions lead to (the two-person rule).

Two agreeing decisions settle a round; two that disagree call a third reviewer; three settle
by majority, and three different decisions return the request to its author. So an approval
always rests on two approvals by different checkers.
"""

from __future__ import annotations

import pytest

from tre.outputs import RequestState, ReviewDecision
from tre.outputs.rules import THIRD_REVIEW, outcome

A, R, X = ReviewDecision.APPROVE, ReviewDecision.RETURN, ReviewDecision.REJECT

#  decisions in order           outcome
CASES = [
    ((), None),
    ((A,), None),
    ((X,), None),
    ((A, A), RequestState.APPROVED),
    ((R, R), RequestState.RETURNED),
    ((X, X), RequestState.REJECTED),
    ((A, R), THIRD_REVIEW),
    ((A, X), THIRD_REVIEW),
    ((R, X), THIRD_REVIEW),
    ((X, A), THIRD_REVIEW),
    ((A, X, A), RequestState.APPROVED),
    ((A, X, X), RequestState.REJECTED),
    ((A, R, R), RequestState.RETURNED),
    ((R, X, X), RequestState.REJECTED),
    ((R, X, A), RequestState.RETURNED),  # no majority: the author revises
    ((A, X, R), RequestState.RETURNED),
]


@pytest.mark.parametrize(("decisions", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_outcome(decisions: tuple[ReviewDecision, ...], expected: object) -> None:
    assert outcome(list(decisions)) == expected


@pytest.mark.parametrize(("decisions", "expected"), CASES)
def test_an_approval_always_rests_on_two_approvals(
    decisions: tuple[ReviewDecision, ...], expected: object
) -> None:
    if expected is RequestState.APPROVED:
        assert decisions.count(A) >= 2


def test_a_round_has_at_most_three_reviews() -> None:
    with pytest.raises(ValueError, match="at most three"):
        outcome([A, A, X, X])
