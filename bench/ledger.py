"""Benchmark: privacy-budget reservations per second through the API, 32 concurrent clients.

For each database (SQLite file, PostgreSQL at 127.0.0.1:5432) it builds a fresh control
plane with one active project whose allowance and dataset cap are smaller than the demand,
starts a real `uvicorn` server on the app factory (several worker processes), and lets 32
asyncio clients each loop: reserve a fixed amount (`POST /ledger/reservations`, the admin's
audited manual charge, which goes through the same `LedgerGateway` the query path uses) and
commit it. Refusals (`409 budget_exhausted` / `dataset_cap_exhausted`) are expected once the
allowance runs out. Afterwards it checks, straight from the database, that nothing was
overspent: committed ≤ allowance and ≤ cap, committed = successes × amount, nothing left
reserved, the audit trail's committed sum equals the ledger's, and the audit chain verifies.

Prints reservations/s (completed reserve + commit cycles), requests/s, p50/p99 latency of
each call, the overspend check, and ends with a one-line JSON summary.
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
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from tre import audit
from tre import governance as g
from tre.db import Database, utcnow
from tre.privacy.ledger import Ledger
from tre.wire.grant import Budget

PASSWORD = "benchmark passphrase, not a secret"
AMOUNT = Decimal("0.001")
PG_ADMIN_URL = os.environ.get(
    "TRE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Run:
    """What one database's run measured."""

    database: str
    workers: int
    clients: int
    attempts: int = 0
    reserved: int = 0
    committed: int = 0
    refused: int = 0
    errors: int = 0
    retries: int = 0
    seconds: float = 0.0
    reserve_ms: list[float] = field(default_factory=list)
    commit_ms: list[float] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""

        def pct(xs: list[float], q: int) -> float | None:
            if len(xs) < 2:
                return None
            return round(statistics.quantiles(xs, n=100)[q - 1], 2)

        return {
            "database": self.database,
            "workers": self.workers,
            "clients": self.clients,
            "attempts": self.attempts,
            "committed": self.committed,
            "refused": self.refused,
            "errors": self.errors,
            "busy_retries": self.retries,
            "seconds": round(self.seconds, 2),
            "reservations_per_s": round(self.committed / self.seconds, 1),
            "requests_per_s": round((self.attempts + self.committed) / self.seconds, 1),
            "reserve_p50_ms": pct(self.reserve_ms, 50),
            "reserve_p99_ms": pct(self.reserve_ms, 99),
            "commit_p50_ms": pct(self.commit_ms, 50),
            "commit_p99_ms": pct(self.commit_ms, 99),
            "overspend": self.checks.get("overspend"),
            "checks_ok": all(v is True for k, v in self.checks.items() if k != "overspend")
            and self.checks.get("overspend") is False,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _setup(url: str, allowance_units: int) -> int:
    """Migrate; admin, custodian, researcher; a dataset and an active project. Returns its id."""
    db = Database.from_url(url)
    db.upgrade()
    now = utcnow()
    today = now.date()
    ledger = Ledger()
    cap = Budget(rho=AMOUNT * (allowance_units + allowance_units // 10), delta=Decimal(0))
    allowance = Budget(rho=AMOUNT * allowance_units, delta=Decimal(0))
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
        project = g.apply(
            s,
            res,
            g.Application(
                title="Ledger benchmark",
                lay_summary="Load test.",
                purpose="Measure reservations per second.",
                public_benefit="A fast, correct ledger.",
                legal_basis=g.LegalBasis.OTHER,
                legal_basis_detail="benchmark on synthetic governance data",
                datasets=(g.DatasetAsk(dataset="bench", columns=("x",), budget=allowance),),
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
    db.dispose()
    return project.id


def _check(url: str, project_id: int, run: Run, allowance_units: int) -> None:
    """Overspend and consistency checks, read straight from the database."""
    db = Database.from_url(url)
    ledger = Ledger()
    with db.read() as s:
        a = ledger.allowance(s, project_id, "bench")
        c = ledger.cap(s, "bench")
        audited = sum(
            (
                Decimal(ch["rho"])
                for e in audit.read_events(s, limit=10_000_000, event_type="budget.committed")
                for ch in e.payload["charges"]
                if e.payload["project_id"] == project_id
            ),
            Decimal(0),
        )
        verify = audit.verify(s)
    db.dispose()
    committed = a.committed.rho
    run.checks = {
        "overspend": committed > a.allowed.rho or c.committed.rho > c.cap.rho,
        "committed_equals_successes": committed == AMOUNT * run.committed,
        "allowance_fully_used": committed == AMOUNT * allowance_units,
        "nothing_left_reserved": a.reserved.rho == 0 and c.reserved.rho == 0,
        "audit_sum_equals_ledger": audited == committed,
        "audit_chain_ok": verify.ok,
        "no_server_errors": run.errors == 0,
    }


async def _post(http: httpx.AsyncClient, path: str, body: Any, run: Run) -> httpx.Response:
    """POST, retrying while the server answers 503 busy (as a well-behaved client does)."""
    while True:
        r = await http.post(path, json=body)
        if r.status_code != 503:
            return r
        run.retries += 1
        await asyncio.sleep(0.05)


async def _client(http: httpx.AsyncClient, project_id: int, run: Run, stop: asyncio.Event) -> None:
    body = {"project_id": project_id, "charges": {"bench": {"rho": str(AMOUNT)}}}
    while not stop.is_set():
        t0 = time.perf_counter()
        r = await _post(http, "/ledger/reservations", body, run)
        run.reserve_ms.append((time.perf_counter() - t0) * 1000)
        run.attempts += 1
        if r.status_code == 409:
            run.refused += 1
            stop.set()  # the allowance is spent: every client stops after its current call
            continue
        if r.status_code != 201:
            run.errors += 1
            stop.set()
            print(f"unexpected {r.status_code}: {r.text[:300]}", file=sys.stderr)
            continue
        run.reserved += 1
        t1 = time.perf_counter()
        c = await _post(http, f"/ledger/reservations/{r.json()['id']}/commit", {}, run)
        run.commit_ms.append((time.perf_counter() - t1) * 1000)
        if c.status_code == 200:
            run.committed += 1
        else:
            run.errors += 1
            print(f"commit {c.status_code}: {c.text[:300]}", file=sys.stderr)


async def _drive(base: str, project_id: int, run: Run) -> None:
    limits = httpx.Limits(max_connections=run.clients, max_keepalive_connections=run.clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        r = await http.post("/auth/login", json={"username": "admin", "password": PASSWORD})
        r.raise_for_status()
        http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        stop = asyncio.Event()
        t0 = time.perf_counter()
        await asyncio.gather(*(_client(http, project_id, run, stop) for _ in range(run.clients)))
        run.seconds = time.perf_counter() - t0


def _serve(url: str, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "TRE_DATABASE_URL": url,
        "TRE_DATA_ROOT": str(workdir / "data"),
        "TRE_KEY_DIR": str(workdir / "keys"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tre.api.app:app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the API server exited during start-up")
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the API server did not start within 30 s")


def bench_one(database: str, *, workers: int, clients: int, reservations: int) -> Run:
    """Set up, serve, drive and check one database."""
    run = Run(database=database, workers=workers, clients=clients)
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
            project_id = _setup(url, reservations)
            proc, base = _serve(url, workdir, workers)
            try:
                asyncio.run(_drive(base, project_id, run))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            _check(url, project_id, run, reservations)
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
    p.add_argument("--workers", type=int, default=4, help="uvicorn worker processes")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients")
    p.add_argument("--reservations", type=int, default=3000, help="how many the allowance covers")
    args = p.parse_args(argv)
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    summaries = []
    for database in databases:
        run = bench_one(
            database, workers=args.workers, clients=args.clients, reservations=args.reservations
        )
        s = run.summary()
        summaries.append(s)
        print(
            f"{database}: {s['reservations_per_s']} reservations/s "
            f"({s['committed']} reserve+commit cycles in {s['seconds']} s, "
            f"{s['requests_per_s']} requests/s, {args.clients} clients, {args.workers} workers); "
            f"reserve p50 {s['reserve_p50_ms']} ms p99 {s['reserve_p99_ms']} ms; "
            f"commit p50 {s['commit_p50_ms']} ms p99 {s['commit_p99_ms']} ms; "
            f"refused {s['refused']}, errors {s['errors']}"
        )
        print(f"{database}: overspend {'YES' if s['overspend'] else 'none'}; checks {run.checks}")
    print(json.dumps({"bench": "ledger", "runs": summaries}))
    ok = all(s["checks_ok"] for s in summaries)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
