"""Drive a real JupyterHub over HTTP as a browser would, and run code in a researcher's kernel."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')


@dataclass
class HubBrowser:
    """A cookie-keeping HTTP client on the hub's public URL."""

    url: str
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def xsrf(self) -> str:
        return str(self.http.cookies.get("_xsrf", ""))

    def login(self, username: str, password: str) -> httpx.Response:
        """GET the login page (for _xsrf), then POST the form."""
        page = self.http.get("/hub/login")
        m = XSRF.search(page.text)
        assert m, page.text[:500]
        return self.http.post(
            "/hub/login", data={"username": username, "password": password, "_xsrf": m.group(1)}
        )

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The hub's REST API with the login cookie (JupyterHub wants the XSRF header)."""
        return self.http.request(
            method, f"/hub/api{path}", headers={"X-XSRFToken": self.xsrf()}, **kw
        )

    def spawn(self, project_id: int) -> httpx.Response:
        """Submit the spawn form choosing a project."""
        form = self.http.get("/hub/spawn")
        assert form.status_code == 200, form.text[:300]
        m = XSRF.search(form.text)
        data = {"project_id": str(project_id), "_xsrf": m.group(1) if m else self.xsrf()}
        return self.http.post("/hub/spawn", data=data)

    def wait_ready(self, username: str, timeout: float = 60) -> dict[str, Any]:
        """Poll the user's model until the default server is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{username}").json()
            server = model.get("servers", {}).get("")
            if server and server.get("ready"):
                return dict(server)
            time.sleep(0.3)
        raise AssertionError(f"{username}'s server not ready in {timeout} s")

    def user_token(self, username: str) -> str:
        """A hub API token for the logged-in user (to reach their server's REST API)."""
        r = self.api("POST", f"/users/{username}/tokens", json={"note": "test", "expires_in": 600})
        assert r.status_code in (200, 201), r.text
        return str(r.json()["token"])


def run_in_kernel(server_url: str, token: str, code: str, timeout: float = 60) -> str:
    """Start a kernel on a notebook server, run `code`, return its stdout (fail on an error)."""
    return asyncio.run(_run(server_url.rstrip("/"), token, code, timeout))


async def _run(base: str, token: str, code: str, timeout: float) -> str:
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        r = await http.post(f"{base}/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        try:
            ws_url = base.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
            conn = await websocket_connect(HTTPRequest(ws_url, headers=headers))
            msg_id = uuid.uuid4().hex
            conn.write_message(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": "test",
                            "session": uuid.uuid4().hex,
                            "msg_type": "execute_request",
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "content": {"code": code, "silent": False},
                        "channel": "shell",
                    }
                )
            )
            out: list[str] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                raw = await asyncio.wait_for(conn.read_message(), timeout)
                assert raw is not None, "kernel websocket closed"
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "error":
                    raise AssertionError("kernel error: " + "\n".join(msg["content"]["traceback"]))
                elif kind == "execute_reply":
                    return "".join(out)
            raise AssertionError("kernel did not answer in time")
        finally:
            await http.delete(f"{base}/api/kernels/{kernel}")
