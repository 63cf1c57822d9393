"""`tre serve` as a real uvicorn server in a subprocess, over SQLite and PostgreSQL: login,
the catalogue, the canonical 401 and 422 bodies, and the OpenAPI spec, over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api_support import PASSWORD, T0
from tre import governance as g
from tre.db import Database

pytest_plugins = ("tests.governance_fixtures", "tests.api_support")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(db_url: str, catalogue_root: Path, tmp_path: Path) -> Iterator[str]:
    db = Database.from_url(db_url)
    with db.transaction() as s:
        g.bootstrap_admin(s, username="admin", display_name="Admin", password=PASSWORD, now=T0)
    db.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "TRE_DATABASE_URL": db_url,
        "TRE_DATA_ROOT": str(catalogue_root),
        "TRE_KEY_DIR": str(tmp_path / "keys"),
    }
    # `tre serve`'s own command, without importing every other CLI module.
    serve = "import typer; from tre.cli.serve import serve; typer.run(serve)"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            serve,
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "tre serve exited during start-up"
            time.sleep(0.1)
        else:
            pytest.fail("tre serve did not answer within 30 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_real_server_speaks_the_api(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        r = http.get("/users")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["reason"] == "unauthenticated"
        r = http.post("/auth/login", json={"username": "admin", "password": "wrong password!"})
        assert r.status_code == 401
        r = http.post("/auth/login", json={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200, r.text
        session = r.json()["access_token"]
        http.headers["Authorization"] = f"Bearer {session}"
        # Sessions are signed with a secret shared by both worker processes.
        for _ in range(6):
            assert http.get("/me").json()["user"]["username"] == "admin"
        names = [d["name"] for d in http.get("/datasets").json()]
        assert names == ["education", "health"]
        r = http.post("/users", json={"username": "bob", "roles": ["wizard"]})
        assert r.status_code == 422
        paths = {f["path"] for f in r.json()["error"]["details"]["fields"]}
        assert paths == {"body.display_name", "body.roles.0"}
        r = http.post(
            "/users",
            json={"username": "bob", "display_name": "Bob", "roles": ["researcher"]},
        )
        assert r.status_code == 201, r.text
        spec = http.get("/openapi.json").json()
        assert "/projects/{project_id}/budgets" in spec["paths"]
