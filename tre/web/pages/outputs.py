"""Output requests: the researcher's list and request page (add items, submit, download) and
the output checker's queue and review page (blind two-person review, release)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from tre import governance as g
from tre.errors import InvalidInput, UserError
from tre.outputs import ItemKind, OutputLimits, OutputRequestView, RequestState
from tre.outputs import files as output_files
from tre.web.common import outputs, people
from tre.web.console import Form, Svc, Who, field_errors, redirect, render

ITEM_FIELDS = {
    "bad_item_name": "name",
    "item_exists": "name",
    "bad_extension": "file",
    "too_large": "file",
    "file": "file",
    "bad_table": "file",
    "identifier": "file",
    "underlying": "underlying",
    "bad_underlying": "underlying",
    "context": "context",
    "exception": "exception",
    "bad_count": "count_column",
    "bad_kind": "kind",
    "empty_file": "file",
    "too_many_rows": "file",
    "bad_text": "file",
    "comment": "comment",
}
INLINE_MEDIA = {"png": "image/png", "pdf": "application/pdf"}


def _table(view: OutputRequestView, name: str, content: bytes) -> dict[str, Any] | None:
    """A table item as columns and rows, with its flagged cells, for display."""
    item = next(i for i in view.items if i.name == name)
    try:
        table = output_files.read_table(name, "." + item.media, content, OutputLimits())
    except UserError:
        return None
    flagged: dict[tuple[int, int], list[str]] = {}
    for rule, cells in item.check.cells.items():
        for row, col in cells:
            flagged.setdefault((row, col), []).append(rule)
    return {"columns": table.columns, "rows": table.rows[:500], "flagged": flagged}


def _contents(svc: Svc, who: Who, view: OutputRequestView) -> dict[str, dict[str, Any] | None]:
    service = outputs(svc)
    out: dict[str, dict[str, Any] | None] = {}
    for item in view.items:
        if item.kind is ItemKind.TABLE:
            _, content = service.item_content(who.actor, view.id, item.name, now=svc.clock())
            out[item.name] = _table(view, item.name, content)
    return out


def register(router: APIRouter) -> None:
    """Add the output-request pages."""

    @router.get("/outputs")
    def my_outputs(request: Request, who: Who, svc: Svc) -> Response:
        """The visitor's projects' output requests and a form to start one."""
        who.require(g.Role.RESEARCHER, "My output requests")
        now = svc.clock()
        with svc.db.read() as s:
            projects = [
                p
                for p in g.list_projects(s, who.actor, now=now)
                if who.actor.user_id in p.member_ids
            ]
        mine = {p.id for p in projects}
        requests = [
            r for r in outputs(svc).list_requests(who.actor, now=now) if r.project_id in mine
        ]
        usable = [p for p in projects if g.decide(who.actor, g.Action.USE_PROJECT, p, now=now)]
        return render(
            request,
            "outputs.html",
            title="My output requests",
            visitor=who,
            requests=requests,
            projects=usable,
            errors={},
            values={},
        )

    @router.post("/outputs")
    def create(request: Request, who: Who, svc: Svc, data: Form) -> Response:
        """Start a draft output request."""
        who.require(g.Role.RESEARCHER, "Output requests")
        try:
            project_id = int(str(data.get("project_id") or "0"))
        except ValueError:
            project_id = 0
        view = outputs(svc).create_request(
            who.actor, project_id, title=str(data.get("title") or ""), now=svc.clock()
        )
        return redirect(f"/outputs/{view.id}", "Draft created: add your outputs, then submit.")

    def request_page(
        request: Request,
        who: Who,
        svc: Svc,
        request_id: int,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        view = outputs(svc).get_request(who.actor, request_id, now=svc.clock())
        with svc.db.read() as s:
            names = people(s, {view.author_id, *(r.reviewer_id for r in view.reviews)})
        return render(
            request,
            "output.html",
            title=f"Output request {view.id}: {view.title}",
            visitor=who,
            status=422 if errors else 200,
            r=view,
            names=names,
            tables=_contents(svc, who, view),
            author=view.author_id == who.actor.user_id,
            kinds=[k.value for k in ItemKind],
            errors=errors or {},
            values=values or {},
        )

    @router.get("/outputs/{request_id}")
    def request_view(request: Request, request_id: int, who: Who, svc: Svc) -> Response:
        """An output request as its author and project members see it."""
        return request_page(request, who, svc, request_id)

    @router.post("/outputs/{request_id}/items")
    def add_item(request: Request, request_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Upload one output (gated and checked at once); problems shown next to fields."""
        values = {k: v for k, v in data.items() if isinstance(v, str)}
        upload = data.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return request_page(
                request, who, svc, request_id, {"file": "Choose a file to upload."}, values
            )
        content = upload.file.read(OutputLimits().max_file_bytes + 1)
        name = values.get("name", "").strip() or (upload.filename or "")
        try:
            outputs(svc).add_item(
                who.actor,
                request_id,
                name=name,
                kind=values.get("kind", ""),
                content=content,
                context=values.get("context", ""),
                exception=values.get("exception", "").strip() or None,
                underlying=values.get("underlying", "").strip() or None,
                count_column=values.get("count_column", "").strip() or None,
                now=svc.clock(),
            )
        except UserError as exc:
            if exc.status in (403, 404):
                raise
            return request_page(
                request, who, svc, request_id, field_errors(exc, ITEM_FIELDS), values
            )
        return redirect(f"/outputs/{request_id}", f"Added {name}.")

    @router.post("/outputs/{request_id}/submit")
    def submit(request: Request, request_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Send the request to the output checkers."""
        outputs(svc).submit(who.actor, request_id, now=svc.clock())
        return redirect(f"/outputs/{request_id}", "Submitted to the output checkers.")

    @router.post("/outputs/{request_id}/withdraw")
    def withdraw(request: Request, request_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Withdraw the request."""
        outputs(svc).withdraw(who.actor, request_id, now=svc.clock())
        return redirect(f"/outputs/{request_id}", "Withdrawn.")

    @router.get("/outputs/{request_id}/items/{name}")
    def item(request: Request, request_id: int, name: str, who: Who, svc: Svc) -> Response:
        """An item's file (figures inline for the review page; others as a download)."""
        view, content = outputs(svc).item_content(who.actor, request_id, name, now=svc.clock())
        media = INLINE_MEDIA.get(view.media)
        disposition = "inline" if media else "attachment"
        return Response(
            content,
            media_type=media or "application/octet-stream",
            headers={
                "Content-Disposition": f'{disposition}; filename="{view.name}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    @router.get("/outputs/{request_id}/bundle")
    def download(request: Request, request_id: int, who: Who, svc: Svc) -> Response:
        """The released bundle (members of the project; every download is audited)."""
        d = outputs(svc).download(who.actor, request_id, now=svc.clock())
        return Response(
            d.path.read_bytes(),
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="{d.filename}"',
                "X-Checksum-SHA256": d.sha256,
                "Cache-Control": "no-store",
            },
        )

    # --- output checkers ----------------------------------------------------------------------

    @router.get("/review")
    def queue(request: Request, who: Who, svc: Svc) -> Response:
        """The review queue, oldest first, and approved requests waiting for release."""
        who.require(g.Role.OUTPUT_CHECKER, "The review queue")
        now = svc.clock()
        service = outputs(svc)
        entries = service.queue(who.actor, now=now)
        approved = [
            r
            for r in service.list_requests(who.actor, now=now)
            if r.state is RequestState.APPROVED
            and g.decide(
                who.actor,
                g.Action.REVIEW_OUTPUT,
                g.OutputReviewTarget(
                    project_id=r.project_id, author_id=r.author_id, project_member_ids=frozenset()
                ),
                now=now,
            )
        ]
        return render(
            request,
            "queue.html",
            title="Review queue",
            visitor=who,
            entries=entries,
            approved=approved,
        )

    @router.get("/review/{request_id}")
    def review_page(request: Request, request_id: int, who: Who, svc: Svc) -> Response:
        """Everything a checker needs to decide: verdicts, flagged cells, context, reviews."""
        who.require(g.Role.OUTPUT_CHECKER, "Reviewing outputs")
        now = svc.clock()
        view = outputs(svc).get_request(who.actor, request_id, now=now)
        with svc.db.read() as s:
            project = g.get_project(s, who.actor, view.project_id, now=now)
            names = people(s, {view.author_id, *(r.reviewer_id for r in view.reviews)})
        target = g.OutputReviewTarget(
            project_id=view.project_id,
            author_id=view.author_id,
            project_member_ids=project.member_ids | {project.lead_id},
        )
        verdict = g.decide(who.actor, g.Action.REVIEW_OUTPUT, target, now=now)
        mine = next((r for r in view.reviews if r.reviewer_id == who.actor.user_id), None)
        return render(
            request,
            "review.html",
            title=f"Review output request {view.id}: {view.title}",
            visitor=who,
            r=view,
            project=project,
            names=names,
            tables=_contents(svc, who, view),
            may_review=bool(verdict),
            refusal=verdict.reason,
            mine=mine,
        )

    @router.post("/review/{request_id}/decide")
    def decide(request: Request, request_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Record this checker's decision (blind to the other reviewer's until both are in)."""
        choice = str(data.get("decision") or "")
        comment = str(data.get("comment") or "").strip() or None
        if choice not in ("approve", "return", "reject"):
            raise InvalidInput(
                "choose approve, request changes or reject",
                reason="bad_decision",
                hint="Pick one of the three decisions.",
            )
        view = outputs(svc).decide_review(
            who.actor, request_id, choice, comment=comment, now=svc.clock()
        )
        return redirect(
            f"/review/{request_id}",
            f"Your decision is recorded; the request is now {view.state.value.replace('_', ' ')}.",
        )

    @router.post("/review/{request_id}/release")
    def release(request: Request, request_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Release an approved request: the bundle is written for the project's members."""
        outputs(svc).release(who.actor, request_id, now=svc.clock())
        return redirect(f"/review/{request_id}", "Released: the project's members can download it.")
