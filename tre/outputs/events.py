"""Audit events of output requests: every state change, review, release, download and refusal.

They carry ids, item names, kinds, sizes, checksums and statuses, never a cell of a table,
a comment or a justification (free text might quote values).
"""

from __future__ import annotations

from tre.audit import AuditEvent


class OutputRequestCreated(AuditEvent):
    """A researcher started an output request (draft)."""

    event_type = "output.created"
    request_id: int
    project_id: int
    preset: str


class OutputItemAdded(AuditEvent):
    """An item passed the pre-review gates, was checked and stored."""

    event_type = "output.item_added"
    request_id: int
    name: str
    kind: str
    media: str
    size: int
    sha256: str
    check_status: str
    exception_requested: bool


class OutputItemRemoved(AuditEvent):
    """An item was taken out of a request."""

    event_type = "output.item_removed"
    request_id: int
    name: str


class OutputItemEdited(AuditEvent):
    """An item's context or exception request was changed."""

    event_type = "output.item_edited"
    request_id: int
    name: str
    exception_requested: bool


class OutputReviewsReset(AuditEvent):
    """An edit sent a request under review back to draft; its round's reviews no longer count."""

    event_type = "output.reviews_reset"
    request_id: int
    round: int
    reviews: int
    previous_state: str


class OutputRequestSubmitted(AuditEvent):
    """The author submitted a request for review (a new round)."""

    event_type = "output.submitted"
    request_id: int
    round: int
    items: int
    check_status: str


class OutputReviewTaken(AuditEvent):
    """An output checker took one of the round's reviews."""

    event_type = "output.review_taken"
    request_id: int
    round: int
    reviewer_id: int


class OutputReviewDecided(AuditEvent):
    """An output checker recorded a decision (its comment stays in the request, not here)."""

    event_type = "output.review_decided"
    request_id: int
    round: int
    reviewer_id: int
    decision: str


class OutputThirdReviewNeeded(AuditEvent):
    """The two reviews disagreed: a third checker decides."""

    event_type = "output.third_review_needed"
    request_id: int
    round: int
    decisions: tuple[str, ...]


class OutputRequestDecided(AuditEvent):
    """The round's reviews settled the request: approved, returned or rejected."""

    event_type = "output.decided"
    request_id: int
    round: int
    state: str
    reviewer_ids: tuple[int, ...]


class OutputReviewReassigned(AuditEvent):
    """An admin moved an undecided review to another checker."""

    event_type = "output.review_reassigned"
    request_id: int
    round: int
    from_user_id: int
    to_user_id: int
    reason: str


class OutputRequestWithdrawn(AuditEvent):
    """The author withdrew the request."""

    event_type = "output.withdrawn"
    request_id: int
    previous_state: str


class OutputReleased(AuditEvent):
    """An output checker released an approved request: the bundle was written."""

    event_type = "output.released"
    request_id: int
    project_id: int
    bundle_sha256: str
    files: tuple[str, ...]
    approver_ids: tuple[int, ...]


class OutputDownloaded(AuditEvent):
    """A project member downloaded a released bundle."""

    event_type = "output.downloaded"
    request_id: int
    project_id: int
    user_id: int
    bundle_sha256: str


class OutputActionRefused(AuditEvent):
    """An output action was refused (forbidden, impossible now, or bad input), with why."""

    event_type = "output.refused"
    action: str
    request_id: int | None
    user_id: int
    reason: str  # the error's machine-readable reason
    status: int
    message: str  # the user-facing message: names things, never quotes values
