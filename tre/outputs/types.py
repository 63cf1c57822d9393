"""The vocabulary of output requests: states, kinds, limits and the frozen views callers see."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RequestState(StrEnum):
    """Where an output request is in its life."""

    DRAFT = "draft"  # the author gathers items; editable
    SUBMITTED = "submitted"  # waiting for checkers; no review started yet
    UNDER_REVIEW = "under_review"  # at least one checker took a review
    APPROVED = "approved"  # two (or, after a disagreement, two of three) approvals
    RETURNED = "returned"  # checkers asked for changes: edit and resubmit
    REJECTED = "rejected"  # final: nothing is released
    RELEASED = "released"  # the bundle exists; members can download it
    WITHDRAWN = "withdrawn"  # final: the author withdrew it

    @property
    def editable(self) -> bool:
        """True when the author may still change items (an edit resets reviews)."""
        return self in (
            RequestState.DRAFT,
            RequestState.SUBMITTED,
            RequestState.UNDER_REVIEW,
            RequestState.RETURNED,
        )

    @property
    def in_review(self) -> bool:
        """True while checkers can take and decide reviews."""
        return self in (RequestState.SUBMITTED, RequestState.UNDER_REVIEW)


class ItemKind(StrEnum):
    """What an output item is; each kind has its own allowed file types and checks."""

    TABLE = "table"
    FIGURE = "figure"
    MODEL = "model"  # a model summary (coefficients, fit statistics)
    TEXT = "text"  # free text (methods, notes)


class ReviewDecision(StrEnum):
    """An output checker's decision on a whole request."""

    APPROVE = "approve"
    RETURN = "return"  # changes needed; the author edits and resubmits
    REJECT = "reject"


class CheckStatus(StrEnum):
    """The automatic verdict on an item (ACRO's statuses)."""

    PASS = "pass"  # noqa: S105 - a status name
    REVIEW = "review"
    FAIL = "fail"


# Extensions allowed per kind. SVG is refused as ACRO does (it can embed scripts and data).
ALLOWED_EXTENSIONS: dict[ItemKind, frozenset[str]] = {
    ItemKind.TABLE: frozenset({".csv", ".parquet", ".json"}),
    ItemKind.FIGURE: frozenset({".png", ".pdf"}),
    ItemKind.MODEL: frozenset({".txt", ".csv", ".json"}),
    ItemKind.TEXT: frozenset({".txt", ".md"}),
}


class OutputLimits(BaseSettings):
    """Pre-review gates and workflow parameters; each can be set from `TRE_OUTPUTS_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="TRE_OUTPUTS_", frozen=True, extra="forbid")

    max_file_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    max_table_rows: int = Field(default=10_000, ge=1)
    max_items: int = Field(default=50, ge=1)
    disclosure_preset: str = "acro"  # the default preset a new request is checked with
    reviews_required: int = Field(default=2, ge=2)  # the two-person rule; never fewer


class Provenance(BaseModel):
    """Where a table came from: a tre query (its id, text, mode, dataset versions), if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_id: str | None = None
    query: str | None = None  # the query text as the researcher wrote it
    mode: str | None = None  # "dp" or "sdc"
    datasets: tuple[tuple[str, int], ...] = ()
    plan: tuple[str, ...] = ()
    disclosure: dict[str, Any] | None = None  # the query engine's disclosure report, as JSON


class CheckResult(BaseModel):
    """The automatic checks of one item: status, what was checked, the report."""

    model_config = ConfigDict(frozen=True)

    status: CheckStatus
    notes: tuple[str, ...] = ()
    summary: dict[str, int] = Field(default_factory=dict)  # rule id -> cells flagged
    cells: dict[str, list[list[int]]] = Field(default_factory=dict)  # rule -> [[row, col]]
    report: dict[str, Any] | None = None  # tre.disclosure report (to_dict), when one ran


class ItemView(BaseModel):
    """One output item of a request."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: ItemKind
    media: str  # the file extension without its dot
    size: int
    sha256: str
    context: str  # the author's "context and controls"
    exception: str | None  # the author's justification for an exception, if asked
    underlying: str | None  # figures: the table item they were drawn from
    provenance: Provenance | None
    check: CheckResult
    added_at: datetime


class ReviewView(BaseModel):
    """One checker's review; `hidden` reviews show who and whether, never what."""

    model_config = ConfigDict(frozen=True)

    id: int
    round: int
    reviewer_id: int
    assigned_at: datetime
    decided: bool
    hidden: bool
    decision: ReviewDecision | None = None
    comment: str | None = None
    item_comments: dict[str, str] = Field(default_factory=dict)
    decided_at: datetime | None = None


class OutputRequestView(BaseModel):
    """An output request as one person may see it (reviews filtered for blindness)."""

    model_config = ConfigDict(frozen=True)

    id: int
    project_id: int
    author_id: int
    title: str
    state: RequestState
    preset: str
    round: int
    reviews_required: int
    items: tuple[ItemView, ...]
    reviews: tuple[ReviewView, ...]  # the current round's
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    released_at: datetime | None
    bundle_sha256: str | None

    @property
    def check_status(self) -> CheckStatus:
        """The worst automatic status over every item (pass for an empty request)."""
        order = [CheckStatus.PASS, CheckStatus.REVIEW, CheckStatus.FAIL]
        return max((i.check.status for i in self.items), key=order.index, default=CheckStatus.PASS)


class QueueEntry(BaseModel):
    """A request a checker could review now, or one they took and have not decided."""

    model_config = ConfigDict(frozen=True)

    request_id: int
    project_id: int
    title: str
    state: RequestState
    round: int
    submitted_at: datetime | None
    check_status: CheckStatus
    reviews_taken: int
    reviews_required: int
    mine: bool  # the checker already holds an undecided review of it


class Download(BaseModel):
    """A released bundle: where it is, its name and checksum."""

    model_config = ConfigDict(frozen=True)

    request_id: int
    path: Path
    filename: str
    sha256: str
    size: int


class ItemUpdate(BaseModel):
    """An author's change to an item's words (context, exception); None leaves a field alone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    context: str | None = None
    exception: str | None = None
    clear_exception: bool = False
