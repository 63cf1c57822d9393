"""`tre demo`: tre on its embedded defaults with a synthetic population, accounts and a project.

`setup_demo(settings)` is the idempotent part (a re-run reuses what exists): the custodian
key, ~5,000 synthetic people ingested as the three datasets, the migrated control plane,
demo accounts with random passwords (kept in `<data_root>/demo-credentials.json`, mode 0600,
so scripts and tests can log in), the datasets registered with lifetime caps, and one project
applied for by the demo researcher and approved by every custodian. `tre demo` then starts the
API (and JupyterHub unless `--no-hub`) on 127.0.0.1 and stops them all on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import typer
from rich.console import Console

from tre import governance as g
from tre.catalog.catalog import Catalog
from tre.catalog.keys import KeyStore
from tre.config import Settings, load_settings
from tre.db import Database, utcnow
from tre.errors import Conflict, InvalidInput
from tre.governance.models import User
from tre.privacy.ledger import Ledger
from tre.wire.grant import Budget

DATASETS = ("education", "health", "benefits")
KEY_NAME = "spine"  # the key every demo policy names
CREDENTIALS_FILE = "demo-credentials.json"
PROJECT_TITLE = "Childhood health, schooling and family income (demo)"
# Identifier and rank columns are never granted: nobody may output them.
_NOT_GRANTED = {"person_identifier", "direct_identifier", "rank"}


@dataclass(frozen=True)
class DemoAccount:
    """One demo login."""

    username: str
    display_name: str
    roles: tuple[str, ...]
    dataset: str | None = None  # the dataset a custodian looks after
    password: str = ""


ACCOUNTS = (
    DemoAccount("admin", "Demo Admin", ("admin",)),
    DemoAccount("dfe_custodian", "Dana (DfE data custodian)", ("custodian",), "education"),
    DemoAccount("nhs_custodian", "Nadia (NHS data custodian)", ("custodian",), "health"),
    DemoAccount("dwp_custodian", "Dev (DWP data custodian)", ("custodian",), "benefits"),
    DemoAccount("ada", "Ada (researcher, project lead)", ("researcher",)),
    DemoAccount("ben", "Ben (researcher)", ("researcher",)),
    DemoAccount("checker1", "Chris (output checker)", ("output_checker",)),
    DemoAccount("checker2", "Cleo (output checker)", ("output_checker",)),
)
LEAD, MEMBER = "ada", "ben"


@dataclass(frozen=True)
class DemoState:
    """What the demo set up: logins (with passwords), the project and where things listen."""

    accounts: tuple[DemoAccount, ...]
    project_id: int
    api_url: str
    hub_url: str | None = None
    datasets: tuple[str, ...] = DATASETS
    created: tuple[str, ...] = field(default=())  # what this run created (empty on a re-run)

    def password(self, username: str) -> str:
        """The demo password of `username`."""
        for a in self.accounts:
            if a.username == username:
                return a.password
        raise KeyError(username)

    def to_json(self) -> dict[str, object]:
        """The credentials file's content."""
        return {
            "api_url": self.api_url,
            "hub_url": self.hub_url,
            "project_id": self.project_id,
            "accounts": [asdict(a) for a in self.accounts],
        }


def credentials_path(settings: Settings) -> Path:
    """Where the demo keeps its logins (inside the data root, mode 0600)."""
    return settings.data_root / CREDENTIALS_FILE


def load_state(settings: Settings) -> DemoState:
    """The demo state written by `setup_demo` (InvalidInput if the demo was never set up)."""
    path = credentials_path(settings)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(
            f"no demo credentials at {path}", hint="Run `tre demo` (or `make demo`) first."
        ) from None
    return DemoState(
        accounts=tuple(DemoAccount(**{**a, "roles": tuple(a["roles"])}) for a in data["accounts"]),
        project_id=int(data["project_id"]),
        api_url=str(data["api_url"]),
        hub_url=data.get("hub_url"),
    )


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    # Write then rename: a reader never sees half a file, and the mode is 0600 from the start.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _passwords(settings: Settings) -> dict[str, str]:
    """Existing demo passwords (a re-run keeps them), else new random ones."""
    path = credentials_path(settings)
    if path.exists():
        data = json.loads(path.read_text())
        return {a["username"]: a["password"] for a in data["accounts"]}
    # Random per installation: a demo left running on a shared machine has no known password.
    return {a.username: f"demo-{secrets.token_urlsafe(9)}" for a in ACCOUNTS}


def ensure_data(
    settings: Settings, *, people: int, seed: int, console: Console, policy_dir: Path
) -> list[str]:
    """The custodian key, and every demo dataset synthesised and ingested unless published."""
    from tre.ingest.pipeline import IngestOptions, ingest
    from tre.synth import write_extracts

    created: list[str] = []
    _private_dir(settings.data_root)
    _private_dir(settings.key_dir)
    keys = KeyStore(settings.key_dir, settings.data_root)
    if not (settings.key_dir / f"{KEY_NAME}.key").exists():
        try:
            keys.create(KEY_NAME)
            created.append(f"key {KEY_NAME}")
        except Conflict:
            pass
    catalog = Catalog(settings.datasets_dir)
    missing = [d for d in DATASETS if not catalog.versions(d)]
    if not missing:
        return created
    # Raw extracts hold (synthetic) direct identifiers: keep them outside the data root, private.
    raw = settings.data_root.resolve().parent / "raw"
    _private_dir(raw)
    console.print(f"Synthesising {people:,} people ({', '.join(missing)}) …")
    write_extracts(raw, people=people, seed=seed, datasets=missing, force=True)
    for name in missing:
        console.print(f"Ingesting {name} …")
        ingest(
            raw / f"{name}.csv",
            policy_dir / "datasets" / f"{name}.yaml",
            datasets_dir=settings.datasets_dir,
            key_store=keys,
            options=IngestOptions(memory_limit="1GB", threads=2),
        )
        (raw / f"{name}.csv").unlink(missing_ok=True)
        created.append(f"dataset {name}")
    return created


def _user_id(s: sa.orm.Session, username: str) -> int | None:
    return s.execute(sa.select(User.id).where(User.username == username)).scalar_one_or_none()


def ensure_governance(
    db: Database, settings: Settings, passwords: dict[str, str]
) -> tuple[tuple[DemoAccount, ...], int, list[str]]:
    """Demo accounts, datasets registered with caps, and the approved demo project."""
    created: list[str] = []
    ledger = Ledger()
    now = utcnow()
    today = now.date()
    accounts = tuple(
        DemoAccount(a.username, a.display_name, a.roles, a.dataset, passwords[a.username])
        for a in ACCOUNTS
    )
    ids: dict[str, int] = {}
    with db.transaction() as s:
        admin_id = _user_id(s, "admin")
        if admin_id is None:
            admin_id = g.bootstrap_admin(
                s, username="admin", display_name="Demo Admin", password=passwords["admin"], now=now
            ).id
            created.append("account admin")
        admin = g.load_actor(s, admin_id)
        ids["admin"] = admin_id
        for a in accounts[1:]:
            uid = _user_id(s, a.username)
            if uid is None:
                uid = g.create_user(
                    s,
                    admin,
                    username=a.username,
                    display_name=a.display_name,
                    roles=a.roles,
                    accredited_until=today + timedelta(days=730)
                    if "researcher" in a.roles
                    else None,
                    password=a.password,
                    now=now,
                ).id
                created.append(f"account {a.username}")
            ids[a.username] = uid
        governed = {d.name for d in g.list_datasets(s)}
        for a in accounts:
            if a.dataset and a.dataset not in governed:
                g.register_dataset(
                    s,
                    admin,
                    name=a.dataset,
                    title=Catalog(settings.datasets_dir).get(a.dataset).title,
                    custodian_ids=[ids[a.username]],
                    cap=Budget(rho=Decimal(20), delta=Decimal("1e-5")),
                    budget=ledger,
                    now=now,
                )
                created.append(f"governance for {a.dataset} (custodian {a.username}, cap)")
        lead = g.load_actor(s, ids[LEAD])
        existing = [p for p in g.list_projects(s, lead, now=now) if p.title == PROJECT_TITLE]
    if existing:
        return accounts, existing[0].id, created
    catalog = Catalog(settings.datasets_dir)
    asks = tuple(
        g.DatasetAsk(
            dataset=d,
            columns=tuple(
                c.name for c in catalog.get(d).columns if c.column_class not in _NOT_GRANTED
            ),
            budget=Budget(rho=Decimal(2), delta=Decimal("1e-6")),
        )
        for d in DATASETS
    )
    application = g.Application(
        title=PROJECT_TITLE,
        lay_summary="How do childhood hospital admissions relate to school attainment and to "
        "family income, across local authorities?",
        purpose="Estimate attainment gaps by free-school-meals eligibility and by admission "
        "history, and hospital use by diagnosis chapter, age band and region.",
        public_benefit="Shows where joined-up support for children would help most.",
        legal_basis=g.LegalBasis.DEA_2017_PART_5,
        datasets=asks,
        member_ids=(ids[MEMBER],),
        start_date=today,
        end_date=today + timedelta(days=365),
    )
    with db.transaction() as s:
        project = g.apply(s, g.load_actor(s, ids[LEAD]), application, now=now)
        for a in accounts:
            if a.dataset:
                project = g.approve_request(
                    s,
                    g.load_actor(s, ids[a.username]),
                    project.id,
                    a.dataset,
                    reason="Demo: meets the access policy.",
                    budget=ledger,
                    now=now,
                )
    created.append(f"project {project.id}")
    return accounts, project.id, created


def setup_demo(
    settings: Settings,
    *,
    people: int = 5000,
    seed: int = 2024,
    api_url: str = "http://127.0.0.1:8000",
    hub_url: str | None = None,
    console: Console | None = None,
) -> DemoState:
    """Everything the demo needs before its servers start; a re-run changes nothing."""
    console = console or Console(stderr=True)
    policy_dir = settings.policy_dir
    created = ensure_data(
        settings, people=people, seed=seed, console=console, policy_dir=policy_dir
    )
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        passwords = _passwords(settings)
        accounts, project_id, made = ensure_governance(db, settings, passwords)
    finally:
        db.dispose()
    db_file = settings.data_root / "control.sqlite"
    for path in (
        db_file,
        db_file.with_name("control.sqlite-wal"),
        db_file.with_name("control.sqlite-shm"),
    ):
        if path.exists():
            os.chmod(path, 0o600)
    state = DemoState(
        accounts=accounts,
        project_id=project_id,
        api_url=api_url,
        hub_url=hub_url,
        created=tuple(created + made),
    )
    _write_private(credentials_path(settings), json.dumps(state.to_json(), indent=2))
    return state


# --- the running stack -------------------------------------------------------------------


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TRE_DATA_ROOT=str(settings.data_root.resolve()),
        TRE_KEY_DIR=str(settings.key_dir.resolve()),
        TRE_POLICY_DIR=str(settings.policy_dir.resolve()),
    )
    if settings.database_url:
        env["TRE_DATABASE_URL"] = settings.database_url
    return env


def start_api(settings: Settings, host: str, port: int) -> subprocess.Popen[bytes]:
    """The API server as a child process in its own process group."""
    return subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tre.api.app:app_from_environment",
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=_env(settings),
        start_new_session=True,
    )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200; fail if the process exits or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy within {timeout:.0f} s")


def stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop child process groups: SIGTERM, then SIGKILL after 10 s."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def hub_log(settings: Settings) -> Path:
    """Where the demo's JupyterHub writes its log."""
    return settings.data_root.resolve().parent / "hub" / "jupyterhub.log"


def web_console_url(api_url: str) -> str | None:
    """The web console's URL if the API serves one (under /console)."""
    import httpx

    try:
        r = httpx.get(f"{api_url}/console/login", timeout=5)
    except httpx.HTTPError:
        return None
    return f"{api_url}/console" if r.status_code < 400 else None


def print_welcome(
    console: Console, state: DemoState, settings: Settings, console_url: str | None = None
) -> None:
    """The URLs and the demo logins."""
    console.print()
    console.print(f"[bold]tre API[/]      {state.api_url}  (OpenAPI docs: {state.api_url}/docs)")
    if console_url:
        console.print(f"[bold]Web console[/]  {console_url}  (custodians, checkers, admins)")
    if state.hub_url:
        console.print(f"[bold]JupyterHub[/]   {state.hub_url}  (log in as a researcher)")
    console.print(f"Demo project {state.project_id}: {PROJECT_TITLE}")
    console.print("Logins (also in " + str(credentials_path(settings)) + ", mode 0600):")
    for a in state.accounts:
        console.print(f"  {a.username:<14} {a.password:<20} {', '.join(a.roles)}")
    console.print("Ctrl-C stops everything.")


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both stop the stack (a background start would ignore SIGINT)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _hub_can_confine_notebooks(console: Console) -> bool:
    """Whether to start the hub: only where notebooks' network rule can be installed, or on
    the explicit development opt-out (said loudly)."""
    from tre.hub.launch import UNRESTRICTED_EGRESS_VAR, egress_problem, unrestricted_egress

    problem = egress_problem()
    if problem is None:
        return True
    if unrestricted_egress():
        console.print(
            f"[bold red]{UNRESTRICTED_EGRESS_VAR} is set and {problem}: notebooks will be able "
            "to reach ANY host and every local service (PostgreSQL included). For development "
            "only.[/]"
        )
        return True
    console.print(
        f"[yellow]Starting without JupyterHub: {problem}, so notebooks could not be confined "
        f"to the tre API. Fix that, or for development only set "
        f"{UNRESTRICTED_EGRESS_VAR}=1.[/]"
    )
    return False


def demo(
    people: int = typer.Option(5000, min=100, max=200_000, help="Synthetic people to generate."),
    seed: int = typer.Option(2024, help="Seed of the synthetic population."),
    api_port: int = typer.Option(8000, min=1, max=65535, help="API port on 127.0.0.1."),
    hub_port: int = typer.Option(8001, min=1, max=65535, help="JupyterHub port on 127.0.0.1."),
    hub: bool = typer.Option(True, "--hub/--no-hub", help="Start JupyterHub too."),
    setup_only: bool = typer.Option(False, "--setup-only", help="Set up, print logins, exit."),
) -> None:
    """Set up demo data, accounts and a project, then run the API (and the hub) until Ctrl-C."""
    console = Console()
    settings = load_settings()
    if hub and os.geteuid() != 0:
        # LocalProcessSpawner switches to one system account per researcher, and the notebooks'
        # network rule is an nftables table: only root can do either.
        console.print(
            "[yellow]JupyterHub needs root here (one system user per researcher, and an "
            "nftables rule confining notebooks to the tre API); starting without it. "
            "Run `sudo make demo` for the notebook workspace.[/]"
        )
        hub = False
    if hub:
        hub = _hub_can_confine_notebooks(console)
    api_url = f"http://127.0.0.1:{api_port}"
    hub_url = f"http://127.0.0.1:{hub_port}" if hub else None
    state = setup_demo(
        settings, people=people, seed=seed, api_url=api_url, hub_url=hub_url, console=console
    )
    for what in state.created:
        console.print(f"  + {what}")
    if setup_only:
        print_welcome(console, state, settings)
        return
    procs: list[subprocess.Popen[bytes]] = []
    hub_layout = None
    _interrupt_on_signals()
    try:
        api = start_api(settings, "127.0.0.1", api_port)
        procs.append(api)
        wait_healthy(f"{api_url}/health", api)
        if hub:
            from tre.hub.launch import WORKSPACE_ENV, layout_for, start_hub
            from tre.hub.workspace import build_workspace_env, workspace_ready

            if not workspace_ready(WORKSPACE_ENV):
                console.print(f"Building the notebook environment in {WORKSPACE_ENV} (once) …")
                build_workspace_env(WORKSPACE_ENV)
            hub_layout = layout_for(settings, api_url=api_url, port=hub_port)
            hub_proc = start_hub(
                settings,
                api_url=api_url,
                port=hub_port,
                layout=hub_layout,
                log_path=hub_log(settings),
            )
            procs.append(hub_proc)
            wait_healthy(f"{hub_url}/hub/health", hub_proc, timeout=60)
        print_welcome(console, state, settings, web_console_url(api_url))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        console.print("[red]A server stopped unexpectedly; stopping the others.[/]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("Stopping …")
    finally:
        stop(procs)
        if hub_layout is not None:
            from tre.hub.egress import EgressError
            from tre.hub.launch import remove_network_rule

            try:
                remove_network_rule(hub_layout)
            except EgressError as exc:
                console.print(f"[yellow]{exc}[/]")


def register(app: typer.Typer) -> None:
    """Add the demo command to the CLI."""
    app.command("demo")(demo)
