"""The two-person rule as a pure function: which outcome a round's decisions lead to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tre.outputs.types import RequestState, ReviewDecision

THIRD_REVIEW: Literal["third_review"] = "third_review"
Outcome = RequestState | Literal["third_review"] | None

_STATE = {
    ReviewDecision.APPROVE: RequestState.APPROVED,
    ReviewDecision.RETURN: RequestState.RETURNED,
    ReviewDecision.REJECT: RequestState.REJECTED,
}


def outcome(decisions: Sequence[ReviewDecision]) -> Outcome:
    """Fewer than two decisions: None (wait). Two that agree settle the round; two that
    disagree need a third review. Three settle by majority; three different decisions
    return the request to its author (nobody approved twice, nobody rejected twice)."""
    if len(decisions) < 2:
        return None
    if len(decisions) > 3:
        raise ValueError("a round has at most three reviews")
    counts = {d: decisions.count(d) for d in ReviewDecision}
    top = max(ReviewDecision, key=lambda d: counts[d])
    if counts[top] >= 2:
        return _STATE[top]
    if len(decisions) == 2:
        return THIRD_REVIEW
    return RequestState.RETURNED
