"""Fixtures for the API tests: a real published catalogue, an app over SQLite or PostgreSQL,
and a small world of accounts created through the API itself.

A test module loads them with `pytest_plugins = ("tests.governance_fixtures",
"tests.api_support")` (the first gives `db_url` on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tre import governance as g
from tre.api import create_app
from tre.catalog.keys import KeyStore
from tre.config import Settings
from tre.db import Database
from tre.ingest.pipeline import ingest
from tre.synth import write_extracts

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def catalogue_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose catalogue holds real ingested `health` and `education` (v1)."""
    root = tmp_path_factory.mktemp("catalogue")
    write_extracts(root / "raw", people=300, seed=1, datasets=("health", "education"))
    keys = KeyStore(root / "keys", root / "data")
    keys.create("spine")
    for name in ("health", "education"):
        ingest(
            root / "raw" / f"{name}.csv",
            REPO / "policies" / "datasets" / f"{name}.yaml",
            datasets_dir=root / "data" / "datasets",
            key_store=keys,
        )
    return root / "data"


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        """Move forward by a timedelta's keyword arguments."""
        self.now += timedelta(**kwargs)


@dataclass
class Api:
    """A TestClient on a fresh app, its clock, and bearer credentials by username."""

    client: TestClient
    clock: Clock
    settings: Settings
    ids: dict[str, int] = field(default_factory=dict)
    bearers: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        """Authorization header for a username (session) or a raw bearer."""
        bearer = self.bearers.get(who, who)
        return {"Authorization": f"Bearer {bearer}"}

    def call(self, method: str, path: str, who: str | None = None, **kw: Any) -> Any:
        """One request; returns the httpx response."""
        headers = {**(self.headers(who) if who else {}), **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def ok(self, method: str, path: str, who: str, status: int = 200, **kw: Any) -> Any:
        """A request that must succeed with `status`; returns its JSON."""
        r = self.call(method, path, who, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def login(self, username: str) -> str:
        """Log in with the test password; remembers the session under the username."""
        r = self.client.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.bearers[username] = r.json()["access_token"]
        return self.bearers[username]

    def create_user(self, username: str, roles: list[str], until: str | None = None) -> int:
        """Create an account through the API (as admin) and log it in."""
        body = {
            "username": username,
            "display_name": username.title(),
            "roles": roles,
            "accredited_until": until,
        }
        user = self.ok("POST", "/users", "admin", 201, json=body)
        self.ids[username] = user["id"]
        self.session(username)
        return int(user["id"])

    def session(self, username: str) -> str:
        """A fresh session for `username` signed by the app (argon2 logins are slow; the
        password login itself is tested on `admin`)."""
        services = self.client.app.state.services  # type: ignore[attr-defined]
        raw, _ = services.sessions.issue(self.ids[username], now=self.clock.now)
        self.bearers[username] = raw
        return str(raw)


def application(
    datasets: tuple[str, ...] = ("health",),
    *,
    members: tuple[int, ...] = (),
    start: str = "2025-03-01",
    end: str = "2025-12-31",
    rho: str = "1",
    exact: bool = False,
) -> dict[str, Any]:
    """A complete application body."""
    columns = {"health": ["cost", "sex", "region"], "education": ["ks4_attainment8", "sex"]}
    return {
        "title": "Deprivation and hospital admissions",
        "lay_summary": "Do children in deprived areas go to hospital more often?",
        "purpose": "Estimate admission rates by deprivation decile.",
        "public_benefit": "Targets prevention where it helps most.",
        "legal_basis": "dea-2017-part-5",
        "datasets": [
            {"dataset": d, "columns": columns[d], "budget": {"rho": rho, "delta": "1e-7"}}
            for d in datasets
        ],
        "member_ids": list(members),
        "exact_outputs": exact,
        "start_date": start,
        "end_date": end,
    }


@pytest.fixture
def api(db_url: str, catalogue_root: Path, tmp_path: Path) -> Iterator[Api]:
    """An app over a migrated control plane (SQLite and PostgreSQL) with a small world:
    admin; custodians `cust` (health) and `cust2` (education); researchers `alice`
    (accredited to 2026-03-31), `bob` (to 2025-06-30), `carol` (none); checker `checker`."""
    settings = Settings(
        data_root=catalogue_root,
        key_dir=tmp_path / "keys",
        policy_dir=REPO / "policies",
        database_url=db_url,
    )
    clock = Clock()
    db = Database.from_url(db_url)
    with db.transaction() as s:
        admin = g.bootstrap_admin(
            s, username="admin", display_name="Admin", password=PASSWORD, now=clock.now
        )
    app = create_app(settings, database=db, clock=clock)
    with TestClient(app) as client:
        a = Api(client=client, clock=clock, settings=settings)
        a.ids["admin"] = admin.id
        a.login("admin")
        a.create_user("cust", ["custodian"])
        a.create_user("cust2", ["custodian"])
        a.create_user("alice", ["researcher"], "2026-03-31")
        a.create_user("bob", ["researcher"], "2025-06-30")
        a.create_user("carol", ["researcher"])
        a.create_user("checker", ["output_checker"])
        for name, cust in (("health", "cust"), ("education", "cust2")):
            a.ok(
                "POST",
                "/datasets",
                "admin",
                201,
                json={
                    "name": name,
                    "custodian_ids": [a.ids[cust]],
                    "cap": {"rho": "5", "delta": "1e-6"},
                },
            )
        yield a
    db.dispose()


def active_project(a: Api, datasets: tuple[str, ...] = ("health",), **kw: Any) -> dict[str, Any]:
    """Alice applies; every custodian approves as asked. Returns the project."""
    project = a.ok("POST", "/projects", "alice", 201, json=application(datasets, **kw))
    custodians = {"health": "cust", "education": "cust2"}
    for d in datasets:
        project = a.ok(
            "POST",
            f"/projects/{project['id']}/requests/{d}/approve",
            custodians[d],
            json={"reason": "meets the access policy"},
        )
    assert project["state"] == "active", project
    return dict(project)


def token_for(a: Api, who: str, project_id: int, **kw: Any) -> str:
    """Issue a project token for `who` and return it."""
    body = {"project_id": project_id, **kw}
    return str(a.ok("POST", "/tokens", who, 201, json=body)["token"])
