"""The audit commands: verify the hash chain, list events."""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from tre import audit
from tre import governance as g
from tre.cli.governance import _database, fail, run_as
from tre.errors import UserError

audit_app = typer.Typer(help="The tamper-evident audit log: verify the chain, list events.")
out = Console()


@audit_app.command("verify")
def verify(
    anchor: str | None = typer.Option(
        None,
        "--anchor",
        help="SEQ:HASH printed by an earlier verify and kept outside the database: also "
        "detects a log rewritten from scratch.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Recompute the audit chain; exit 1 and name the first bad event if anything was edited,
    deleted, inserted or reordered."""
    pair: tuple[int, str] | None = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise typer.BadParameter("expected SEQ:HASH, e.g. 120:3f5a…(64 hex digits)")
        pair = (int(seq), digest)
    try:
        with _database() as db, db.read() as s:
            result = audit.verify(s, anchor=pair)
    except UserError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(vars(result)))
    elif result.ok:
        out.print(f"audit log OK: {result.events_checked} events, chain intact")
        out.print(f"anchor (keep it elsewhere): {result.head_seq}:{result.head_hash}")
    else:
        typer.secho(
            f"audit log BROKEN at event {result.first_bad_seq}: {result.problem}",
            fg="red",
            err=True,
        )
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("list")
def list_events(
    after: int = typer.Option(0, "--after", min=0, help="Show events after this seq."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="At most this many."),
    event_type: str | None = typer.Option(
        None, "--type", help="Only this event type, e.g. budget.committed."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    as_user: str = typer.Option(..., "--as", envvar="TRE_USER", help="Act as this admin."),
) -> None:
    """List audit events, oldest first (admins)."""

    def read(s: Session, actor: g.Actor, now: datetime) -> list[audit.StoredEvent]:
        g.require(g.decide(actor, g.Action.READ_AUDIT, g.SYSTEM, now=now))
        return audit.read_events(s, after_seq=after, limit=limit, event_type=event_type)

    events = run_as(as_user, False, read)
    if as_json:
        for e in events:
            typer.echo(json.dumps(vars(e), sort_keys=True))
        return
    t = Table("seq", "time", "type", "actor", "payload")
    for e in events:
        t.add_row(str(e.seq), e.occurred_at, e.event_type, e.actor, json.dumps(e.payload))
    out.print(t)


def register(app: typer.Typer) -> None:
    """Add the audit commands to the CLI."""
    app.add_typer(audit_app, name="audit")
