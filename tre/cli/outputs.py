"""The output-request commands: `tre outputs ...`.

A local tool over the same service as the API (`tre.outputs.OutputService`): it opens the
control plane named by the settings and acts as the user named by `--as` (or `$TRE_USER`);
every permission is decided by `tre.governance.decide` as for that user, and every step and
every refusal is in the audit log.

Researchers: create, add, edit, remove, submit, withdraw, status, file, download.
Output checkers: queue, review, decide, release (and status/file to read a request).
Admins: reassign.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from tre import governance as g
from tre.config import load_settings
from tre.db import Database, utcnow
from tre.errors import NotFound, UserError
from tre.governance.models import User
from tre.outputs import (
    ItemKind,
    ItemUpdate,
    OutputLimits,
    OutputRequestView,
    OutputService,
    ReviewDecision,
)

T = TypeVar("T")
AS_HELP = "Act as this user (default: $TRE_USER); permissions are checked as for them."
ActAs = typer.Option(..., "--as", envvar="TRE_USER", help=AS_HELP, show_envvar=True)
JsonOut = typer.Option(False, "--json", help="Print JSON instead of a table.")
out = Console()

outputs_app = typer.Typer(
    help=(
        "Output requests: gather tables, figures, model summaries and text, submit them for "
        "two independent output checkers, release and download the approved bundle."
    ),
    no_args_is_help=True,
)


# --- plumbing -------------------------------------------------------------------------------


def _fail(exc: UserError) -> typer.Exit:
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.echo(f"hint: {exc.hint}", err=True)
    return typer.Exit(2)


@contextmanager
def _service() -> Iterator[tuple[Database, OutputService]]:
    settings = load_settings()
    db = Database.from_settings(settings)
    try:
        db.upgrade()  # a no-op at head
        yield db, OutputService(db, settings, OutputLimits())
    finally:
        db.dispose()


def _user_id(db: Database, username: str) -> int:
    with db.read() as s:
        uid = s.execute(sa.select(User.id).where(User.username == username)).scalar_one_or_none()
    if uid is None:
        raise NotFound(f"no user named {username!r}", hint="List users with `tre users list`.")
    return int(uid)


def _run(username: str, fn: Callable[[OutputService, g.Actor, Database], T]) -> T:
    """Run `fn(service, actor, db)` as `username`, turning user errors into exit code 2."""
    try:
        with _service() as (db, svc):
            uid = _user_id(db, username)
            with db.read() as s:
                actor = g.load_actor(s, uid)
            return fn(svc, actor, db)
    except UserError as exc:
        raise _fail(exc) from None


def _show(view: OutputRequestView, as_json: bool) -> None:
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
        return
    out.print(
        f"[bold]output request {view.id}[/bold] — {view.title}\n"
        f"project {view.project_id} · author {view.author_id} · state [bold]{view.state.value}"
        f"[/bold] · round {view.round} · preset {view.preset} · automatic checks "
        f"{view.check_status.value}"
    )
    items = Table("item", "kind", "size", "checks", "exception", "context")
    for i in view.items:
        items.add_row(
            i.name,
            i.kind.value + (f" of {i.underlying}" if i.underlying else ""),
            str(i.size),
            i.check.status.value,
            "requested" if i.exception else "",
            i.context if len(i.context) < 60 else i.context[:57] + "…",
        )
    out.print(items)
    if view.reviews:
        reviews = Table("reviewer", "decision", "comment")
        for r in view.reviews:
            if r.hidden:
                decision = "(hidden until both reviews are in)" if r.decided else "pending"
                reviews.add_row(str(r.reviewer_id), decision, "")
            else:
                decision = r.decision.value if r.decision else "pending"
                reviews.add_row(str(r.reviewer_id), decision, r.comment or "")
        out.print(reviews)
    if view.bundle_sha256:
        out.print(f"bundle sha256 {view.bundle_sha256}")


def _resolve(db: Database, who: str) -> int:
    return int(who) if who.isdigit() else _user_id(db, who)


# --- researcher -------------------------------------------------------------------------------


@outputs_app.command("create")
def create(
    project: int = typer.Option(..., "--project", help="The project's id."),
    title: str = typer.Option(..., "--title", help="What these outputs are."),
    preset: str | None = typer.Option(
        None, "--preset", help="Disclosure preset for the automatic checks (default: acro)."
    ),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Start a draft output request in a project you are a member of."""
    view = _run(
        username,
        lambda svc, actor, _db: svc.create_request(
            actor, project, title=title, preset=preset, now=utcnow()
        ),
    )
    _show(view, as_json)


@outputs_app.command("add")
def add(
    request_id: int = typer.Argument(..., help="The output request's id."),
    path: Path = typer.Argument(..., help="The file to add.", exists=True, dir_okay=False),
    kind: ItemKind = typer.Option(..., "--kind", help="table, figure, model or text."),
    context: str = typer.Option(
        ..., "--context", help="Context and controls: what it shows, population, protections."
    ),
    name: str | None = typer.Option(None, "--name", help="Item name (default: the file's)."),
    exception: str | None = typer.Option(
        None, "--exception", help="Ask for an exception: the justification."
    ),
    underlying: str | None = typer.Option(
        None, "--underlying", help="Figures: the table item it was drawn from."
    ),
    count_column: str | None = typer.Option(
        None, "--count-column", help="Tables: the column holding each row's count."
    ),
    n_obs: int | None = typer.Option(None, "--n-obs", help="Models: number of observations."),
    rank: int | None = typer.Option(None, "--rank", help="Models: rank of the design matrix."),
    replace: bool = typer.Option(False, "--replace", help="Replace an item of the same name."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Add a table, figure, model summary or text (gated and checked at once)."""
    content = path.read_bytes()
    view = _run(
        username,
        lambda svc, actor, _db: svc.add_item(
            actor,
            request_id,
            name=name or path.name,
            kind=kind,
            content=content,
            context=context,
            exception=exception,
            underlying=underlying,
            count_column=count_column,
            n_obs=n_obs,
            rank=rank,
            replace=replace,
            now=utcnow(),
        ),
    )
    _show(view, as_json)


@outputs_app.command("edit")
def edit(
    request_id: int = typer.Argument(..., help="The output request's id."),
    name: str = typer.Argument(..., help="The item's name."),
    context: str | None = typer.Option(None, "--context", help="New context and controls."),
    exception: str | None = typer.Option(None, "--exception", help="New exception request."),
    clear_exception: bool = typer.Option(
        False, "--clear-exception", help="Withdraw the exception request."
    ),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Change an item's context or exception request (resets reviews in progress)."""
    update = ItemUpdate(context=context, exception=exception, clear_exception=clear_exception)
    view = _run(
        username,
        lambda svc, actor, _db: svc.update_item(actor, request_id, name, update, now=utcnow()),
    )
    _show(view, as_json)


@outputs_app.command("remove")
def remove(
    request_id: int = typer.Argument(..., help="The output request's id."),
    name: str = typer.Argument(..., help="The item's name."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Take an item out of a request (resets reviews in progress)."""
    view = _run(
        username, lambda svc, actor, _db: svc.remove_item(actor, request_id, name, now=utcnow())
    )
    _show(view, as_json)


@outputs_app.command("submit")
def submit(
    request_id: int = typer.Argument(..., help="The output request's id."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Submit a draft or returned request to the output checkers."""
    view = _run(username, lambda svc, actor, _db: svc.submit(actor, request_id, now=utcnow()))
    _show(view, as_json)


@outputs_app.command("withdraw")
def withdraw(
    request_id: int = typer.Argument(..., help="The output request's id."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Withdraw your request (the author only)."""
    view = _run(username, lambda svc, actor, _db: svc.withdraw(actor, request_id, now=utcnow()))
    _show(view, as_json)


@outputs_app.command("status")
def status(
    request_id: int | None = typer.Argument(None, help="One request (default: list them)."),
    project: int | None = typer.Option(None, "--project", help="Only this project's requests."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Show a request (reviews blind where required), or list the requests you may see."""
    if request_id is not None:
        rid = request_id
        view = _run(username, lambda svc, actor, _db: svc.get_request(actor, rid, now=utcnow()))
        _show(view, as_json)
        return
    views = _run(
        username,
        lambda svc, actor, _db: svc.list_requests(actor, project_id=project, now=utcnow()),
    )
    if as_json:
        typer.echo(json.dumps([json.loads(v.model_dump_json()) for v in views], indent=2))
        return
    table = Table("id", "project", "title", "state", "round", "checks", "items")
    for v in views:
        table.add_row(
            str(v.id),
            str(v.project_id),
            v.title,
            v.state.value,
            str(v.round),
            v.check_status.value,
            str(len(v.items)),
        )
    out.print(table)


@outputs_app.command("file")
def file(
    request_id: int = typer.Argument(..., help="The output request's id."),
    name: str = typer.Argument(..., help="The item's name."),
    to: Path = typer.Option(..., "--to", help="Where to write the item's bytes."),
    username: str = ActAs,
) -> None:
    """Save one item's file (for its author, project members and independent checkers)."""
    item, content = _run(
        username, lambda svc, actor, _db: svc.item_content(actor, request_id, name, now=utcnow())
    )
    to.write_bytes(content)
    to.chmod(0o600)
    typer.echo(f"wrote {to} ({item.size} bytes, sha256 {item.sha256})")


@outputs_app.command("download")
def download(
    request_id: int = typer.Argument(..., help="The output request's id."),
    to: Path = typer.Option(
        Path("."), "--to", help="Folder (or file name) to save the bundle zip to."
    ),
    username: str = ActAs,
) -> None:
    """Download a released bundle (project members only; every download is audited)."""
    dl = _run(username, lambda svc, actor, _db: svc.download(actor, request_id, now=utcnow()))
    target = to / dl.filename if to.is_dir() else to
    shutil.copyfile(dl.path, target)
    target.chmod(0o600)
    typer.echo(f"wrote {target} ({dl.size} bytes, sha256 {dl.sha256})")


# --- output checker -------------------------------------------------------------------------


@outputs_app.command("queue")
def queue(username: str = ActAs, as_json: bool = JsonOut) -> None:
    """Requests you can take a review of, and the reviews you hold (output checkers)."""
    entries = _run(username, lambda svc, actor, _db: svc.queue(actor, now=utcnow()))
    if as_json:
        typer.echo(json.dumps([json.loads(e.model_dump_json()) for e in entries], indent=2))
        return
    table = Table("id", "project", "title", "state", "checks", "reviews", "yours")
    for e in entries:
        table.add_row(
            str(e.request_id),
            str(e.project_id),
            e.title,
            e.state.value,
            e.check_status.value,
            f"{e.reviews_taken}/{e.reviews_required}",
            "yes" if e.mine else "",
        )
    out.print(table)


@outputs_app.command("review")
def review(
    request_id: int = typer.Argument(..., help="The output request's id."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Take one of a request's reviews (independent output checkers only)."""
    view = _run(username, lambda svc, actor, _db: svc.take_review(actor, request_id, now=utcnow()))
    _show(view, as_json)


@outputs_app.command("decide")
def decide_cmd(
    request_id: int = typer.Argument(..., help="The output request's id."),
    decision: ReviewDecision = typer.Argument(..., help="approve, return or reject."),
    comment: str | None = typer.Option(
        None, "--comment", help="For the author (required to return or reject)."
    ),
    item_comment: list[str] = typer.Option(
        [], "--item-comment", help="NAME=TEXT: a comment on one item (repeatable)."
    ),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Record your decision on a request; two agreeing decisions settle it."""
    per_item: dict[str, str] = {}
    for entry in item_comment:
        item, sep, text = entry.partition("=")
        if not sep:
            raise typer.BadParameter(f"{entry!r} is not NAME=TEXT", param_hint="--item-comment")
        per_item[item] = text
    view = _run(
        username,
        lambda svc, actor, _db: svc.decide_review(
            actor, request_id, decision, comment=comment, item_comments=per_item, now=utcnow()
        ),
    )
    _show(view, as_json)


@outputs_app.command("release")
def release(
    request_id: int = typer.Argument(..., help="The output request's id."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Release an approved request: write its bundle (independent output checkers only)."""
    view = _run(username, lambda svc, actor, _db: svc.release(actor, request_id, now=utcnow()))
    _show(view, as_json)


# --- admin -------------------------------------------------------------------------------------


@outputs_app.command("reassign")
def reassign(
    request_id: int = typer.Argument(..., help="The output request's id."),
    from_user: str = typer.Option(..., "--from", help="The checker holding the review."),
    to_user: str = typer.Option(..., "--to", help="The checker taking it over."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
    username: str = ActAs,
    as_json: bool = JsonOut,
) -> None:
    """Move an undecided review to another independent checker (admins)."""
    view = _run(
        username,
        lambda svc, actor, db: svc.reassign(
            actor,
            request_id,
            from_user_id=_resolve(db, from_user),
            to_user_id=_resolve(db, to_user),
            reason=reason,
            now=utcnow(),
        ),
    )
    _show(view, as_json)


def register(app: typer.Typer) -> None:
    """Add the output-request commands to the CLI."""
    app.add_typer(outputs_app, name="outputs")
