"""Admin and custodian commands: users, accreditation, datasets, applications, tokens.

These are local tools: they talk to the control-plane database named by the settings
(`TRE_DATABASE_URL`, default SQLite in `TRE_DATA_ROOT`) through the governance service layer,
acting as the user named by `--as` (or `TRE_USER`); every permission is still decided by
`tre.governance.decide` and every change is in the audit log.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NoReturn, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from tre import governance as g
from tre.catalog.catalog import Catalog
from tre.config import load_settings
from tre.db import Database, utcnow
from tre.errors import NotFound, UserError
from tre.governance.models import User
from tre.privacy import mechanisms
from tre.privacy.ledger import Ledger
from tre.wire.grant import Budget

T = TypeVar("T")
LEDGER = Ledger()
EPSILON_DELTA = 1e-6  # the δ at which ε is converted to and from ρ for people

users_app = typer.Typer(help="Accounts: create, list, disable/enable, roles, accreditation.")
datasets_app = typer.Typer(help="Datasets under governance: register from the catalogue, list.")
applications_app = typer.Typer(help="Project applications: list, show, decide (custodians).")
tokens_app = typer.Typer(help="API tokens: issue (shown once), list, revoke.")

AS_HELP = "Act as this user (default: $TRE_USER); permissions are checked as for them."
ActAs = typer.Option(..., "--as", envvar="TRE_USER", help=AS_HELP, show_envvar=True)
out = Console()


# --- plumbing -------------------------------------------------------------------------------


def fail(exc: UserError) -> NoReturn:
    """Print a user error readably and exit 2."""
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.echo(f"hint: {exc.hint}", err=True)
    raise typer.Exit(2)


@contextmanager
def _database() -> Iterator[Database]:
    db = Database.from_settings(load_settings())
    try:
        db.upgrade()  # a no-op at head; makes a fresh SQLite control plane usable at once
        yield db
    finally:
        db.dispose()


def _actor(s: Session, username: str) -> g.Actor:
    user_id = _user_id(s, username)
    return g.load_actor(s, user_id)


def _user_id(s: Session, username: str) -> int:
    uid = s.execute(sa.select(User.id).where(User.username == username)).scalar_one_or_none()
    if uid is None:
        raise NotFound(f"no user named {username!r}", hint="List users with `tre users list`.")
    return int(uid)


def run_as(username: str, write: bool, fn: Callable[[Session, g.Actor, datetime], T]) -> T:
    """Run `fn(session, actor, now)` in one transaction (or a read), printing user errors."""
    try:
        with _database() as db, db.transaction() if write else db.read() as s:
            return fn(s, _actor(s, username), utcnow())
    except UserError as exc:
        fail(exc)


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2026-03-31", param_hint=option
        ) from None


def _budget(rho: str | None, epsilon: float | None, delta: str, what: str) -> Budget | None:
    """A budget from --rho or --epsilon (converted at δ=1e-6 with OpenDP), plus --delta."""
    if rho is not None and epsilon is not None:
        raise typer.BadParameter(f"give the {what} as ρ or as ε, not both")
    try:
        d = Decimal(delta)
        if epsilon is not None:
            if epsilon <= 0:
                raise typer.BadParameter(f"the {what} ε must be positive")
            # Round the converted ρ down: a cap must never allow more than the ε asked for.
            r = Decimal(repr(mechanisms.epsilon_to_rho(epsilon, EPSILON_DELTA)))
            return Budget(rho=r.quantize(Decimal("1e-12"), rounding="ROUND_FLOOR"), delta=d)
        if rho is None:
            return None
        return Budget(rho=Decimal(rho), delta=d)
    except (InvalidOperation, ValueError) as exc:
        raise typer.BadParameter(f"bad {what}: {exc}") from None


def _users_table(users: list[g.UserView]) -> Table:
    t = Table("id", "username", "name", "roles", "accredited until", "disabled")
    for u in users:
        t.add_row(
            str(u.id),
            u.username,
            u.display_name,
            ", ".join(sorted(r.value for r in u.roles)),
            str(u.accredited_until or "—"),
            "yes" if u.disabled else "",
        )
    return t


def _password(prompt: bool) -> str | None:
    if not prompt:
        return None
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")  # scripted use: the password on stdin
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


# --- users ----------------------------------------------------------------------------------


@users_app.command("bootstrap")
def bootstrap(
    username: str = typer.Argument(..., help="The first admin's username."),
    display_name: str = typer.Option("Administrator", help="The admin's name."),
    email: str | None = typer.Option(None, help="Contact e-mail."),
    password: bool = typer.Option(
        False, "--password", help="Ask for a console password (read from stdin if piped)."
    ),
) -> None:
    """Create the first admin of a new TRE (migrates the database first); refused once any
    admin exists."""
    try:
        with _database() as db, db.transaction() as s:
            user = g.bootstrap_admin(
                s,
                username=username,
                display_name=display_name,
                email=email,
                password=_password(password),
                now=utcnow(),
            )
    except UserError as exc:
        fail(exc)
    out.print(f"created admin {user.username} (id {user.id})")


@users_app.command("create")
def create_user(
    username: str = typer.Argument(..., help="Login name: lower-case letters, digits, . _ -"),
    role: list[str] = typer.Option(
        ..., "--role", help="researcher, custodian, output_checker or admin (repeatable)."
    ),
    display_name: str | None = typer.Option(None, help="The person's name (default: username)."),
    email: str | None = typer.Option(None, help="Contact e-mail."),
    accredited_until: str | None = typer.Option(
        None, help="Researcher accreditation end date (inclusive), e.g. 2026-03-31."
    ),
    password: bool = typer.Option(
        False, "--password", help="Ask for a console password (read from stdin if piped)."
    ),
    as_user: str = ActAs,
) -> None:
    """Create an account (admins)."""
    until = _date(accredited_until, "--accredited-until")
    secret = _password(password)
    user = run_as(
        as_user,
        True,
        lambda s, actor, now: g.create_user(
            s,
            actor,
            username=username,
            display_name=display_name or username,
            roles=role,
            email=email,
            accredited_until=until,
            password=secret,
            now=now,
        ),
    )
    out.print(f"created user {user.username} (id {user.id})")


@users_app.command("list")
def list_users(as_user: str = ActAs) -> None:
    """List every account (admins)."""
    users = run_as(as_user, False, lambda s, actor, now: g.list_users(s, actor, now=now))
    out.print(_users_table(users))


def _by_name(
    username: str, fn: Callable[[Session, g.Actor, int, datetime], g.UserView]
) -> Callable[[Session, g.Actor, datetime], g.UserView]:
    return lambda s, actor, now: fn(s, actor, _user_id(s, username), now)


@users_app.command("disable")
def disable(
    username: str = typer.Argument(..., help="The account to disable."),
    reason: str = typer.Option(..., help="Why (recorded in the audit log)."),
    as_user: str = ActAs,
) -> None:
    """Disable an account: its sessions and tokens stop working at once (admins)."""
    user = run_as(
        as_user,
        True,
        _by_name(
            username, lambda s, a, uid, now: g.disable_user(s, a, uid, reason=reason, now=now)
        ),
    )
    out.print(f"disabled {user.username}")


@users_app.command("enable")
def enable(
    username: str = typer.Argument(..., help="The account to enable."), as_user: str = ActAs
) -> None:
    """Enable a disabled account (admins)."""
    user = run_as(
        as_user, True, _by_name(username, lambda s, a, uid, now: g.enable_user(s, a, uid, now=now))
    )
    out.print(f"enabled {user.username}")


@users_app.command("accredit")
def accredit(
    username: str = typer.Argument(..., help="The researcher."),
    until: str | None = typer.Option(
        None, "--until", help="Last day of accreditation (inclusive), e.g. 2026-03-31."
    ),
    remove: bool = typer.Option(False, "--remove", help="Remove the accreditation instead."),
    as_user: str = ActAs,
) -> None:
    """Set or remove a researcher's accreditation (admins); checked on every request."""
    if (until is None) == (not remove):
        raise typer.BadParameter("give either --until DATE or --remove")
    day = _date(until, "--until")
    user = run_as(
        as_user,
        True,
        _by_name(username, lambda s, a, uid, now: g.set_accreditation(s, a, uid, day, now=now)),
    )
    out.print(f"{user.username}: accredited until {user.accredited_until or '— (none)'}")


@users_app.command("roles")
def roles(
    username: str = typer.Argument(..., help="The account."),
    role: list[str] = typer.Option(..., "--role", help="The new roles (repeatable)."),
    as_user: str = ActAs,
) -> None:
    """Replace an account's roles (admins, not their own)."""
    user = run_as(
        as_user,
        True,
        _by_name(username, lambda s, a, uid, now: g.set_roles(s, a, uid, role, now=now)),
    )
    out.print(f"{user.username}: {', '.join(sorted(r.value for r in user.roles))}")


@users_app.command("password")
def password(
    username: str = typer.Argument(..., help="Whose console password to set."),
    as_user: str = ActAs,
) -> None:
    """Set a console password (your own, or anyone's as an admin); asked for, never echoed."""
    secret = _password(True) or ""

    def change(s: Session, actor: g.Actor, now: datetime) -> None:
        g.set_password(s, actor, _user_id(s, username), secret, now=now)

    run_as(as_user, True, change)
    out.print(f"password set for {username}")


# --- datasets -------------------------------------------------------------------------------


@datasets_app.command("register")
def register_dataset(
    name: str = typer.Argument(..., help="The dataset's catalogue name (published by ingest)."),
    custodian: list[str] = typer.Option(
        ..., "--custodian", help="Username of a custodian (repeatable)."
    ),
    cap_epsilon: float | None = typer.Option(
        None, "--cap-epsilon", help="Lifetime cap as ε (converted to ρ-zCDP at δ=1e-6)."
    ),
    cap_rho: str | None = typer.Option(None, "--cap-rho", help="Lifetime cap as ρ (zCDP)."),
    cap_delta: str = typer.Option(
        "1e-6", "--cap-delta", help="Lifetime δ for τ-thresholded group keys."
    ),
    title: str | None = typer.Option(None, help="Title (default: the catalogue's)."),
    as_user: str = ActAs,
) -> None:
    """Register a published catalogue dataset for governance, with custodians and a lifetime
    privacy-budget cap across all projects (admins)."""
    cap = _budget(cap_rho, cap_epsilon, cap_delta, "cap")
    if cap is None:
        raise typer.BadParameter("give the lifetime cap with --cap-epsilon or --cap-rho")
    try:
        dv = Catalog(load_settings().datasets_dir).get(name)
    except UserError as exc:
        fail(exc)

    def register(s: Session, actor: g.Actor, now: datetime) -> g.DatasetView:
        ids = [_user_id(s, c) for c in custodian]
        return g.register_dataset(
            s,
            actor,
            name=name,
            title=title or dv.title,
            custodian_ids=ids,
            cap=cap,
            budget=LEDGER,
            now=now,
        )

    view = run_as(as_user, True, register)
    out.print(f"registered {view.name} (v{dv.version} in the catalogue), cap {cap}")


@datasets_app.command("set-cap")
def set_cap(
    name: str = typer.Argument(..., help="The dataset."),
    cap_epsilon: float | None = typer.Option(None, "--cap-epsilon", help="New cap as ε."),
    cap_rho: str | None = typer.Option(None, "--cap-rho", help="New cap as ρ (zCDP)."),
    cap_delta: str = typer.Option("1e-6", "--cap-delta", help="New lifetime δ."),
    as_user: str = ActAs,
) -> None:
    """Change a dataset's lifetime cap (its custodians only)."""
    cap = _budget(cap_rho, cap_epsilon, cap_delta, "cap")
    if cap is None:
        raise typer.BadParameter("give the new cap with --cap-epsilon or --cap-rho")
    run_as(
        as_user,
        True,
        lambda s, actor, now: g.set_dataset_cap(s, actor, name, cap, budget=LEDGER, now=now),
    )
    out.print(f"{name}: cap {cap}")


@datasets_app.command("list")
def list_datasets() -> None:
    """List governed datasets with custodians, cap and spend, and unregistered catalogue ones."""
    settings = load_settings()
    published = set(Catalog(settings.datasets_dir).datasets())
    t = Table("dataset", "title", "custodians", "cap ρ", "spent ρ", "remaining ρ")
    try:
        with _database() as db, db.read() as s:
            names = {u.id: u.username for u in s.execute(sa.select(User)).scalars()}
            governed = g.list_datasets(s)
            for d in governed:
                c = LEDGER.cap(s, d.name)
                t.add_row(
                    d.name,
                    d.title,
                    ", ".join(sorted(names[i] for i in d.custodian_ids)),
                    str(c.cap.rho),
                    str(c.committed.rho),
                    str(c.remaining.rho),
                )
    except UserError as exc:
        fail(exc)
    for n in sorted(published - {d.name for d in governed}):
        t.add_row(n, "(not registered)", "", "", "", "")
    out.print(t)


# --- applications ---------------------------------------------------------------------------


def _project_table(projects: list[g.ProjectView], today: date) -> Table:
    t = Table("id", "title", "lead", "status", "datasets", "start", "end")
    for p in projects:
        t.add_row(
            str(p.id),
            p.title,
            str(p.lead_id),
            p.status(today).value,
            ", ".join(f"{r.dataset}:{r.state.value}" for r in p.requests),
            str(p.start_date),
            str(p.end_date),
        )
    return t


@applications_app.command("list")
def list_applications(
    pending: bool = typer.Option(
        False, "--pending", help="Only requests waiting for your decision as custodian."
    ),
    as_user: str = ActAs,
) -> None:
    """List the applications and projects you may see."""
    if pending:
        reqs = run_as(as_user, False, lambda s, a, now: g.pending_requests(s, a, now=now))
        t = Table("project", "dataset", "columns", "ρ asked", "δ asked")
        for r in reqs:
            t.add_row(
                str(r.project_id),
                r.dataset,
                ", ".join(r.columns),
                str(r.budget.rho),
                str(r.budget.delta),
            )
        out.print(t)
        return
    projects = run_as(as_user, False, lambda s, a, now: g.list_projects(s, a, now=now))
    out.print(_project_table(projects, utcnow().date()))


@applications_app.command("show")
def show_application(
    project_id: int = typer.Argument(..., help="The application / project id."),
    as_user: str = ActAs,
) -> None:
    """Show an application in full: purpose, legal basis, requests and decisions."""
    p = run_as(as_user, False, lambda s, a, now: g.get_project(s, a, project_id, now=now))
    out.print(f"[bold]#{p.id} {p.title}[/bold]  ({p.status(utcnow().date()).value})")
    for label, value in (
        ("lay summary", p.lay_summary),
        ("purpose", p.purpose),
        ("public benefit", p.public_benefit),
        (
            "legal basis",
            p.legal_basis.value + (f": {p.legal_basis_detail}" if p.legal_basis_detail else ""),
        ),
        ("dates", f"{p.start_date} to {p.end_date} (asked to {p.requested_end_date})"),
        ("lead / members", f"{p.lead_id} / {', '.join(map(str, sorted(p.member_ids)))}"),
        ("exact outputs", "asked" if p.exact_outputs else "no"),
    ):
        out.print(f"  {label}: {value}")
    t = Table("dataset", "columns", "budget asked", "decision", "reason")
    for r in p.requests:
        a = r.approval
        t.add_row(
            r.dataset, ", ".join(r.columns), str(r.budget), r.state.value, a.reason if a else ""
        )
    out.print(t)


@applications_app.command("decide")
def decide_application(
    project_id: int = typer.Argument(..., help="The application id."),
    dataset: str = typer.Argument(..., help="The requested dataset you are custodian of."),
    approve: bool = typer.Option(
        ..., "--approve/--reject", help="Approve or reject this dataset's request."
    ),
    reason: str = typer.Option(..., help="Why (shown to the applicant, recorded in the audit)."),
    columns: str | None = typer.Option(
        None, help="Approve only these columns (comma-separated; a subset of those asked)."
    ),
    rho: str | None = typer.Option(None, help="Approve less budget: ρ (zCDP)."),
    epsilon: float | None = typer.Option(None, help="Approve less budget: ε (at δ=1e-6)."),
    delta: str = typer.Option("0", help="δ of the approved budget (with --rho/--epsilon)."),
    end_date: str | None = typer.Option(None, help="Approve an earlier end date."),
    no_exact: bool = typer.Option(False, "--no-exact", help="Refuse exact (SDC) outputs."),
    version: int | None = typer.Option(None, help="Pin a published dataset version."),
    as_user: str = ActAs,
) -> None:
    """Approve (possibly narrowed) or reject one requested dataset of an application."""
    allowance = _budget(rho, epsilon, delta, "budget")
    until = _date(end_date, "--end-date")
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if approve:
        p = run_as(
            as_user,
            True,
            lambda s, a, now: g.approve_request(
                s,
                a,
                project_id,
                dataset,
                reason=reason,
                columns=cols,
                allowance=allowance,
                end_date=until,
                exact_outputs=False if no_exact else None,
                version=version,
                budget=LEDGER,
                now=now,
            ),
        )
    else:
        if any(x is not None for x in (cols, allowance, until, version)) or no_exact:
            raise typer.BadParameter("--reject takes only --reason")
        p = run_as(
            as_user,
            True,
            lambda s, a, now: g.reject_request(s, a, project_id, dataset, reason=reason, now=now),
        )
    out.print(
        f"project {p.id}: {dataset} {'approved' if approve else 'rejected'}; "
        f"project is {p.status(utcnow().date()).value}"
    )


# --- tokens ---------------------------------------------------------------------------------


@tokens_app.command("issue")
def issue_token(
    project: int = typer.Option(..., "--project", help="The project the token is for."),
    ttl_hours: float = typer.Option(12, help="Lifetime in hours (at most 720)."),
    label: str = typer.Option("cli", help="A label to recognise the token by."),
    as_user: str = ActAs,
) -> None:
    """Issue an API token for a project you may use; printed once, store it like a password."""
    issued = run_as(
        as_user,
        True,
        lambda s, a, now: g.issue_token(
            s, a, project, now=now, ttl=timedelta(hours=ttl_hours), label=label
        ),
    )
    typer.echo(issued.raw)
    typer.echo(
        f"token {issued.token.id} for project {project}, expires {issued.token.expires_at:%Y-%m-%d %H:%M} UTC",
        err=True,
    )


@tokens_app.command("list")
def list_tokens(as_user: str = ActAs) -> None:
    """List your tokens (ids and dates only, never the tokens)."""
    tokens = run_as(as_user, False, lambda s, a, now: g.list_tokens(s, a))
    t = Table("id", "project", "label", "created", "expires", "revoked")
    for k in tokens:
        t.add_row(
            k.id,
            str(k.project_id),
            k.label,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.expires_at:%Y-%m-%d %H:%M}",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    out.print(t)


@tokens_app.command("revoke")
def revoke_token(
    token_id: str = typer.Argument(..., help="The token's id (from `tre tokens list`)."),
    reason: str = typer.Option("revoked", help="Why (recorded in the audit log)."),
    as_user: str = ActAs,
) -> None:
    """Revoke a token (its owner or an admin); it stops working on the next request."""
    view = run_as(
        as_user, True, lambda s, a, now: g.revoke_token(s, a, token_id, reason=reason, now=now)
    )
    out.print(f"revoked token {view.id}")


def register(app: typer.Typer) -> None:
    """Add the governance commands to the CLI."""
    app.add_typer(users_app, name="users")
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(applications_app, name="applications")
    app.add_typer(tokens_app, name="tokens")
