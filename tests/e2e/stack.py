"""A live demo stack for the client, hub and notebook tests: `setup_demo` in a temporary
folder (a small population), then the real API server as a subprocess on a free port."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tre.cli.demo import DemoState, setup_demo, start_api, stop, wait_healthy
from tre.config import Settings

REPO = Path(__file__).resolve().parents[2]
PEOPLE = 1500  # enough for sensible answers at ε≈1, small enough to ingest in seconds


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """A running demo API with its settings and demo logins."""

    settings: Settings
    state: DemoState
    api_url: str
    process: subprocess.Popen[bytes]

    def session(self, username: str) -> str:
        """A console session bearer for a demo account (password login)."""
        r = httpx.post(
            f"{self.api_url}/auth/login",
            json={"username": username, "password": self.state.password(username)},
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def token(self, username: str = "ada", ttl_hours: float = 2) -> str:
        """A project token for the demo project."""
        r = httpx.post(
            f"{self.api_url}/tokens",
            json={"project_id": self.state.project_id, "ttl_hours": ttl_hours},
            headers={"Authorization": f"Bearer {self.session(username)}"},
        )
        r.raise_for_status()
        return str(r.json()["token"])


def demo_settings(root: Path) -> Settings:
    """Settings for a demo under `root` (data, keys and raw extracts side by side)."""
    return Settings(data_root=root / "data", key_dir=root / "keys", policy_dir=REPO / "policies")


@contextmanager
def running_stack(root: Path, people: int = PEOPLE) -> Iterator[Stack]:
    """Set up the demo under `root` and serve its API until the block ends."""
    settings = demo_settings(root)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    state = setup_demo(settings, people=people, api_url=api_url)
    proc = start_api(settings, "127.0.0.1", port)
    try:
        wait_healthy(f"{api_url}/health", proc)
        yield Stack(settings=settings, state=state, api_url=api_url, process=proc)
    finally:
        stop([proc])
