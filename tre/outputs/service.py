"""The output-request workflow: `OutputService`, the one entry point for the API and the CLI.

Each method runs in its own control-plane transaction (the change and its audit events commit
together) and keeps files consistent with it (an add that fails leaves no file behind). Every
refusal — forbidden, impossible now, or bad input — is raised as a `tre.errors.UserError` and
recorded as an `output.refused` audit event in a transaction of its own, so it stays on the
record although the refused change rolled back.

Permissions come from `tre.governance.decide`: `USE_PROJECT` for authors (active member,
accredited), `REVIEW_OUTPUT` for checkers (output checker, not the author, not a project
member) — also for releasing —, `DOWNLOAD_OUTPUT` for downloads (current project members) and
`REASSIGN_REVIEW` for admins. State rules are Conflicts (409). See docs/outputs.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tre import governance as g
from tre.audit import AuditEvent, record, user_actor
from tre.audit.store import AuditEventRow
from tre.config import Settings
from tre.db import Database
from tre.disclosure import DisclosurePolicy, load_preset
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, UserError
from tre.governance import Action, Actor, OutputReviewTarget, ProjectView, Role, decide, require
from tre.governance._load import project_row, project_view
from tre.governance.models import User
from tre.outputs import checks, events, files, rules
from tre.outputs.bundle import RESERVED_NAMES, BundleFacts, build_bundle
from tre.outputs.models import OutputItem, OutputRequest, OutputReview
from tre.outputs.types import (
    CheckResult,
    CheckStatus,
    Download,
    ItemKind,
    ItemUpdate,
    ItemView,
    OutputLimits,
    OutputRequestView,
    Provenance,
    QueueEntry,
    RequestState,
    ReviewDecision,
    ReviewView,
)

T = TypeVar("T")
MAX_TITLE = 200
MAX_TEXT = 10_000


class OutputService:
    """Create, edit, submit, review, release and download output requests."""

    def __init__(self, db: Database, settings: Settings, limits: OutputLimits | None = None):
        self.db = db
        self.settings = settings
        self.limits = limits or OutputLimits()
        self.store = files.OutputStore(settings.data_root)

    # --- plumbing ---------------------------------------------------------------------------

    def _run(
        self,
        action: str,
        actor: Actor,
        request_id: int | None,
        now: datetime,
        fn: Callable[[Session], T],
    ) -> T:
        """Run `fn` in one transaction; audit any refusal in a separate one, then re-raise."""
        try:
            with self.db.transaction() as s:
                return fn(s)
        except UserError as exc:
            self._refused(action, actor, request_id, exc, now)
            raise

    def _refused(
        self, action: str, actor: Actor, request_id: int | None, exc: UserError, now: datetime
    ) -> None:
        """Record a refusal in a transaction of its own (the refused change rolled back)."""
        with self.db.transaction() as s:
            record(
                s,
                events.OutputActionRefused(
                    action=action,
                    request_id=request_id,
                    user_id=actor.user_id,
                    reason=exc.reason,
                    status=exc.status,
                    message=exc.message[:1000],
                ),
                actor=user_actor(actor.user_id),
                now=now,
            )

    def _policy(self, preset: str) -> DisclosurePolicy:
        return load_preset(preset, directory=self.settings.policy_dir / "disclosure")

    @staticmethod
    def _audit(s: Session, actor: Actor, event: AuditEvent, now: datetime) -> None:
        record(s, event, actor=user_actor(actor.user_id), now=now)

    @staticmethod
    def _request(s: Session, request_id: int, *, lock: bool = False) -> OutputRequest:
        stmt = sa.select(OutputRequest).where(OutputRequest.id == request_id)
        if lock and s.get_bind().dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        row = s.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
        if row is None:
            raise NotFound(
                f"no output request with id {request_id}",
                hint="List requests with `tre outputs status`.",
            )
        return row

    @staticmethod
    def _project(s: Session, project_id: int) -> ProjectView:
        return project_view(project_row(s, project_id))

    @staticmethod
    def _target(req: OutputRequest, project: ProjectView) -> OutputReviewTarget:
        return OutputReviewTarget(
            project_id=req.project_id,
            author_id=req.author_id,
            project_member_ids=project.member_ids | {project.lead_id},
        )

    def _as_author(
        self, s: Session, actor: Actor, req: OutputRequest, now: datetime
    ) -> ProjectView:
        """The author, still allowed to use the project, changing their own request."""
        if req.author_id != actor.user_id:
            raise Forbidden(
                f"only the author of output request {req.id} can change it",
                reason="not_author",
            )
        project = self._project(s, req.project_id)
        require(decide(actor, Action.USE_PROJECT, project, now=now))
        return project

    @staticmethod
    def _round_reviews(req: OutputRequest) -> list[OutputReview]:
        return [r for r in req.reviews if r.round == req.round]

    # --- author: create and edit ------------------------------------------------------------

    def create_request(
        self,
        actor: Actor,
        project_id: int,
        *,
        title: str,
        preset: str | None = None,
        now: datetime,
    ) -> OutputRequestView:
        """Start a draft output request in a project the actor may use."""

        def go(s: Session) -> OutputRequestView:
            project = self._project(s, project_id)
            require(decide(actor, Action.USE_PROJECT, project, now=now))
            name = preset or self.limits.disclosure_preset
            self._policy(name)  # refuse an unknown preset now, not at the first item
            req = OutputRequest(
                project_id=project_id,
                author_id=actor.user_id,
                title=_text(title, "title", MAX_TITLE),
                state=RequestState.DRAFT.value,
                preset=name,
                round=0,
                reviews_required=self.limits.reviews_required,
                created_at=now,
                updated_at=now,
            )
            s.add(req)
            s.flush()
            self._audit(
                s,
                actor,
                events.OutputRequestCreated(request_id=req.id, project_id=project_id, preset=name),
                now,
            )
            return self._view(s, actor, req, project)

        return self._run("create", actor, None, now, go)

    def add_item(
        self,
        actor: Actor,
        request_id: int,
        *,
        name: str,
        kind: ItemKind | str,
        content: bytes,
        context: str,
        exception: str | None = None,
        underlying: str | None = None,
        count_column: str | None = None,
        provenance: Provenance | None = None,
        n_obs: int | None = None,
        rank: int | None = None,
        replace: bool = False,
        now: datetime,
    ) -> OutputRequestView:
        """Gate, check and store one item (an edit: a request under review goes back to draft)."""
        created: list[str] = []

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            project = self._as_author(s, actor, req, now)
            self._require_editable(req)
            item_kind = _kind(kind)
            fname = files.item_name(name)
            if fname.lower() in RESERVED_NAMES:
                raise InvalidInput(
                    f"{fname!r} is reserved for the release bundle",
                    reason="bad_item_name",
                    hint="Give the item another name.",
                )
            existing = {i.name: i for i in req.items}
            if fname in existing and not replace:
                raise Conflict(
                    f"request {req.id} already has an item named {fname!r}",
                    reason="item_exists",
                    hint="Choose another name, or replace it.",
                )
            if fname not in existing and len(existing) >= self.limits.max_items:
                raise InvalidInput(
                    f"request {req.id} already has {len(existing)} items, the limit",
                    reason="too_many_items",
                    hint="Split the outputs over several requests.",
                )
            ctx = _text(context, "context", MAX_TEXT)
            exc_text = _optional_text(exception, "exception")
            check, media, prov = self._gate_and_check(
                s,
                req,
                fname,
                item_kind,
                content,
                existing=existing,
                underlying=underlying,
                count_column=count_column,
                provenance=provenance,
                n_obs=n_obs,
                rank=rank,
            )
            digest, new = self.store.put(req.id, content)
            if new:
                created.append(digest)
            old = existing.get(fname)
            if old is not None:
                s.delete(old)
                s.flush()
            s.add(
                OutputItem(
                    request_id=req.id,
                    name=fname,
                    kind=item_kind.value,
                    media=media,
                    size=len(content),
                    sha256=digest,
                    context=ctx,
                    exception=exc_text,
                    underlying=underlying if item_kind is ItemKind.FIGURE else None,
                    provenance=prov.model_dump_json() if prov else None,
                    check_status=check.status.value,
                    check_report=check.model_dump_json(),
                    added_at=now,
                )
            )
            s.flush()
            s.refresh(req)
            if item_kind is ItemKind.TABLE:
                # Figures drawn from a replaced table take its new verdict.
                for fig in req.items:
                    if fig.underlying == fname:
                        fig_check = checks.check_figure_item(fname, check)
                        fig.check_status = fig_check.status.value
                        fig.check_report = fig_check.model_dump_json()
            self._edited(s, actor, req, now)
            self._audit(
                s,
                actor,
                events.OutputItemAdded(
                    request_id=req.id,
                    name=fname,
                    kind=item_kind.value,
                    media=media,
                    size=len(content),
                    sha256=digest,
                    check_status=check.status.value,
                    exception_requested=exc_text is not None,
                ),
                now,
            )
            return self._view(s, actor, req, project)

        try:
            return self._run("add_item", actor, request_id, now, go)
        except BaseException:
            self.store.discard(request_id, created)  # nothing committed refers to them
            raise

    def _gate_and_check(
        self,
        s: Session,
        req: OutputRequest,
        name: str,
        kind: ItemKind,
        content: bytes,
        *,
        existing: Mapping[str, OutputItem],
        underlying: str | None,
        count_column: str | None,
        provenance: Provenance | None,
        n_obs: int | None,
        rank: int | None,
    ) -> tuple[CheckResult, str, Provenance | None]:
        """The pre-review gates, then the automatic checks."""
        ext = files.extension(name, kind)
        files.check_size(name, content, self.limits)
        files.check_signature(name, ext, content)
        policy = self._policy(req.preset)
        if kind is not ItemKind.FIGURE and underlying is not None:
            raise InvalidInput(
                f"{name}: only figures name an underlying table", reason="bad_underlying"
            )
        if kind is ItemKind.TABLE:
            table = files.read_table(name, ext, content, self.limits)
            files.check_identifiers(name, table)
            prov = provenance or table.provenance
            dp_rho = None
            if prov is not None and prov.mode == "dp" and prov.query_id:
                dp_rho = _dp_query_cost(s, req.project_id, prov.query_id)
            check = checks.check_table_item(
                name, table, policy, count_column=count_column, provenance=prov, dp_rho=dp_rho
            )
            return check, ext[1:], prov
        if kind is ItemKind.FIGURE:
            base = existing.get(underlying or "")
            if underlying is None or base is None or base.kind != ItemKind.TABLE.value:
                raise InvalidInput(
                    f"{name}: a figure must name its underlying table, an item of this request",
                    reason="underlying_table_required",
                    hint="Add the table the figure was drawn from first, then name it.",
                )
            under = CheckResult.model_validate_json(base.check_report)
            return checks.check_figure_item(base.name, under), ext[1:], provenance
        if kind is ItemKind.MODEL:
            if ext == ".csv":
                files.check_identifiers(name, files.read_table(name, ext, content, self.limits))
            else:
                files.check_text_identifiers(name, files.decode_text(name, content))
            return checks.check_model_item(policy, n_obs=n_obs, rank=rank), ext[1:], provenance
        files.check_text_identifiers(name, files.decode_text(name, content))
        return checks.check_text_item(), ext[1:], provenance

    def update_item(
        self, actor: Actor, request_id: int, name: str, update: ItemUpdate, *, now: datetime
    ) -> OutputRequestView:
        """Change an item's context or exception request (an edit: resets reviews)."""

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            project = self._as_author(s, actor, req, now)
            self._require_editable(req)
            item = _item(req, name)
            if update.context is not None:
                item.context = _text(update.context, "context", MAX_TEXT)
            if update.clear_exception:
                item.exception = None
            elif update.exception is not None:
                item.exception = _optional_text(update.exception, "exception")
            s.flush()
            self._edited(s, actor, req, now)
            self._audit(
                s,
                actor,
                events.OutputItemEdited(
                    request_id=req.id,
                    name=item.name,
                    exception_requested=item.exception is not None,
                ),
                now,
            )
            return self._view(s, actor, req, project)

        return self._run("update_item", actor, request_id, now, go)

    def remove_item(
        self, actor: Actor, request_id: int, name: str, *, now: datetime
    ) -> OutputRequestView:
        """Take an item out (refused while a figure names it as its table)."""

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            project = self._as_author(s, actor, req, now)
            self._require_editable(req)
            item = _item(req, name)
            users = [i.name for i in req.items if i.underlying == item.name]
            if users:
                raise Conflict(
                    f"{item.name!r} is the underlying table of {', '.join(users)}",
                    reason="table_in_use",
                    hint="Remove those figures first.",
                )
            req.items.remove(item)
            s.flush()
            self._edited(s, actor, req, now)
            self._audit(s, actor, events.OutputItemRemoved(request_id=req.id, name=name), now)
            return self._view(s, actor, req, project)

        view = self._run("remove_item", actor, request_id, now, go)
        self.store.prune(request_id, [i.sha256 for i in view.items])
        return view

    @staticmethod
    def _require_editable(req: OutputRequest) -> None:
        state = RequestState(req.state)
        if not state.editable:
            raise Conflict(
                f"output request {req.id} is {state.value} and can no longer be edited",
                reason="not_editable",
                hint="Start a new request for further outputs.",
            )

    def _edited(self, s: Session, actor: Actor, req: OutputRequest, now: datetime) -> None:
        """Record an edit; a request in review goes back to draft and its reviews stop counting."""
        req.updated_at = now
        state = RequestState(req.state)
        if state.in_review:
            taken = len(self._round_reviews(req))
            req.state = RequestState.DRAFT.value
            self._audit(
                s,
                actor,
                events.OutputReviewsReset(
                    request_id=req.id, round=req.round, reviews=taken, previous_state=state.value
                ),
                now,
            )

    # --- author: submit and withdraw ------------------------------------------------------

    def submit(self, actor: Actor, request_id: int, *, now: datetime) -> OutputRequestView:
        """Send a draft (or returned) request to the output checkers: a new review round."""

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            project = self._as_author(s, actor, req, now)
            state = RequestState(req.state)
            if state not in (RequestState.DRAFT, RequestState.RETURNED):
                raise Conflict(
                    f"output request {req.id} is {state.value}; only a draft or a returned "
                    "request can be submitted",
                    reason="not_submittable",
                )
            if not req.items:
                raise Conflict(
                    f"output request {req.id} has no items",
                    reason="empty_request",
                    hint="Add a table, figure, model summary or text first.",
                )
            failing = [
                i.name for i in req.items if i.check_status == "fail" and i.exception is None
            ]
            if failing:
                raise Conflict(
                    f"items failed the automatic checks without an exception request: "
                    f"{', '.join(failing)}",
                    reason="failing_items",
                    hint="Protect or replace them, or ask for an exception with a justification.",
                )
            req.round += 1
            req.reviews_required = self.limits.reviews_required
            req.state = RequestState.SUBMITTED.value
            req.submitted_at = now
            req.updated_at = now
            statuses = [CheckStatus(i.check_status) for i in req.items]
            self._audit(
                s,
                actor,
                events.OutputRequestSubmitted(
                    request_id=req.id,
                    round=req.round,
                    items=len(req.items),
                    check_status=checks.worst(*statuses).value,
                ),
                now,
            )
            return self._view(s, actor, req, project)

        return self._run("submit", actor, request_id, now, go)

    def withdraw(self, actor: Actor, request_id: int, *, now: datetime) -> OutputRequestView:
        """The author withdraws the request (not once rejected, released or withdrawn)."""

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            if req.author_id != actor.user_id:
                raise Forbidden(
                    f"only the author of output request {req.id} can withdraw it",
                    reason="not_author",
                )
            state = RequestState(req.state)
            if state in (RequestState.REJECTED, RequestState.RELEASED, RequestState.WITHDRAWN):
                raise Conflict(
                    f"output request {req.id} is {state.value} and cannot be withdrawn",
                    reason="not_withdrawable",
                )
            req.state = RequestState.WITHDRAWN.value
            req.updated_at = now
            self._audit(
                s,
                actor,
                events.OutputRequestWithdrawn(request_id=req.id, previous_state=state.value),
                now,
            )
            return self._view(s, actor, req, self._project(s, req.project_id))

        return self._run("withdraw", actor, request_id, now, go)

    # --- reading ----------------------------------------------------------------------------

    def get_request(self, actor: Actor, request_id: int, *, now: datetime) -> OutputRequestView:
        """One request as the actor may see it (checkers: blind to others' open reviews)."""

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id)
            project = self._project(s, req.project_id)
            self._require_view(actor, req, project, now)
            return self._view(s, actor, req, project)

        return self._run("view", actor, request_id, now, go)

    def list_requests(
        self, actor: Actor, *, project_id: int | None = None, now: datetime
    ) -> list[OutputRequestView]:
        """Every request the actor may see (optionally of one project), newest first."""
        with self.db.read() as s:
            stmt = sa.select(OutputRequest).order_by(OutputRequest.id.desc())
            if project_id is not None:
                stmt = stmt.where(OutputRequest.project_id == project_id)
            out = []
            projects: dict[int, ProjectView] = {}
            for req in s.execute(stmt).scalars():
                if req.project_id not in projects:
                    projects[req.project_id] = self._project(s, req.project_id)
                project = projects[req.project_id]
                if self._may_view(actor, req, project, now):
                    out.append(self._view(s, actor, req, project))
            return out

    def item_content(
        self, actor: Actor, request_id: int, name: str, *, now: datetime
    ) -> tuple[ItemView, bytes]:
        """An item's bytes (checksum verified) for whoever may see the request."""

        def go(s: Session) -> tuple[ItemView, bytes]:
            req = self._request(s, request_id)
            project = self._project(s, req.project_id)
            self._require_view(actor, req, project, now)
            item = _item(req, name)
            return _item_view(item), self.store.read(req.id, item.sha256)

        return self._run("read_item", actor, request_id, now, go)

    def _may_view(
        self, actor: Actor, req: OutputRequest, project: ProjectView, now: datetime
    ) -> bool:
        if actor.disabled:
            return False
        if actor.has(Role.ADMIN) or decide(actor, Action.DOWNLOAD_OUTPUT, project, now=now):
            return True
        if req.state == RequestState.DRAFT.value and req.round == 0:
            return False  # never submitted: the author's own business
        if any(r.reviewer_id == actor.user_id for r in req.reviews):
            return True
        return bool(decide(actor, Action.REVIEW_OUTPUT, self._target(req, project), now=now))

    def _require_view(
        self, actor: Actor, req: OutputRequest, project: ProjectView, now: datetime
    ) -> None:
        if not self._may_view(actor, req, project, now):
            raise Forbidden(
                f"you may not see output request {req.id}: it belongs to project "
                f"{req.project_id} and you are neither a member nor an independent checker",
                reason="not_visible",
            )

    def _view(
        self, s: Session, actor: Actor, req: OutputRequest, project: ProjectView
    ) -> OutputRequestView:
        """The request with its current round's reviews, hidden where blindness requires."""
        s.flush()
        s.refresh(req)
        state = RequestState(req.state)
        round_reviews = self._round_reviews(req) if state is not RequestState.DRAFT else []
        first = round_reviews[:2]
        both_in = len(first) == 2 and all(r.decision is not None for r in first)
        insider = actor.user_id == req.author_id or actor.user_id in project.member_ids
        reviews = []
        for r in round_reviews:
            if not state.in_review or r.reviewer_id == actor.user_id:
                visible = True
            else:
                # Neither of two reviewers sees the other's decision until both are in; then
                # checkers (the third reviewer among them) see both. Authors wait for the outcome.
                visible = both_in and not insider
            reviews.append(_review_view(r, hidden=not visible))
        return OutputRequestView(
            id=req.id,
            project_id=req.project_id,
            author_id=req.author_id,
            title=req.title,
            state=state,
            preset=req.preset,
            round=req.round,
            reviews_required=req.reviews_required,
            items=tuple(_item_view(i) for i in req.items),
            reviews=tuple(reviews),
            created_at=req.created_at,
            updated_at=req.updated_at,
            submitted_at=req.submitted_at,
            released_at=req.released_at,
            bundle_sha256=req.bundle_sha256,
        )

    # --- checkers: queue, review, decide ------------------------------------------------------

    def queue(self, actor: Actor, *, now: datetime) -> list[QueueEntry]:
        """Requests the checker can take a review of, and those they hold undecided; oldest first."""
        if not actor.has(Role.OUTPUT_CHECKER):
            exc = Forbidden("only output checkers have a review queue", reason="not_checker")
            self._refused("queue", actor, None, exc, now)
            raise exc
        with self.db.read() as s:
            stmt = (
                sa.select(OutputRequest)
                .where(
                    OutputRequest.state.in_(
                        [RequestState.SUBMITTED.value, RequestState.UNDER_REVIEW.value]
                    )
                )
                .order_by(OutputRequest.submitted_at, OutputRequest.id)
            )
            out = []
            for req in s.execute(stmt).scalars():
                reviews = self._round_reviews(req)
                mine = [r for r in reviews if r.reviewer_id == actor.user_id]
                holds_open = any(r.decision is None for r in mine)
                project = self._project(s, req.project_id)
                can_take = (
                    not mine
                    and len(reviews) < req.reviews_required
                    and bool(
                        decide(actor, Action.REVIEW_OUTPUT, self._target(req, project), now=now)
                    )
                )
                if holds_open or can_take:
                    statuses = [CheckStatus(i.check_status) for i in req.items]
                    out.append(
                        QueueEntry(
                            request_id=req.id,
                            project_id=req.project_id,
                            title=req.title,
                            state=RequestState(req.state),
                            round=req.round,
                            submitted_at=req.submitted_at,
                            check_status=checks.worst(*statuses),
                            reviews_taken=len(reviews),
                            reviews_required=req.reviews_required,
                            mine=holds_open,
                        )
                    )
            return out

    def _take(
        self, s: Session, actor: Actor, req: OutputRequest, project: ProjectView, now: datetime
    ) -> OutputReview:
        """Give the actor one of the round's review slots (all refusals explained)."""
        require(decide(actor, Action.REVIEW_OUTPUT, self._target(req, project), now=now))
        state = RequestState(req.state)
        if not state.in_review:
            raise Conflict(
                f"output request {req.id} is {state.value}, not waiting for review",
                reason="not_in_review",
            )
        reviews = self._round_reviews(req)
        if any(r.reviewer_id == actor.user_id for r in reviews):
            raise Conflict(
                f"you already review output request {req.id} in round {req.round}; "
                "a second review by the same person does not count",
                reason="second_review",
                hint="Two different output checkers must review each request.",
            )
        if len(reviews) >= req.reviews_required:
            raise Conflict(
                f"output request {req.id} already has its {req.reviews_required} reviewers",
                reason="reviews_full",
            )
        review = OutputReview(
            request_id=req.id, round=req.round, reviewer_id=actor.user_id, assigned_at=now
        )
        s.add(review)
        req.state = RequestState.UNDER_REVIEW.value
        s.flush()
        self._audit(
            s,
            actor,
            events.OutputReviewTaken(request_id=req.id, round=req.round, reviewer_id=actor.user_id),
            now,
        )
        return review

    def take_review(self, actor: Actor, request_id: int, *, now: datetime) -> OutputRequestView:
        """A checker takes one of the request's reviews (refused: author, member, twice, full)."""

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            project = self._project(s, req.project_id)
            self._take(s, actor, req, project, now)
            return self._view(s, actor, req, project)

        return self._run("review", actor, request_id, now, go)

    def decide_review(
        self,
        actor: Actor,
        request_id: int,
        decision: ReviewDecision | str,
        *,
        comment: str | None = None,
        item_comments: Mapping[str, str] | None = None,
        now: datetime,
    ) -> OutputRequestView:
        """Record the checker's decision (taking a review first if needed); settle the round."""

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            project = self._project(s, req.project_id)
            try:
                choice = ReviewDecision(decision)
            except ValueError:
                raise InvalidInput(
                    f"unknown decision {decision!r}",
                    reason="bad_decision",
                    hint="Decide approve, return or reject.",
                ) from None
            require(decide(actor, Action.REVIEW_OUTPUT, self._target(req, project), now=now))
            mine = [r for r in self._round_reviews(req) if r.reviewer_id == actor.user_id]
            if mine and mine[0].decision is not None:
                raise Conflict(
                    f"you already decided on output request {req.id} in round {req.round}; "
                    "a second review by the same person does not count",
                    reason="second_review",
                )
            text = _optional_text(comment, "comment")
            if choice is not ReviewDecision.APPROVE and text is None:
                raise InvalidInput(
                    f"a decision to {choice.value} needs a comment for the author",
                    reason="comment_required",
                    hint="Say what must change, or why the outputs cannot be released.",
                )
            names = {i.name for i in req.items}
            per_item = dict(item_comments or {})
            unknown = sorted(set(per_item) - names)
            if unknown:
                raise InvalidInput(
                    f"comments name items that are not in request {req.id}: {', '.join(unknown)}",
                    reason="unknown_item",
                )
            review = mine[0] if mine else self._take(s, actor, req, project, now)
            review.decision = choice.value
            review.comment = text
            review.item_comments = json.dumps(
                {k: _text(v, f"comment on {k}", MAX_TEXT) for k, v in per_item.items()}
            )
            review.decided_at = now
            s.flush()
            self._audit(
                s,
                actor,
                events.OutputReviewDecided(
                    request_id=req.id,
                    round=req.round,
                    reviewer_id=actor.user_id,
                    decision=choice.value,
                ),
                now,
            )
            s.refresh(req)
            self._settle(s, actor, req, now)
            return self._view(s, actor, req, project)

        return self._run("decide", actor, request_id, now, go)

    def _settle(self, s: Session, actor: Actor, req: OutputRequest, now: datetime) -> None:
        """Two matching decisions settle a round; a disagreement asks for a third review, and
        three reviews settle by majority (no majority: returned to the author)."""
        reviews = self._round_reviews(req)
        decided = [r for r in reviews if r.decision is not None]
        if len(decided) < req.reviews_required:
            return
        votes = [ReviewDecision(r.decision) for r in decided if r.decision is not None]
        result = rules.outcome(votes)
        if result is None:
            return
        if result == rules.THIRD_REVIEW:
            req.reviews_required = 3
            self._audit(
                s,
                actor,
                events.OutputThirdReviewNeeded(
                    request_id=req.id, round=req.round, decisions=tuple(v.value for v in votes)
                ),
                now,
            )
            return
        state = RequestState(result)
        req.state = state.value
        req.updated_at = now
        self._audit(
            s,
            actor,
            events.OutputRequestDecided(
                request_id=req.id,
                round=req.round,
                state=state.value,
                reviewer_ids=tuple(r.reviewer_id for r in decided),
            ),
            now,
        )

    # --- admin: reassign --------------------------------------------------------------------

    def reassign(
        self,
        actor: Actor,
        request_id: int,
        *,
        from_user_id: int,
        to_user_id: int,
        reason: str,
        now: datetime,
    ) -> OutputRequestView:
        """An admin moves an undecided review to another independent checker."""

        def go(s: Session) -> OutputRequestView:
            require(decide(actor, Action.REASSIGN_REVIEW, g.SYSTEM, now=now))
            why = _text(reason, "reason", MAX_TITLE)
            req = self._request(s, request_id, lock=True)
            project = self._project(s, req.project_id)
            if not RequestState(req.state).in_review:
                raise Conflict(
                    f"output request {req.id} is {req.state}, not in review", reason="not_in_review"
                )
            reviews = self._round_reviews(req)
            review = next((r for r in reviews if r.reviewer_id == from_user_id), None)
            if review is None:
                raise NotFound(f"user {from_user_id} holds no review of request {req.id}")
            if review.decision is not None:
                raise Conflict(
                    f"user {from_user_id} already decided; a decided review cannot be reassigned",
                    reason="review_decided",
                )
            try:
                target = g.load_actor(s, to_user_id)
            except Unauthenticated:
                raise Conflict(
                    f"user {to_user_id} does not exist or is disabled", reason="bad_reviewer"
                ) from None
            verdict = decide(target, Action.REVIEW_OUTPUT, self._target(req, project), now=now)
            if not verdict:
                raise Conflict(
                    f"user {to_user_id} cannot review request {req.id}: {verdict.reason}",
                    reason="bad_reviewer",
                )
            if any(r.reviewer_id == to_user_id for r in reviews):
                raise Conflict(
                    f"user {to_user_id} already reviews request {req.id} in this round",
                    reason="second_review",
                )
            review.reviewer_id = to_user_id
            review.assigned_at = now
            s.flush()
            self._audit(
                s,
                actor,
                events.OutputReviewReassigned(
                    request_id=req.id,
                    round=req.round,
                    from_user_id=from_user_id,
                    to_user_id=to_user_id,
                    reason=why,
                ),
                now,
            )
            return self._view(s, actor, req, project)

        return self._run("reassign", actor, request_id, now, go)

    # --- release and download -----------------------------------------------------------------

    def release(self, actor: Actor, request_id: int, *, now: datetime) -> OutputRequestView:
        """An independent checker releases an approved request: writes the bundle."""
        written: list[Path] = []

        def go(s: Session) -> OutputRequestView:
            req = self._request(s, request_id, lock=True)
            project = self._project(s, req.project_id)
            require(decide(actor, Action.REVIEW_OUTPUT, self._target(req, project), now=now))
            approvals = [
                r
                for r in self._round_reviews(req)
                if r.decision == ReviewDecision.APPROVE.value and r.reviewer_id != req.author_id
            ]
            approvers = sorted({r.reviewer_id for r in approvals})
            if req.state != RequestState.APPROVED.value or len(approvers) < 2:
                raise Conflict(
                    f"output request {req.id} is {req.state} with {len(approvers)} approval(s); "
                    "release needs two approvals by independent output checkers",
                    reason="not_approved",
                )
            view = self._view(s, actor, req, project)
            contents = {i.name: self.store.read(req.id, i.sha256) for i in view.items}
            reviewers = [r for r in view.reviews if r.decision is not None]
            ids = {req.author_id, actor.user_id, *(r.reviewer_id for r in reviewers)}
            rows = s.execute(sa.select(User.id, User.username).where(User.id.in_(ids)))
            names = {int(uid): str(username) for uid, username in rows}
            facts = BundleFacts(
                released_by=actor.user_id,
                released_at=now,
                usernames=names,
                project_title=project.title,
            )
            data = build_bundle(view, reviewers, contents, facts)
            path = self.store.bundle_path(req.id)
            self.store.write_private(path, data)
            written.append(path)
            digest = files.sha256_bytes(data)
            req.state = RequestState.RELEASED.value
            req.released_at = now
            req.released_by = actor.user_id
            req.bundle_sha256 = digest
            req.updated_at = now
            self._audit(
                s,
                actor,
                events.OutputReleased(
                    request_id=req.id,
                    project_id=req.project_id,
                    bundle_sha256=digest,
                    files=tuple(i.name for i in view.items),
                    approver_ids=tuple(approvers),
                ),
                now,
            )
            return self._view(s, actor, req, project)

        try:
            return self._run("release", actor, request_id, now, go)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise

    def download(self, actor: Actor, request_id: int, *, now: datetime) -> Download:
        """A released bundle for a member of its project; every download is audited."""

        def go(s: Session) -> Download:
            req = self._request(s, request_id)
            project = self._project(s, req.project_id)
            require(decide(actor, Action.DOWNLOAD_OUTPUT, project, now=now))
            if req.state != RequestState.RELEASED.value or req.bundle_sha256 is None:
                raise Conflict(
                    f"output request {req.id} is {req.state}; only released requests download",
                    reason="not_released",
                )
            path = self.store.bundle_path(req.id)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise NotFound(f"the bundle of output request {req.id} is missing") from None
            if files.sha256_bytes(data) != req.bundle_sha256:
                raise InvalidInput(
                    f"the bundle of output request {req.id} does not match its checksum",
                    reason="file_corrupted",
                    hint="The stored bundle was changed on disk; ask an administrator.",
                )
            self._audit(
                s,
                actor,
                events.OutputDownloaded(
                    request_id=req.id,
                    project_id=req.project_id,
                    user_id=actor.user_id,
                    bundle_sha256=req.bundle_sha256,
                ),
                now,
            )
            return Download(
                request_id=req.id,
                path=path,
                filename=path.name,
                sha256=req.bundle_sha256,
                size=len(data),
            )

        return self._run("download", actor, request_id, now, go)


# --- helpers --------------------------------------------------------------------------------


def _text(value: str, what: str, limit: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(f"the {what} is empty", reason=f"{what.split()[0]}_required")
    if len(text) > limit:
        raise InvalidInput(
            f"the {what} is {len(text)} characters long; at most {limit}", reason="text_too_long"
        )
    return text


def _optional_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    return _text(value, what, MAX_TEXT)


def _dp_query_cost(s: Session, project_id: int, query_id: str) -> float | None:
    """ρ of the DP query `query_id` answered for this project, from the audit log; else None.

    A table's claim to be a DP query result lifts the count-based SDC rules, so it must rest
    on the record of tre's query engine (its `query.answered` event), not on the file.
    """
    needle = '"query_id":' + json.dumps(query_id, ensure_ascii=False)  # as canonical_json writes
    rows = s.execute(
        sa.select(AuditEventRow.payload)
        .where(AuditEventRow.event_type == "query.answered")
        .where(AuditEventRow.payload.contains(needle, autoescape=True))
    ).scalars()
    for raw in rows:
        payload = json.loads(raw)
        if (
            payload.get("query_id") == query_id
            and payload.get("project_id") == project_id
            and payload.get("mode") == "dp"
        ):
            return float(payload["rho"])
    return None


def _kind(kind: ItemKind | str) -> ItemKind:
    try:
        return ItemKind(kind)
    except ValueError:
        raise InvalidInput(
            f"unknown item kind {kind!r}",
            reason="bad_kind",
            hint=f"Use one of: {', '.join(k.value for k in ItemKind)}.",
        ) from None


def _item(req: OutputRequest, name: str) -> OutputItem:
    for item in req.items:
        if item.name == name:
            return item
    raise NotFound(f"output request {req.id} has no item named {name!r}")


def _item_view(item: OutputItem) -> ItemView:
    return ItemView(
        name=item.name,
        kind=ItemKind(item.kind),
        media=item.media,
        size=item.size,
        sha256=item.sha256,
        context=item.context,
        exception=item.exception,
        underlying=item.underlying,
        provenance=Provenance.model_validate_json(item.provenance) if item.provenance else None,
        check=CheckResult.model_validate_json(item.check_report),
        added_at=item.added_at,
    )


def _review_view(r: OutputReview, *, hidden: bool) -> ReviewView:
    if hidden:
        return ReviewView(
            id=r.id,
            round=r.round,
            reviewer_id=r.reviewer_id,
            assigned_at=r.assigned_at,
            decided=r.decision is not None,
            hidden=True,
        )
    return ReviewView(
        id=r.id,
        round=r.round,
        reviewer_id=r.reviewer_id,
        assigned_at=r.assigned_at,
        decided=r.decision is not None,
        hidden=False,
        decision=ReviewDecision(r.decision) if r.decision else None,
        comment=r.comment,
        item_comments=json.loads(r.item_comments) if r.item_comments else {},
        decided_at=r.decided_at,
    )
