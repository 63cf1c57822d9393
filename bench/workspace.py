"""Benchmark: the researcher workspace, from a cold hub to a first `tre.query` in a kernel.

Sets up a small demo stack (`tre.cli.demo.setup_demo`) in a temporary data root, then for each
round starts the API and the embedded JupyterHub afresh (`tre.hub.launch.start_hub`, as root,
its own system-account prefix) and times, as a researcher would meet them:

- hub start → `/hub/health` answers 200;
- login (`GET /hub/login` for `_xsrf`, `POST` the form) → spawn on the demo project → the
  user's server API (`/user/<name>/api/status`, with a hub token) answers 200;
- a kernel started through the server's kernels API → its `kernel_info_reply` ("kernel up");
- kernel up → the result of a first `tre.query(...)` (the client import included), with the
  query call alone beside it. Each round's SQL differs so the answer cache never serves it.

Prints each round, medians and ranges against the targets (server ready ≤ 5 s after login,
first query result ≤ 1 s after the kernel is up), the load average, and a one-line JSON summary.
Must run as root (one system account per researcher), like tests/e2e/test_hub.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tre.cli.demo import DemoState, setup_demo, start_api, stop, wait_healthy
from tre.config import Settings
from tre.hub import egress
from tre.hub.launch import PROXY, WORKSPACE_ENV, layout_for, start_hub
from tre.hub.workspace import build_workspace_env, workspace_ready

REPO = Path(__file__).resolve().parents[1]
RESEARCHER = "ada"
TARGET_READY_S = 5.0
TARGET_QUERY_S = 1.0
XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


@dataclass(frozen=True)
class Round:
    """One round's timings, in seconds."""

    hub_start: float  # hub process start → /hub/health 200
    login: float  # GET login page + POST the form
    ready: float  # login start → the user's server API answers (spawn included)
    kernel: float  # kernel start request → kernel_info_reply
    client_import: float  # `import tre.client` in the fresh kernel
    query: float  # the `tre.query(...)` call alone
    first_result: float  # kernel up → the query's result (import included)
    cached: bool  # whether the answer came from the cache (it must not)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the hub over HTTP, as a browser drives it ------------------------------------------


def _login(http: httpx.Client, username: str, password: str) -> None:
    page = http.get("/hub/login")
    m = XSRF.search(page.text)
    if not m:
        raise RuntimeError(f"no _xsrf field on the login page ({page.status_code})")
    r = http.post(
        "/hub/login", data={"username": username, "password": password, "_xsrf": m.group(1)}
    )
    if r.status_code != 302:
        raise RuntimeError(f"login refused ({r.status_code})")


def _spawn(http: httpx.Client, project_id: int) -> None:
    form = http.get("/hub/spawn")
    m = XSRF.search(form.text)
    xsrf = m.group(1) if m else str(http.cookies.get("_xsrf", ""))
    r = http.post("/hub/spawn", data={"project_id": str(project_id), "_xsrf": xsrf})
    if r.status_code != 302:
        raise RuntimeError(f"spawn refused ({r.status_code}): {r.text[:200]}")


def _hub_token(http: httpx.Client, username: str) -> str:
    """A short-lived hub API token for the logged-in user (to reach their server's API)."""
    r = http.post(
        f"/hub/api/users/{username}/tokens",
        json={"note": "bench", "expires_in": 600},
        headers={"X-XSRFToken": str(http.cookies.get("_xsrf", ""))},
    )
    r.raise_for_status()
    return str(r.json()["token"])


def _wait_server(base: str, token: str, timeout: float = 90) -> None:
    """Poll the user's server API until it answers 200 (the hub answers for it until then)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(headers={"Authorization": f"token {token}"}, timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"{base}/api/status").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{base}: the notebook server did not answer within {timeout:.0f} s")


# --- a kernel through the server's kernels API --------------------------------------------


class _Kernel:
    """One kernel's websocket: send a request, wait for its reply, collect stdout."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.session = uuid.uuid4().hex

    async def request(self, msg_type: str, content: dict[str, Any]) -> tuple[str, float]:
        """Send on the shell channel; (stdout, seconds) once the reply arrives."""
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "username": "bench",
            "session": self.session,
            "msg_type": msg_type,
            "version": "5.3",
        }
        started = time.perf_counter()
        self.conn.write_message(
            json.dumps(
                {
                    "header": header,
                    "parent_header": {},
                    "metadata": {},
                    "content": content,
                    "channel": "shell",
                }
            )
        )
        out: list[str] = []
        reply = msg_type.replace("_request", "_reply")
        while True:
            raw = await asyncio.wait_for(self.conn.read_message(), 120)
            if raw is None:
                raise RuntimeError("the kernel's websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                raise RuntimeError("kernel error: " + msg["content"]["evalue"])
            elif kind == reply:
                return "".join(out), time.perf_counter() - started

    async def execute(self, code: str) -> tuple[str, float]:
        """Run `code`; (stdout, seconds)."""
        return await self.request("execute_request", {"code": code, "silent": False})


async def _kernel_round(base: str, token: str, sql: str) -> tuple[float, float, float, float, bool]:
    """(kernel, import, query, first result) seconds and whether the answer was cached."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        started = time.perf_counter()
        r = await http.post(f"{base}/api/kernels", json={"name": "python3"})
        if r.status_code != 201:
            raise RuntimeError(f"kernel start refused ({r.status_code}): {r.text[:200]}")
        kernel_id = r.json()["id"]
        try:
            ws = base.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
            kernel = _Kernel(await websocket_connect(HTTPRequest(ws, headers=headers)))
            await kernel.request("kernel_info_request", {})
            up = time.perf_counter()
            _, import_s = await kernel.execute("import json\nimport tre.client as tre")
            out, query_s = await kernel.execute(
                f"df = tre.query({sql!r}, epsilon=0.5)\n"
                'print(json.dumps({"rows": df.height, "cached": tre.last().cached}))'
            )
            first_result = time.perf_counter() - up
            answer = json.loads(out.strip().splitlines()[-1])
            if answer["rows"] < 1:
                raise RuntimeError("the first query returned no rows")
            kernel.conn.close()
            return up - started, import_s, query_s, first_result, bool(answer["cached"])
        finally:
            await http.delete(f"{base}/api/kernels/{kernel_id}")


# --- the rounds ---------------------------------------------------------------------------


def _round(
    n: int,
    settings: Settings,
    state: DemoState,
    api_port: int,
    hub_port: int,
    **layout_kw: Any,
) -> Round:
    """Start API and hub, then login → spawn → kernel → first query; stop both."""
    api_url = state.api_url
    hub_url = f"http://127.0.0.1:{hub_port}"
    api = start_api(settings, "127.0.0.1", api_port)
    procs = [api]
    try:
        wait_healthy(f"{api_url}/health", api)
        layout = layout_for(settings, api_url=api_url, port=hub_port, **layout_kw)
        log = settings.data_root.resolve().parent / "hub.log"
        started = time.perf_counter()
        hub = start_hub(settings, api_url=api_url, port=hub_port, layout=layout, log_path=log)
        procs.append(hub)
        wait_healthy(f"{hub_url}/hub/health", hub, timeout=90)
        hub_start = time.perf_counter() - started

        with httpx.Client(base_url=hub_url, follow_redirects=False, timeout=60) as http:
            t0 = time.perf_counter()
            _login(http, RESEARCHER, state.password(RESEARCHER))
            login = time.perf_counter() - t0
            _spawn(http, state.project_id)
            token = _hub_token(http, RESEARCHER)
            server = f"{hub_url}/user/{RESEARCHER}"
            _wait_server(server, token)
            ready = time.perf_counter() - t0
            # A different grouping alias each round: the answer cache must not serve it.
            sql = f"SELECT sex, COUNT(*) AS n_round{n} FROM health GROUP BY sex"
            kernel, imp, query, first, cached = asyncio.run(_kernel_round(server, token, sql))
            http.delete(
                f"/hub/api/users/{RESEARCHER}/server",
                headers={"X-XSRFToken": str(http.cookies.get("_xsrf", ""))},
            )
        return Round(hub_start, login, ready, kernel, imp, query, first, cached)
    finally:
        stop(list(reversed(procs)))


def _stats(xs: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(xs), 3),
        "min": round(min(xs), 3),
        "max": round(max(xs), 3),
    }


def main(argv: list[str]) -> int:
    """Run the benchmark; prints figures against the targets and a one-line JSON summary."""
    p = argparse.ArgumentParser(prog="bench/workspace.py", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--people", type=int, default=1500, help="synthetic people in the demo")
    args = p.parse_args(argv)
    console = Console(stderr=True)
    if os.geteuid() != 0:
        print(
            "bench/workspace.py must run as root: the embedded JupyterHub starts each "
            "researcher's server as their own system account (useradd, setuid). "
            "Run it with sudo, e.g. `sudo .venv/bin/python -m bench workspace`.",
            file=sys.stderr,
        )
        return 2
    if not PROXY.exists():
        print(f"configurable-http-proxy missing at {PROXY}: run `make install`", file=sys.stderr)
        return 2
    if not workspace_ready(WORKSPACE_ENV):
        console.print(f"Building the notebook environment in {WORKSPACE_ENV} (once) …")
        build_workspace_env(WORKSPACE_ENV)

    load_before = os.getloadavg()
    # Not a 0700 temp folder: researchers' homes live under it, the data root's modes guard it.
    root = Path(tempfile.mkdtemp(prefix="tre-bench-workspace-", dir="/tmp"))
    os.chmod(root, 0o755)
    prefix = f"b{secrets.token_hex(3)}-"  # this run's own system accounts, removed at the end
    rounds: list[Round] = []
    try:
        settings = Settings(
            data_root=root / "data", key_dir=root / "keys", policy_dir=REPO / "policies"
        )
        api_port, hub_port = _free_port(), _free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        console.print(f"Setting up a demo stack ({args.people:,} people) in {root} …")
        state = setup_demo(settings, people=args.people, api_url=api_url, console=console)
        (root / "homes").mkdir(mode=0o755)
        for n in range(1, args.rounds + 1):
            with console.status(f"round {n}/{args.rounds}: hub, login, spawn, kernel, query"):
                r = _round(
                    n,
                    settings,
                    state,
                    api_port,
                    hub_port,
                    homes_root=root / "homes",
                    user_prefix=prefix,
                    runtime_root=root / "run",
                    egress_table=f"tre_bench_{prefix[1:-1]}",
                )
            rounds.append(r)
            print(
                f"round {n}: hub {r.hub_start:.2f} s; login {r.login:.2f} s, ready "
                f"{r.ready:.2f} s after login; kernel {r.kernel:.2f} s; first result "
                f"{r.first_result:.2f} s after kernel up (import {r.client_import:.2f} s, "
                f"query {r.query:.2f} s){' CACHED' if r.cached else ''}",
                flush=True,
            )
    finally:
        subprocess.run(["userdel", prefix + RESEARCHER], capture_output=True, check=False)
        subprocess.run(["groupdel", prefix + "researchers"], capture_output=True, check=False)
        egress.remove(f"tre_bench_{prefix[1:-1]}")  # the notebooks' nftables table
        shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()

    figures = {
        name: _stats([getattr(r, name) for r in rounds])
        for name in (
            "hub_start",
            "login",
            "ready",
            "kernel",
            "client_import",
            "query",
            "first_result",
        )
    }
    ready_ok = figures["ready"]["median"] <= TARGET_READY_S
    query_ok = figures["first_result"]["median"] <= TARGET_QUERY_S
    print(f"medians of {len(rounds)} rounds (min–max):")
    for name, label in (
        ("hub_start", "hub start → /hub/health 200"),
        ("login", "login (form with _xsrf)"),
        ("ready", "login → server API answers"),
        ("kernel", "kernel start → kernel up"),
        ("client_import", "import tre.client in the kernel"),
        ("query", "tre.query call"),
        ("first_result", "kernel up → first query result"),
    ):
        f = figures[name]
        print(f"  {label:<34} {f['median']:6.2f} s  ({f['min']:.2f}–{f['max']:.2f})")
    print(
        f"targets: server ready ≤ {TARGET_READY_S:g} s after login: "
        f"{'met' if ready_ok else 'MISSED'} ({figures['ready']['median']:.2f} s); first query "
        f"result ≤ {TARGET_QUERY_S:g} s after the kernel is up: "
        f"{'met' if query_ok else 'MISSED'} ({figures['first_result']['median']:.2f} s)"
    )
    print(
        f"load average (1/5/15 min) before {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} CPUs"
    )
    summary = {
        "bench": "workspace",
        "rounds": len(rounds),
        "medians_s": {k: v["median"] for k, v in figures.items()},
        "ranges_s": {k: [v["min"], v["max"]] for k, v in figures.items()},
        "targets_s": {"ready_after_login": TARGET_READY_S, "first_result": TARGET_QUERY_S},
        "targets_met": {"ready_after_login": ready_ok, "first_result": query_ok},
        "any_cached": any(r.cached for r in rounds),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "per_round": [asdict(r) for r in rounds],
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
