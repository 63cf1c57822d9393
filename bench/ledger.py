"""Benchmark: privacy-budget reservations per second through the API, 32 concurrent clients.

For each database (SQLite file, PostgreSQL at 127.0.0.1:5432) it builds a fresh control
plane with one dataset and two active projects, whose allowances (and the dataset's cap)
are smaller than the demand, starts a real `uvicorn` server on the app factory (several
worker processes), and drives it with 32 asyncio clients through the admin's audited
manual-charge routes, which go through the same `LedgerGateway` the query path uses:

1. **reserve**: each client loops `POST /ledger/reservations` (a fixed amount on the first
   project) until the allowance refuses (`409 budget_exhausted`). Every reservation is real:
   authenticated, held atomically against the allowance and the cap, audited; it stays
   held. → reservations/s, p50/p99.
2. **commit**: the clients commit every reservation made in phase 1
   (`POST …/{id}/commit`). → commits/s.
3. **cycle**: on the second project, each client loops reserve then commit, as a query does
   (reserve before it runs, commit after) until that allowance runs out. → reserve+commit
   cycles/s: the rate at which the ledger can admit queries.

Afterwards it checks, straight from the database, that nothing was overspent: for each
project committed ≤ allowance and, for the dataset, ≤ cap; committed = successes × amount;
nothing left reserved; the audit trail's committed sum equals the ledger's; the audit chain
verifies; no server errors.

Then, unless `--ceiling-seconds 0`, the same server stack and client drive a bare route that
runs one UPDATE in a tre write transaction: what this machine can do at best right now.

Prints each phase's rate, p50/p99 latency, CPU ms per request of the server (all uvicorn
workers), of this client process and of the PostgreSQL backends serving the run (the 32
clients and the database share the machine's cores), the load average, the overspend check
and the ceiling, and ends with a one-line JSON summary. `--http`/`--loop` choose uvicorn's
HTTP parser and event loop (default: uvicorn's choice, httptools and uvloop when installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import anyio.to_thread
import httpx
import psutil
import sqlalchemy as sa
from fastapi import FastAPI

from tre import audit
from tre import governance as g
from tre.config import load_settings
from tre.db import Database, utcnow
from tre.privacy.ledger import Ledger
from tre.wire.grant import Budget

PASSWORD = "benchmark passphrase, not a secret"
AMOUNT = Decimal("0.001")
PG_ADMIN_URL = os.environ.get(
    "TRE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pct(xs: list[float], q: int) -> float | None:
    if len(xs) < 2:
        return None
    return round(statistics.quantiles(xs, n=100)[q - 1], 2)


@dataclass
class Phase:
    """What one phase of a run measured."""

    name: str
    ok: int = 0  # reservations made (reserve), commits (commit), cycles completed (cycle)
    refused: int = 0
    requests: int = 0
    seconds: float = 0.0
    reserve_ms: list[float] = field(default_factory=list)
    commit_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return {
            "ok": self.ok,
            "refused": self.refused,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "per_s": round(self.ok / self.seconds, 1) if self.seconds else None,
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else None,
            "reserve_p50_ms": _pct(self.reserve_ms, 50),
            "reserve_p99_ms": _pct(self.reserve_ms, 99),
            "commit_p50_ms": _pct(self.commit_ms, 50),
            "commit_p99_ms": _pct(self.commit_ms, 99),
            "cpu_ms_per_request": {
                k: round(v * 1000 / max(1, self.requests), 2) for k, v in self.cpu_s.items()
            },
            "load_average": [round(x, 2) for x in self.load],
        }


@dataclass
class Run:
    """What one database's run measured."""

    database: str
    workers: int
    clients: int
    stack: str = "auto"
    reserve: Phase = field(default_factory=lambda: Phase("reserve"))
    commit: Phase = field(default_factory=lambda: Phase("commit"))
    cycle: Phase = field(default_factory=lambda: Phase("cycle"))
    errors: int = 0
    retries: int = 0
    checks: dict[str, Any] = field(default_factory=dict)
    ceiling: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        reserve, commit, cycle = (p.summary() for p in (self.reserve, self.commit, self.cycle))
        return {
            "database": self.database,
            "workers": self.workers,
            "clients": self.clients,
            "stack": self.stack,
            "reservations_per_s": reserve["per_s"],
            "commits_per_s": commit["per_s"],
            "cycles_per_s": cycle["per_s"],
            "reserve_p50_ms": reserve["reserve_p50_ms"],
            "reserve_p99_ms": reserve["reserve_p99_ms"],
            "phases": {"reserve": reserve, "commit": commit, "cycle": cycle},
            "errors": self.errors,
            "busy_retries": self.retries,
            "ceiling": self.ceiling,
            "overspend": self.checks.get("overspend"),
            "checks": self.checks,
            "checks_ok": all(v is True for k, v in self.checks.items() if k != "overspend")
            and self.checks.get("overspend") is False,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(url: str, allowance_units: int) -> tuple[int, int, int]:
    """Migrate; admin, custodian, researcher; a dataset and three active projects (the reserve
    and commit phases', the cycle phase's, each allowed `allowance_units` × AMOUNT, and the
    warm-up's, allowed a tenth of that). Returns their ids."""
    db = Database.from_url(url)
    db.upgrade()
    now = utcnow()
    today = now.date()
    ledger = Ledger()
    warm_units = max(1, allowance_units // 10)
    # The cap binds no project alone, and all together only just not.
    cap = Budget(rho=AMOUNT * (2 * allowance_units + 2 * warm_units), delta=Decimal(0))
    with db.transaction() as s:
        admin = g.bootstrap_admin(
            s, username="admin", display_name="Admin", password=PASSWORD, now=now
        ).as_actor()
        cust = g.create_user(
            s, admin, username="cust", display_name="Cust", roles=["custodian"], now=now
        )
        res = g.create_user(
            s,
            admin,
            username="res",
            display_name="Res",
            roles=["researcher"],
            accredited_until=today + timedelta(days=365),
            now=now,
        ).as_actor()
        g.register_dataset(
            s,
            admin,
            name="bench",
            title="Benchmark dataset",
            custodian_ids=[cust.id],
            cap=cap,
            budget=ledger,
            now=now,
        )
        ids = []
        for title, units in (
            ("Ledger benchmark: reserve, then commit", allowance_units),
            ("Ledger benchmark: cycles", allowance_units),
            ("Ledger benchmark: warm-up", warm_units),
        ):
            project = g.apply(
                s,
                res,
                g.Application(
                    title=title,
                    lay_summary="Load test.",
                    purpose="Measure reservations per second.",
                    public_benefit="A fast, correct ledger.",
                    legal_basis=g.LegalBasis.OTHER,
                    legal_basis_detail="benchmark on synthetic governance data",
                    datasets=(
                        g.DatasetAsk(
                            dataset="bench",
                            columns=("x",),
                            budget=Budget(rho=AMOUNT * units, delta=Decimal(0)),
                        ),
                    ),
                    start_date=today,
                    end_date=today + timedelta(days=30),
                ),
                now=now,
            )
            g.approve_request(
                s,
                cust.as_actor(),
                project.id,
                "bench",
                reason="benchmark",
                budget=ledger,
                now=now,
            )
            ids.append(project.id)
    db.dispose()
    return ids[0], ids[1], ids[2]


def _check(url: str, projects: tuple[int, int, int], run: Run, allowance_units: int) -> None:
    """Overspend and consistency checks, read straight from the database."""
    db = Database.from_url(url)
    ledger = Ledger()
    with db.read() as s:
        allowances = [ledger.allowance(s, p, "bench") for p in projects]
        c = ledger.cap(s, "bench")
        audited = {p: Decimal(0) for p in projects}
        for e in audit.read_events(s, limit=10_000_000, event_type="budget.committed"):
            for ch in e.payload["charges"]:
                audited[e.payload["project_id"]] += Decimal(ch["rho"])
        verify = audit.verify(s)
    db.dispose()
    committed = [a.committed.rho for a in allowances]
    run.checks = {
        "overspend": any(x > a.allowed.rho for x, a in zip(committed, allowances, strict=True))
        or c.committed.rho > c.cap.rho,
        "every_reservation_committed": committed[0] == AMOUNT * run.reserve.ok
        and run.commit.ok == run.reserve.ok,
        "cycles_committed": committed[1] == AMOUNT * run.cycle.ok,
        "allowances_fully_used": committed
        == [AMOUNT * allowance_units] * 2 + [AMOUNT * max(1, allowance_units // 10)],
        "cap_equals_allowances": c.committed.rho == sum(committed, Decimal(0)),
        "nothing_left_reserved": all(a.reserved.rho == 0 for a in allowances)
        and c.reserved.rho == 0,
        "audit_sum_equals_ledger": [audited[p] for p in projects] == committed,
        "audit_chain_ok": verify.ok,
        "no_server_errors": run.errors == 0,
    }


async def _post(http: aiohttp.ClientSession, path: str, body: Any, run: Run) -> tuple[int, Any]:
    """POST, retrying while the server answers 503 busy (as a well-behaved client does)."""
    while True:
        async with http.post(path, json=body) as r:
            status, payload = r.status, await r.json(content_type=None)
        if status != 503:
            return status, payload
        run.retries += 1
        await asyncio.sleep(0.05)


def _reserve_body(project_id: int) -> dict[str, Any]:
    return {"project_id": project_id, "charges": {"bench": {"rho": str(AMOUNT)}}}


async def _reserve(
    http: aiohttp.ClientSession, project_id: int, phase: Phase, run: Run, stop: asyncio.Event
) -> str | None:
    """One reservation: its id, or None (refused: the allowance is spent, stop; or an error)."""
    t0 = time.perf_counter()
    status, r = await _post(http, "/ledger/reservations", _reserve_body(project_id), run)
    phase.reserve_ms.append((time.perf_counter() - t0) * 1000)
    phase.requests += 1
    if status == 201:
        return str(r["id"])
    stop.set()  # refused (the allowance is spent) or failed: every client stops after this call
    if status == 409:
        phase.refused += 1
    else:
        run.errors += 1
        print(f"reserve {status}: {str(r)[:300]}", file=sys.stderr)
    return None


async def _commit(http: aiohttp.ClientSession, rid: str, phase: Phase, run: Run) -> bool:
    t0 = time.perf_counter()
    status, r = await _post(http, f"/ledger/reservations/{rid}/commit", {}, run)
    phase.commit_ms.append((time.perf_counter() - t0) * 1000)
    phase.requests += 1
    if status != 200:
        run.errors += 1
        print(f"commit {status}: {str(r)[:300]}", file=sys.stderr)
    return status == 200


async def _phase(
    run: Run, phase: Phase, server_pid: int, pg_url: str | None, clients: list[Any]
) -> None:
    """Run the coroutines `clients` together; time them and the CPU they cost."""
    before = _cpu(server_pid, pg_url)
    t0 = time.perf_counter()
    await asyncio.gather(*clients)
    phase.seconds = time.perf_counter() - t0
    phase.cpu_s = _cpu_delta(before, _cpu(server_pid, pg_url))
    phase.load = os.getloadavg()


async def _drive(
    base: str, projects: tuple[int, int, int], run: Run, server_pid: int, pg_url: str | None
) -> None:
    # aiohttp, not httpx, drives the load: on this 2-core machine httpx's async client spent
    # 6-8 ms of CPU per request (measured), more than the server, so it was the bottleneck.
    # One session = one keep-alive connection pool reused by all clients.
    connector = aiohttp.TCPConnector(limit=run.clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:
        login = {"username": "admin", "password": PASSWORD}
        status, r = await _post(http, "/auth/login", login, run)
        if status != 200:
            raise RuntimeError(f"login failed with {status}")
        http.headers["Authorization"] = f"Bearer {r['access_token']}"

        # Warm-up, not measured: the workers' connection pools fill, statements get
        # prepared, caches fill (reserve + commit cycles on the third project until it is
        # spent).
        warm = Phase("warm-up")
        stop = asyncio.Event()

        async def warmer() -> None:
            while not stop.is_set():
                rid = await _reserve(http, projects[2], warm, run, stop)
                if rid is not None:
                    await _commit(http, rid, warm, run)

        await asyncio.gather(*(warmer() for _ in range(run.clients)))

        held: list[str] = []
        stop = asyncio.Event()

        async def reserver() -> None:
            while not stop.is_set():
                rid = await _reserve(http, projects[0], run.reserve, run, stop)
                if rid is not None:
                    held.append(rid)
                    run.reserve.ok += 1

        await _phase(run, run.reserve, server_pid, pg_url, [reserver() for _ in range(run.clients)])

        todo = list(held)

        async def committer() -> None:
            while todo:
                if await _commit(http, todo.pop(), run.commit, run):
                    run.commit.ok += 1

        await _phase(run, run.commit, server_pid, pg_url, [committer() for _ in range(run.clients)])

        stop = asyncio.Event()

        async def cycler() -> None:
            while not stop.is_set():
                rid = await _reserve(http, projects[1], run.cycle, run, stop)
                if rid is not None and await _commit(http, rid, run.cycle, run):
                    run.cycle.ok += 1

        await _phase(run, run.cycle, server_pid, pg_url, [cycler() for _ in range(run.clients)])


def _used(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return 0.0


def _pg_backends(url: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the run's database."""
    if url is None:
        return {}
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pids = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
            out = {}
            for pid in pids:
                try:
                    out[int(pid)] = _used(psutil.Process(int(pid)))
                except psutil.Error:
                    continue  # not visible to this user, or gone
            return out
    finally:
        engine.dispose()


def _cpu(server_pid: int, pg_url: str | None = None) -> dict[str, Any]:
    """CPU seconds used so far by the server (all workers), this client and, on PostgreSQL,
    the backends of the run's database (absent ones count as 0: they were opened since)."""
    server = psutil.Process(server_pid)
    out: dict[str, Any] = {
        "server": sum(_used(p) for p in [server, *server.children(recursive=True)]),
        "client": time.process_time(),
    }
    if pg_url is not None:
        out["postgres_by_pid"] = _pg_backends(pg_url)
    return out


def _cpu_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    out = {k: after[k] - before[k] for k in ("server", "client")}
    if "postgres_by_pid" in after:
        b, a = before.get("postgres_by_pid", {}), after["postgres_by_pid"]
        out["postgres"] = sum(v - b.get(pid, 0.0) for pid, v in a.items())
    return out


def _wait_idle(server_pid: int, *, limit_s: float = 120) -> None:
    """Wait until every worker finished importing (the server tree stops using CPU).

    /health answers as soon as the first worker is up; on a loaded 2-core machine the others
    can take many seconds more, and their imports would be counted against the requests.
    """
    server = psutil.Process(server_pid)
    deadline = time.monotonic() + limit_s
    last = None
    while time.monotonic() < deadline:
        tree = [server, *server.children(recursive=True)]
        used = sum(sum(p.cpu_times()[:2]) for p in tree)
        if last is not None and used - last < 0.05:
            return
        last = used
        time.sleep(1)


def _serve(
    url: str,
    workdir: Path,
    workers: int,
    factory: str = "tre.api.app:app_from_environment",
    *,
    http: str = "auto",
    loop: str = "auto",
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    repo = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "TRE_DATABASE_URL": url,
        "TRE_DATA_ROOT": str(workdir / "data"),
        "TRE_KEY_DIR": str(workdir / "keys"),
        "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--http",
            http,
            "--loop",
            loop,
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                _wait_idle(proc.pid)
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the API server exited during start-up")
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the API server did not start within 30 s")


# --- the ceiling: the same server stack doing the least a ledger write could do ---------------

CEILING_TABLE = "bench_ceiling"


def ceiling_app() -> FastAPI:
    """A bare app: POST /ceiling runs one UPDATE in a tre write transaction, no auth, no audit.

    Served by the same uvicorn command, database engine (tre.db), thread limit
    (settings.api_threads) and client as the ledger run, it measures what this machine can do
    through HTTP at best right now: the ledger can at most reach half its requests/s in
    reserve + commit cycles (two requests each).
    """
    db = Database.from_url(os.environ["TRE_DATABASE_URL"])
    threads = load_settings().api_threads

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        yield
        db.dispose()

    app = FastAPI(lifespan=lifespan)
    bump = sa.text(f"UPDATE {CEILING_TABLE} SET n = n + 1 WHERE id = 1")

    @app.post("/ceiling")
    def ceiling() -> dict[str, int]:
        with db.transaction() as s:
            s.execute(bump)
        return {"ok": 1}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def _drive_ceiling(base: str, clients: int, seconds: float) -> tuple[int, list[float]]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, connector=connector) as http:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async with http.post("/ceiling") as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"ceiling route answered {r.status}")
                latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies), latencies


def ceiling_one(
    url: str,
    workdir: Path,
    *,
    workers: int,
    clients: int,
    seconds: float,
    http: str = "auto",
    loop: str = "auto",
) -> dict[str, Any]:
    """Requests/s of the bare route on `url` with the ledger run's server settings."""
    with Database.from_url(url).engine.begin() as conn:
        conn.execute(
            sa.text(
                f"CREATE TABLE IF NOT EXISTS {CEILING_TABLE} (id INTEGER PRIMARY KEY, n BIGINT)"
            )
        )
        conn.execute(sa.text(f"DELETE FROM {CEILING_TABLE}"))
        conn.execute(sa.text(f"INSERT INTO {CEILING_TABLE} VALUES (1, 0)"))
    pg_url = None if url.startswith("sqlite") else url
    proc, base = _serve(
        url, workdir, workers, factory="bench.ledger:ceiling_app", http=http, loop=loop
    )
    try:
        before = _cpu(proc.pid, pg_url)
        t0 = time.perf_counter()
        n, latencies = asyncio.run(_drive_ceiling(base, clients, seconds))
        elapsed = time.perf_counter() - t0
        after = _cpu(proc.pid, pg_url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests_per_s": round(n / elapsed, 1),
        "p50_ms": round(q[49], 2),
        "p99_ms": round(q[98], 2),
        "cpu_ms_per_request": {
            k: round(v * 1000 / n, 2) for k, v in _cpu_delta(before, after).items()
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def bench_one(
    database: str,
    *,
    workers: int,
    clients: int,
    reservations: int,
    ceiling_s: float = 0,
    http: str = "auto",
    loop: str = "auto",
) -> Run:
    """Set up, serve, drive and check one database (then the bare-route ceiling, if asked)."""
    run = Run(database=database, workers=workers, clients=clients, stack=f"{http}/{loop}")
    with tempfile.TemporaryDirectory(prefix="tre-bench-ledger-") as tmp:
        workdir = Path(tmp)
        pg_name = None
        admin = None
        if database == "sqlite":
            url = f"sqlite:///{workdir / 'control.sqlite'}"
        else:
            pg_name = f"tre_bench_{secrets.token_hex(4)}"
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
            url = sa.engine.make_url(PG_ADMIN_URL).set(database=pg_name).render_as_string(False)
        try:
            projects = _setup(url, reservations)
            pg_url = None if database == "sqlite" else url
            proc, base = _serve(url, workdir, workers, http=http, loop=loop)
            try:
                asyncio.run(_drive(base, projects, run, proc.pid, pg_url))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            _check(url, projects, run, reservations)
            if ceiling_s > 0:
                run.ceiling = ceiling_one(
                    url,
                    workdir,
                    workers=workers,
                    clients=clients,
                    seconds=ceiling_s,
                    http=http,
                    loop=loop,
                )
        finally:
            if admin is not None and pg_name is not None:
                with admin.connect() as conn:
                    conn.execute(
                        sa.text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = :n AND pid <> pg_backend_pid()"
                        ),
                        {"n": pg_name},
                    )
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}"'))
                admin.dispose()
    return run


def main(argv: list[str]) -> int:
    """Run the benchmark; prints figures and a one-line JSON summary."""
    p = argparse.ArgumentParser(prog="bench/ledger.py", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--reservations", type=int, default=5000, help="how many each allowance covers")
    p.add_argument(
        "--ceiling-seconds",
        type=float,
        default=10,
        help="also drive a bare one-UPDATE route this long on the same stack (0: skip)",
    )
    p.add_argument(
        "--http",
        choices=["auto", "h11", "httptools"],
        default="auto",
        help="uvicorn's HTTP protocol (auto: httptools when installed)",
    )
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="uvicorn's event loop (auto: uvloop when installed)",
    )
    args = p.parse_args(argv)
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    summaries = []
    for database in databases:
        run = bench_one(
            database,
            workers=args.workers,
            clients=args.clients,
            reservations=args.reservations,
            ceiling_s=args.ceiling_seconds,
            http=args.http,
            loop=args.loop,
        )
        s = run.summary()
        summaries.append(s)
        print(f"{database}: {args.clients} clients, {args.workers} workers, uvicorn {run.stack}")
        for name, label in (
            ("reserve", "reservations/s (each held)"),
            ("commit", "commits/s (of those reservations)"),
            ("cycle", "reserve+commit cycles/s"),
        ):
            ph = s["phases"][name]
            cpu = ph["cpu_ms_per_request"]
            latency = "; ".join(
                f"{k} p50 {ph[f'{k}_p50_ms']} ms p99 {ph[f'{k}_p99_ms']} ms"
                for k in ("reserve", "commit")
                if ph[f"{k}_p50_ms"] is not None
            )
            print(
                f"{database}: {name}: {ph['per_s']} {label}: {ph['ok']} in {ph['seconds']} s, "
                f"{ph['requests_per_s']} requests/s; {latency}; CPU ms/request: server "
                f"{cpu.get('server')}, client {cpu.get('client')}"
                + (f", PostgreSQL backends {cpu['postgres']}" if "postgres" in cpu else "")
                + f"; load average {ph['load_average']}"
            )
        print(
            f"{database}: refused {run.reserve.refused + run.cycle.refused} (the allowances ran "
            f"out), errors {run.errors}, overspend {'YES' if s['overspend'] else 'none'}; "
            f"checks {run.checks}"
        )
        if run.ceiling:
            c = run.ceiling
            print(
                f"{database}: ceiling (bare one-UPDATE route, same stack) "
                f"{c['requests_per_s']} requests/s, p50 {c['p50_ms']} ms p99 {c['p99_ms']} ms, "
                f"server CPU {c['cpu_ms_per_request']['server']} ms/request"
            )
    print(json.dumps({"bench": "ledger", "runs": summaries}))
    ok = all(s["checks_ok"] for s in summaries)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
