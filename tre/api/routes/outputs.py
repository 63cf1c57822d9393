"""Output requests over HTTP: researchers gather, submit and download; checkers review and
release; admins reassign. A thin layer over `tre.outputs.OutputService` (docs/outputs.md).

Credentials: a console session reaches everything the account may do; a project token (a
researcher's notebook) reaches the researcher's side of its own project's requests — create,
add, edit, remove, submit, withdraw, read, download — never the checkers' or admins' side.
Every refusal is the canonical error body with its status, and is an `output.refused` audit
event: the service records its own; this module records those it decides itself (a token on
another project, a token where a session is needed, a nameless upload).

Blind reviews: responses are built from the service's views, which already hide what the
caller may not see; the conversion copies a hidden review's who and whether only.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import PurePath
from typing import Annotated, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import FileResponse, Response

from tre.api.deps import Caller, Now, Principal, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.api.state import Services
from tre.audit import record, user_actor
from tre.errors import Forbidden, InvalidInput, UserError
from tre.outputs import (
    ItemUpdate,
    ItemView,
    OutputRequestView,
    OutputService,
    QueueEntry,
    ReviewView,
)
from tre.outputs.events import OutputActionRefused
from tre.outputs.models import OutputRequest
from tre.wire._base import MAX_ID
from tre.wire.outputs import (
    ITEM_NAME_PATTERN,
    MAX_COUNT,
    MAX_TEXT_IN,
    MAX_TITLE_IN,
    CheckOut,
    DecisionIn,
    ItemFormIn,
    ItemKindName,
    ItemOut,
    ItemUpdateIn,
    OutputRequestIn,
    OutputRequestOut,
    ProvenanceOut,
    QueryTableIn,
    QueueEntryOut,
    ReassignIn,
    ResultDatasetOut,
    ReviewOut,
)

router = APIRouter(prefix="/outputs", tags=["outputs"], responses=ERROR_RESPONSES)
RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemName = Annotated[str, Path(pattern=ITEM_NAME_PATTERN)]

# What an item's bytes are served as (always as an attachment, never rendered in place).
MEDIA_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "png": "image/png",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/markdown",
}
_BINARY = {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}
_ZIP = {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}


def _service(svc: Services) -> OutputService:
    return OutputService(svc.db, svc.settings)


# --- refusals decided here (the service audits its own) ---------------------------------------


def _refuse(
    svc: Services, who: Principal, action: str, request_id: int | None, exc: UserError, at: datetime
) -> NoReturn:
    """Record the refusal as `output.refused` (as the service does), then raise it."""
    with svc.db.transaction() as s:
        record(
            s,
            OutputActionRefused(
                action=action,
                request_id=request_id,
                user_id=who.actor.user_id,
                reason=exc.reason,
                status=exc.status,
                message=exc.message[:1000],
            ),
            actor=user_actor(who.actor.user_id),
            now=at,
        )
    raise exc


def _session_only(
    svc: Services, who: Principal, action: str, request_id: int | None, at: datetime
) -> None:
    """Checkers' and admins' actions need a console session, never a project token."""
    try:
        who.require_session()
    except Forbidden as exc:
        _refuse(svc, who, action, request_id, exc, at)


def _in_scope(svc: Services, who: Principal, action: str, request_id: int, at: datetime) -> None:
    """A project token reaches only its own project's requests (unknown ids: the service's 404)."""
    if who.project_id is None:
        return
    with svc.db.read() as s:
        project_id = s.execute(
            sa.select(OutputRequest.project_id).where(OutputRequest.id == request_id)
        ).scalar_one_or_none()
    if project_id is None:
        return
    try:
        who.require_project(project_id)
    except Forbidden as exc:
        _refuse(svc, who, action, request_id, exc, at)


# --- views → wire ------------------------------------------------------------------------------


def item_out(i: ItemView) -> ItemOut:
    """One item with its checks and provenance."""
    p = i.provenance
    return ItemOut(
        name=i.name,
        kind=i.kind.value,
        media=i.media,
        size=i.size,
        sha256=i.sha256,
        context=i.context,
        exception=i.exception,
        underlying=i.underlying,
        provenance=None
        if p is None
        else ProvenanceOut(
            query_id=p.query_id,
            query=p.query,
            mode=p.mode,
            datasets=[ResultDatasetOut(name=n, version=v) for n, v in p.datasets],
            plan=list(p.plan),
            disclosure=p.disclosure,
        ),
        check=CheckOut(
            status=i.check.status.value,
            notes=list(i.check.notes),
            summary=dict(i.check.summary),
            cells={k: [list(c) for c in v] for k, v in i.check.cells.items()},
            report=i.check.report,
        ),
        added_at=i.added_at,
    )


def review_out(r: ReviewView) -> ReviewOut:
    """A review; a hidden one carries who holds it and whether it is decided, nothing else."""
    if r.hidden:
        return ReviewOut(
            id=r.id,
            round=r.round,
            reviewer_id=r.reviewer_id,
            assigned_at=r.assigned_at,
            decided=r.decided,
            hidden=True,
            decision=None,
            comment=None,
            item_comments={},
            decided_at=None,
        )
    return ReviewOut(
        id=r.id,
        round=r.round,
        reviewer_id=r.reviewer_id,
        assigned_at=r.assigned_at,
        decided=r.decided,
        hidden=False,
        decision=r.decision.value if r.decision is not None else None,
        comment=r.comment,
        item_comments=dict(r.item_comments),
        decided_at=r.decided_at,
    )


def request_out(v: OutputRequestView) -> OutputRequestOut:
    """An output request as the caller may see it."""
    return OutputRequestOut(
        id=v.id,
        project_id=v.project_id,
        author_id=v.author_id,
        title=v.title,
        state=v.state.value,
        preset=v.preset,
        round=v.round,
        reviews_required=v.reviews_required,
        check_status=v.check_status.value,
        items=[item_out(i) for i in v.items],
        reviews=[review_out(r) for r in v.reviews],
        created_at=v.created_at,
        updated_at=v.updated_at,
        submitted_at=v.submitted_at,
        released_at=v.released_at,
        bundle_sha256=v.bundle_sha256,
    )


def queue_out(q: QueueEntry) -> QueueEntryOut:
    """A queue entry."""
    return QueueEntryOut(
        request_id=q.request_id,
        project_id=q.project_id,
        title=q.title,
        state=q.state.value,
        round=q.round,
        submitted_at=q.submitted_at,
        check_status=q.check_status.value,
        reviews_taken=q.reviews_taken,
        reviews_required=q.reviews_required,
        mine=q.mine,
    )


# --- researchers ---------------------------------------------------------------------------------


@router.post("", response_model=OutputRequestOut, status_code=201)
def create(body: OutputRequestIn, who: Caller, svc: Svc, at: Now) -> OutputRequestOut:
    """Start a draft output request in a project you may use (session or that project's token)."""
    try:
        who.require_project(body.project_id)
    except Forbidden as exc:
        _refuse(svc, who, "create", None, exc, at)
    view = _service(svc).create_request(
        who.actor, body.project_id, title=body.title, preset=body.preset, now=at
    )
    return request_out(view)


@router.get("", response_model=list[OutputRequestOut])
def list_requests(
    who: Caller,
    svc: Svc,
    at: Now,
    project_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    mine: Annotated[bool, Query(description="only requests you wrote")] = False,
) -> list[OutputRequestOut]:
    """Output requests you may see, newest first (a project token: its project's only)."""
    if who.project_id is not None:
        if project_id is not None:
            try:
                who.require_project(project_id)
            except Forbidden as exc:
                _refuse(svc, who, "list", None, exc, at)
        project_id = who.project_id
    views = _service(svc).list_requests(who.actor, project_id=project_id, now=at)
    return [request_out(v) for v in views if not mine or v.author_id == who.actor.user_id]


@router.get("/queue", response_model=list[QueueEntryOut])
def queue(who: Caller, svc: Svc, at: Now) -> list[QueueEntryOut]:
    """Output checkers: requests you can take a review of, and those you hold undecided."""
    _session_only(svc, who, "queue", None, at)
    return [queue_out(q) for q in _service(svc).queue(who.actor, now=at)]


@router.get("/{request_id}", response_model=OutputRequestOut)
def get_request(request_id: RequestId, who: Caller, svc: Svc, at: Now) -> OutputRequestOut:
    """One request; other checkers' open reviews are hidden (blind review)."""
    _in_scope(svc, who, "view", request_id, at)
    return request_out(_service(svc).get_request(who.actor, request_id, now=at))


@router.post("/{request_id}/items", response_model=OutputRequestOut, status_code=201)
def add_item(
    request_id: RequestId,
    who: Caller,
    svc: Svc,
    at: Now,
    file: Annotated[UploadFile, File(description="the output file (csv, parquet, json, png, …)")],
    kind: Annotated[ItemKindName, Form()],
    context: Annotated[str, Form(max_length=MAX_TEXT_IN, description="context and controls")],
    name: Annotated[
        str | None,
        Form(max_length=MAX_TITLE_IN, description="item name; the file's name if omitted"),
    ] = None,
    exception: Annotated[
        str | None, Form(max_length=MAX_TEXT_IN, description="justification for an exception")
    ] = None,
    underlying: Annotated[
        str | None, Form(max_length=MAX_TITLE_IN, description="figures: their table item")
    ] = None,
    count_column: Annotated[str | None, Form(max_length=MAX_TITLE_IN)] = None,
    n_obs: Annotated[int | None, Form(ge=0, le=MAX_COUNT)] = None,
    rank: Annotated[int | None, Form(ge=0, le=MAX_COUNT)] = None,
    replace: Annotated[bool, Form()] = False,
) -> OutputRequestOut:
    """Upload one item (multipart): gated, checked automatically and stored (an edit: a request
    in review goes back to draft and its reviews stop counting)."""
    _in_scope(svc, who, "add_item", request_id, at)
    item_name = name if name is not None else PurePath(file.filename or "").name
    if not item_name:
        _refuse(
            svc,
            who,
            "add_item",
            request_id,
            InvalidInput(
                "the upload has no file name and no `name` field",
                reason="bad_item_name",
                hint="Send the file with a file name, or give the item a `name`.",
            ),
            at,
        )
    form = ItemFormIn(
        name=item_name,
        kind=kind,
        context=context,
        exception=exception,
        underlying=underlying,
        count_column=count_column,
        n_obs=n_obs,
        rank=rank,
        replace=replace,
    )
    service = _service(svc)
    # One byte over the limit is enough for the service to refuse the size; never read more.
    content = file.file.read(service.limits.max_file_bytes + 1)
    view = service.add_item(
        who.actor,
        request_id,
        name=form.name,
        kind=form.kind,
        content=content,
        context=form.context,
        exception=form.exception,
        underlying=form.underlying,
        count_column=form.count_column,
        n_obs=form.n_obs,
        rank=form.rank,
        replace=form.replace,
        now=at,
    )
    return request_out(view)


@router.post("/{request_id}/items/query-result", response_model=OutputRequestOut, status_code=201)
def add_query_table(
    request_id: RequestId, body: QueryTableIn, who: Caller, svc: Svc, at: Now
) -> OutputRequestOut:
    """Add a table that came from a tre query (the JSON `POST /query` returned): stored as that
    JSON, with its provenance (query, mode, dataset versions, plan, disclosure report)."""
    _in_scope(svc, who, "add_item", request_id, at)
    suffix = PurePath(body.name).suffix.lower()
    if suffix not in ("", ".json"):
        _refuse(
            svc,
            who,
            "add_item",
            request_id,
            InvalidInput(
                f"a query result is stored as JSON; the item name ends in {suffix!r}",
                reason="file_type_refused",
                hint="Name it with `.json`, or with no extension.",
            ),
            at,
        )
    name = body.name if suffix else f"{body.name}.json"
    content = json.dumps(body.result.model_dump(mode="json"), indent=1).encode("utf-8")
    view = _service(svc).add_item(
        who.actor,
        request_id,
        name=name,
        kind="table",
        content=content,
        context=body.context,
        exception=body.exception,
        count_column=body.count_column,
        replace=body.replace,
        now=at,
    )
    return request_out(view)


@router.patch("/{request_id}/items/{name}", response_model=OutputRequestOut)
def update_item(
    request_id: RequestId, name: ItemName, body: ItemUpdateIn, who: Caller, svc: Svc, at: Now
) -> OutputRequestOut:
    """Change an item's context or exception request (an edit: resets the round's reviews)."""
    _in_scope(svc, who, "update_item", request_id, at)
    update = ItemUpdate(
        context=body.context, exception=body.exception, clear_exception=body.clear_exception
    )
    return request_out(_service(svc).update_item(who.actor, request_id, name, update, now=at))


@router.delete("/{request_id}/items/{name}", response_model=OutputRequestOut)
def remove_item(
    request_id: RequestId, name: ItemName, who: Caller, svc: Svc, at: Now
) -> OutputRequestOut:
    """Take an item out (refused while a figure names it as its table)."""
    _in_scope(svc, who, "remove_item", request_id, at)
    return request_out(_service(svc).remove_item(who.actor, request_id, name, now=at))


@router.get(
    "/{request_id}/items/{name}/content",
    response_class=Response,
    responses={200: _BINARY},
)
def item_content(request_id: RequestId, name: ItemName, who: Caller, svc: Svc, at: Now) -> Response:
    """An item's file (checksum verified), for whoever may see the request."""
    _in_scope(svc, who, "read_item", request_id, at)
    item, data = _service(svc).item_content(who.actor, request_id, name, now=at)
    return Response(
        content=data,
        media_type=MEDIA_TYPES.get(item.media, "application/octet-stream"),
        headers={
            "Content-Disposition": f'attachment; filename="{item.name}"',
            "X-Content-Type-Options": "nosniff",
            "X-Content-SHA256": item.sha256,
            "Cache-Control": "no-store",
        },
    )


@router.post("/{request_id}/submit", response_model=OutputRequestOut)
def submit(request_id: RequestId, who: Caller, svc: Svc, at: Now) -> OutputRequestOut:
    """Send a draft or returned request to the output checkers (a new review round)."""
    _in_scope(svc, who, "submit", request_id, at)
    return request_out(_service(svc).submit(who.actor, request_id, now=at))


@router.post("/{request_id}/withdraw", response_model=OutputRequestOut)
def withdraw(request_id: RequestId, who: Caller, svc: Svc, at: Now) -> OutputRequestOut:
    """The author withdraws the request (not once rejected, released or withdrawn)."""
    _in_scope(svc, who, "withdraw", request_id, at)
    return request_out(_service(svc).withdraw(who.actor, request_id, now=at))


@router.get("/{request_id}/bundle", response_class=FileResponse, responses={200: _ZIP})
def download(request_id: RequestId, who: Caller, svc: Svc, at: Now) -> FileResponse:
    """The released bundle (zip), for current members of the project; every download is audited.
    `X-Content-SHA256` is the bundle's checksum as recorded at release."""
    _in_scope(svc, who, "download", request_id, at)
    bundle = _service(svc).download(who.actor, request_id, now=at)
    return FileResponse(
        bundle.path,
        media_type="application/zip",
        filename=bundle.filename,
        headers={"X-Content-SHA256": bundle.sha256, "Cache-Control": "no-store"},
    )


# --- output checkers and admins (console sessions) ----------------------------------------------


@router.post("/{request_id}/reviews", response_model=OutputRequestOut)
def take_review(request_id: RequestId, who: Caller, svc: Svc, at: Now) -> OutputRequestOut:
    """Take one of the request's reviews (an independent output checker; not the author, not
    a project member, not twice in a round)."""
    _session_only(svc, who, "review", request_id, at)
    return request_out(_service(svc).take_review(who.actor, request_id, now=at))


@router.post("/{request_id}/decision", response_model=OutputRequestOut)
def decide(
    request_id: RequestId, body: DecisionIn, who: Caller, svc: Svc, at: Now
) -> OutputRequestOut:
    """Approve, return or reject (taking a review first if you hold none); a comment is needed
    to return or reject. Two agreeing decisions settle the round."""
    _session_only(svc, who, "decide", request_id, at)
    view = _service(svc).decide_review(
        who.actor,
        request_id,
        body.decision,
        comment=body.comment,
        item_comments=body.item_comments,
        now=at,
    )
    return request_out(view)


@router.post("/{request_id}/release", response_model=OutputRequestOut)
def release(request_id: RequestId, who: Caller, svc: Svc, at: Now) -> OutputRequestOut:
    """Release an approved request (two approvals by independent checkers): writes the bundle."""
    _session_only(svc, who, "release", request_id, at)
    return request_out(_service(svc).release(who.actor, request_id, now=at))


@router.post("/{request_id}/reassign", response_model=OutputRequestOut)
def reassign(
    request_id: RequestId, body: ReassignIn, who: Caller, svc: Svc, at: Now
) -> OutputRequestOut:
    """Admins: move an undecided review to another independent checker, with a reason."""
    _session_only(svc, who, "reassign", request_id, at)
    view = _service(svc).reassign(
        who.actor,
        request_id,
        from_user_id=body.from_user_id,
        to_user_id=body.to_user_id,
        reason=body.reason,
        now=at,
    )
    return request_out(view)
