"""Property: whatever the decisions, an approval or a rejection rests on two checkers' votes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tre.outputs import RequestState, ReviewDecision
from tre.outputs.rules import THIRD_REVIEW, outcome

decisions = st.lists(st.sampled_from(list(ReviewDecision)), min_size=0, max_size=3)


@given(decisions)
def test_outcomes_rest_on_two_votes(votes: list[ReviewDecision]) -> None:
    result = outcome(votes)
    if result is RequestState.APPROVED:
        assert votes.count(ReviewDecision.APPROVE) >= 2
    if result is RequestState.REJECTED:
        assert votes.count(ReviewDecision.REJECT) >= 2
    if len(votes) < 2:
        assert result is None
    if result == THIRD_REVIEW:
        assert len(votes) == 2 and votes[0] != votes[1]
    if len(votes) == 3:
        assert result in (RequestState.APPROVED, RequestState.RETURNED, RequestState.REJECTED)
