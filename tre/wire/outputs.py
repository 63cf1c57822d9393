"""Output requests on the wire: create, items, submit, reviews, release, reassign (docs/api.md).

Request models check only what the databases and the JSON need (storable text, ids that fit,
finite numbers); the output service's own gates refuse the rest with their reasons, and audit
the refusal. Response models mirror `tre.outputs.types` views: a review hidden from the caller
(blind review) arrives with `hidden: true` and no decision, comment or item comments.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tre.wire._base import Id, WireIn

# Mirrors tre.outputs RequestState / ItemKind / ReviewDecision / CheckStatus (kept equal by a test).
OutputStateName = Literal[
    "draft",
    "submitted",
    "under_review",
    "approved",
    "returned",
    "rejected",
    "released",
    "withdrawn",
]
ItemKindName = Literal["table", "figure", "model", "text"]
DecisionName = Literal["approve", "return", "reject"]
CheckStatusName = Literal["pass", "review", "fail"]

PRESET_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"  # a file name in policies/disclosure (no folders)
# As tre.outputs.files.item_name accepts: a plain file name, no folders, no hidden files.
ITEM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,150}$"
# Text limits sit above the service's own (title 200, text 10,000 characters) so that the
# service refuses over-long text with its reason and an audit event; these only bound the body.
MAX_TITLE_IN = 1_000
MAX_TEXT_IN = 20_000
MAX_COUNT = 1_000_000_000  # n_obs and rank: far above any real model, inside every integer type

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Scalar = str | int | FiniteFloat | bool | None


class OutputRequestIn(WireIn):
    """A new draft output request in a project you may use."""

    project_id: Id
    title: str = Field(min_length=1, max_length=MAX_TITLE_IN)
    preset: str | None = Field(
        default=None,
        pattern=PRESET_PATTERN,
        description="disclosure preset (acro, ons, opensafely, …); the TRE's default if omitted",
    )


class ItemFormIn(WireIn):
    """The form fields of an uploaded item (validated like a JSON body)."""

    name: str = Field(min_length=1, max_length=MAX_TITLE_IN)
    kind: ItemKindName
    context: str = Field(max_length=MAX_TEXT_IN)
    exception: str | None = Field(default=None, max_length=MAX_TEXT_IN)
    underlying: str | None = Field(default=None, max_length=MAX_TITLE_IN)
    count_column: str | None = Field(default=None, max_length=MAX_TITLE_IN)
    n_obs: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    rank: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    replace: bool = False


class ResultColumnIn(WireIn):
    """A column of a tre query result."""

    name: str = Field(min_length=1, max_length=MAX_TITLE_IN)
    role: str = Field(max_length=100)
    aggregate: str | None = Field(default=None, max_length=100)


class ResultDatasetIn(WireIn):
    """A dataset version a query result was computed from."""

    name: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1, le=MAX_COUNT)


class QueryResultIn(WireIn):
    """A tre query result as `POST /query` returned it (`QueryResult.to_json()`), optionally
    with the query text (`sql`) and the query engine's disclosure report (`disclosure`).

    Fields the query engine adds later are kept in the stored file (not refused): a client
    passes the answer through as it came, and the engine's format moves on its own schedule.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    query_id: str = Field(min_length=1, max_length=200)
    mode: Literal["dp", "sdc"]
    cached: bool = False
    columns: list[ResultColumnIn] = Field(min_length=1)
    rows: list[list[Scalar]]
    half_widths_95: list[list[FiniteFloat | None]] | None = None
    cost: dict[str, FiniteFloat | None] | None = None
    plan: list[str] = Field(default_factory=list)
    datasets: list[ResultDatasetIn] = Field(default_factory=list)
    withheld: list[list[str | None]] = Field(
        default_factory=list, description="SDC mode: per cell, why it was withheld"
    )
    sql: str | None = Field(default=None, max_length=100_000)
    disclosure: dict[str, Any] | None = None


class QueryTableIn(WireIn):
    """A table item from a tre query result: stored as the result's JSON, provenance kept."""

    name: str = Field(
        min_length=1,
        max_length=MAX_TITLE_IN,
        description="item name; `.json` is added when it has no extension",
    )
    result: QueryResultIn
    context: str = Field(max_length=MAX_TEXT_IN)
    exception: str | None = Field(default=None, max_length=MAX_TEXT_IN)
    count_column: str | None = Field(default=None, max_length=MAX_TITLE_IN)
    replace: bool = False


class ItemUpdateIn(WireIn):
    """A change to an item's words; omitted fields stay as they are."""

    context: str | None = Field(default=None, max_length=MAX_TEXT_IN)
    exception: str | None = Field(default=None, max_length=MAX_TEXT_IN)
    clear_exception: bool = False


class DecisionIn(WireIn):
    """A checker's decision on the whole request (a comment is required to return or reject)."""

    decision: DecisionName
    comment: str | None = Field(default=None, max_length=MAX_TEXT_IN)
    item_comments: dict[str, Annotated[str, Field(max_length=MAX_TEXT_IN)]] = Field(
        default_factory=dict, max_length=200, description="item name → comment"
    )


class ReassignIn(WireIn):
    """Move an undecided review from one checker to another (admins), with a reason."""

    from_user_id: Id
    to_user_id: Id
    reason: str = Field(min_length=1, max_length=MAX_TITLE_IN)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ResultDatasetOut(_Out):
    """A dataset version."""

    name: str
    version: int


class ProvenanceOut(_Out):
    """Where a table came from (a tre query), when known."""

    query_id: str | None
    query: str | None
    mode: str | None
    datasets: list[ResultDatasetOut]
    plan: list[str]
    disclosure: dict[str, Any] | None


class CheckOut(_Out):
    """The automatic checks of one item."""

    status: CheckStatusName
    notes: list[str]
    summary: dict[str, int] = Field(description="rule id → cells flagged")
    cells: dict[str, list[list[int]]] = Field(description="rule id → [[row, column]] (0-based)")
    report: dict[str, Any] | None


class ItemOut(_Out):
    """One output item."""

    name: str
    kind: ItemKindName
    media: str
    size: int
    sha256: str
    context: str
    exception: str | None
    underlying: str | None
    provenance: ProvenanceOut | None
    check: CheckOut
    added_at: datetime


class ReviewOut(_Out):
    """A review of the current round; `hidden` ones show who and whether, never what."""

    id: int
    round: int
    reviewer_id: int
    assigned_at: datetime
    decided: bool
    hidden: bool
    decision: DecisionName | None
    comment: str | None
    item_comments: dict[str, str]
    decided_at: datetime | None


class OutputRequestOut(_Out):
    """An output request as the caller may see it."""

    id: int
    project_id: int
    author_id: int
    title: str
    state: OutputStateName
    preset: str
    round: int
    reviews_required: int
    check_status: CheckStatusName
    items: list[ItemOut]
    reviews: list[ReviewOut]
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    released_at: datetime | None
    bundle_sha256: str | None


class QueueEntryOut(_Out):
    """A request a checker can review now, or one they hold undecided (`mine`)."""

    request_id: int
    project_id: int
    title: str
    state: OutputStateName
    round: int
    submitted_at: datetime | None
    check_status: CheckStatusName
    reviews_taken: int
    reviews_required: int
    mine: bool
