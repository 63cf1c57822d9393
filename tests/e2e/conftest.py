"""The e2e fixtures: one real JupyterHub (embedded setup, as root) over one demo API per session."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import Stack, free_port, running_stack
from tre.cli.demo import stop, wait_healthy
from tre.hub.config import HubLayout
from tre.hub.launch import (
    WORKSPACE_ENV,
    egress_problem,
    layout_for,
    remove_network_rule,
    start_hub,
)
from tre.hub.workspace import build_workspace_env, workspace_ready

PASSWORD = "a long test password 1"
# CI installs nftables and must run the network tests; elsewhere they skip with the reason.
REQUIRE_EGRESS = bool(os.environ.get("TRE_REQUIRE_BROWSER") or os.environ.get("CI"))


@dataclass
class Hub:
    stack: Stack
    url: str
    log: Path
    prefix: str  # this run's system-account prefix
    layout: HubLayout

    def system_user(self, username: str) -> str:
        """The system account a researcher's server runs as in this run."""
        return f"{self.prefix}{username}"


def _admin_post(stack: Stack, path: str, body: dict[str, object]) -> dict[str, object]:
    r = httpx.post(
        f"{stack.api_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {stack.session('admin')}"},
    )
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    if not workspace_ready(WORKSPACE_ENV):
        build_workspace_env(WORKSPACE_ENV)
    # Not under pytest's 0700 temp folder: the data root's own modes must be what stops a kernel.
    root = Path(tempfile.mkdtemp(prefix="tre-hub-test-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        with running_stack(root) as stack:
            for username, until in (("noaccred", None), ("noproject", "2099-01-01")):
                _admin_post(
                    stack,
                    "/users",
                    {
                        "username": username,
                        "display_name": username,
                        "roles": ["researcher"],
                        "accredited_until": until,
                        "password": PASSWORD,
                    },
                )
            port = free_port()
            log = root / "hub.log"
            # A prefix of this run's own: concurrent runs on one machine never share accounts.
            prefix = f"t{secrets.token_hex(3)}-"
            layout = layout_for(
                stack.settings,
                api_url=stack.api_url,
                port=port,
                homes_root=root / "homes",
                user_prefix=prefix,
                runtime_root=root / "run",
                egress_table=f"tre_test_{prefix[1:-1]}",
            )
            problem = egress_problem()
            if problem and REQUIRE_EGRESS:
                pytest.fail(f"the notebook egress rule cannot be installed: {problem}")
            # Without nft (a developer machine) the other hub tests still run, on the opt-out;
            # the network tests skip on `hub.layout.egress_required`.
            layout = dataclasses.replace(layout, egress_required=problem is None)
            (root / "homes").mkdir(mode=0o755)
            proc = start_hub(
                stack.settings, api_url=stack.api_url, port=port, layout=layout, log_path=log
            )
            try:
                wait_healthy(f"http://127.0.0.1:{port}/hub/health", proc, timeout=60)
                yield Hub(
                    stack=stack,
                    url=f"http://127.0.0.1:{port}",
                    log=log,
                    prefix=prefix,
                    layout=layout,
                )
            finally:
                stop([proc])
                if layout.egress_required:
                    remove_network_rule(layout)
                for name in ("ada", "ben"):
                    subprocess.run(["userdel", prefix + name], capture_output=True, check=False)
                subprocess.run(
                    ["groupdel", prefix + "researchers"], capture_output=True, check=False
                )
    finally:  # also when the stack or the hub fails to start
        shutil.rmtree(root, ignore_errors=True)
