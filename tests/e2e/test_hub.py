"""A real JupyterHub (embedded setup, as root) on a loopback port against a real tre API.

Deny by default at login (wrong password, no accreditation, no active project); a researcher
chooses a project, gets a server running as their own system account with a project token in
its environment, and from inside a kernel can query tre but cannot read the data root, the
control-plane database or the keys, nor open a connection anywhere but the tre API and the hub
(PostgreSQL, the proxy's API, other loopback listeners, UDP, other hosts: refused at once);
stopping the server revokes its token.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Hub
from tests.e2e.hubkit import HubBrowser, run_in_kernel
from tre.hub import egress
from tre.hub.launch import PROXY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the embedded hub runs as root (one user each)"),
    pytest.mark.skipif(not PROXY.exists(), reason="run `make install` (npm ci in deploy/hub)"),
]


def test_logins_are_refused_with_a_reason(hub: Hub) -> None:
    b = HubBrowser(hub.url)
    wrong = b.login("ada", "not the password")
    assert wrong.status_code != 302 and "Invalid username or password" in wrong.text
    refused = HubBrowser(hub.url).login("noaccred", PASSWORD)
    assert refused.status_code == 403 and "accreditation is not valid" in refused.text
    lonely = HubBrowser(hub.url).login("noproject", PASSWORD)
    assert lonely.status_code == 403 and "not a member of an active project" in lonely.text
    custodian = HubBrowser(hub.url).login(
        "nhs_custodian", hub.stack.state.password("nhs_custodian")
    )
    assert custodian.status_code == 403 and "only researchers" in custodian.text


@dataclass
class Spawned:
    browser: HubBrowser
    token: str  # a hub API token for ada's server
    ready_s: float

    def run(self, hub: Hub, code: str) -> dict[str, Any]:
        """Run `code` in a fresh kernel on ada's server; its last printed line, as JSON."""
        out = run_in_kernel(f"{hub.url}/user/ada", self.token, code)
        return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def ada(hub: Hub) -> Spawned:
    """ada logged in, her server started on the demo project (stopped by the last test)."""
    stack = hub.stack
    b = HubBrowser(hub.url)
    r = b.login("ada", stack.state.password("ada"))
    assert r.status_code == 302, r.text[:500]
    form = b.http.get("/hub/spawn")
    assert f'value="{stack.state.project_id}"' in form.text and "Childhood health" in form.text
    started = time.monotonic()
    r = b.spawn(stack.state.project_id)
    assert r.status_code == 302, r.text[:500]
    b.wait_ready("ada")
    return Spawned(b, b.user_token("ada"), time.monotonic() - started)


def test_a_researcher_spawns_as_their_own_user_and_a_kernel_can_query_but_not_read_data(
    hub: Hub, ada: Spawned
) -> None:
    stack = hub.stack
    data_file = next(stack.settings.datasets_dir.glob("health/v1/*.parquet"))
    code = f"""
import os, pwd, json
import tre.client as tre
out = {{"user": pwd.getpwuid(os.getuid()).pw_name, "env": sorted(k for k in os.environ if k.startswith(("TRE_", "JUPYTERHUB_CRYPT")))}}
for label, path in (("data", {str(data_file)!r}), ("db", {str(stack.settings.data_root / "control.sqlite")!r}),
                    ("key", {str(stack.settings.key_dir / "spine.key")!r}), ("creds", {str(stack.settings.data_root / "demo-credentials.json")!r})):
    try:
        open(path, "rb").read(1)
        out[label] = "READ"
    except PermissionError:
        out[label] = "denied"
df = tre.query("SELECT sex, COUNT(*) AS n FROM health GROUP BY sex", epsilon=1.0)
out["rows"] = df.height
out["project"] = tre.client().project_id
print(json.dumps(out))
"""
    result = ada.run(hub, code)
    assert result["user"] == hub.system_user("ada")
    assert result["env"] == ["TRE_API_URL", "TRE_PROJECT_ID", "TRE_TOKEN"]
    assert {result[k] for k in ("data", "db", "key", "creds")} == {"denied"}
    assert result["rows"] == 2 and result["project"] == stack.state.project_id
    account = pwd.getpwnam(hub.system_user("ada"))
    assert account.pw_shell == "/usr/sbin/nologin"
    # Researchers share their primary group (the egress rule's match): homes are private.
    assert grp.getgrgid(account.pw_gid).gr_name == f"{hub.prefix}researchers"
    assert os.stat(account.pw_dir).st_mode & 0o777 == 0o700
    assert ada.ready_s < 30


PROBE = """
import json, socket, time, errno
out = {}
def attempt(label, family, kind, address, source=None):
    started = time.monotonic()
    s = socket.socket(family, kind)
    s.settimeout(10)
    try:
        if source:
            s.bind(tuple(source))
        if kind == socket.SOCK_STREAM:
            s.connect(address)
        else:
            s.sendto(b"probe", address)
            s.sendto(b"probe", address)
        out[label] = ["open"]
    except OSError as exc:
        out[label] = [type(exc).__name__, str(exc), round(time.monotonic() - started, 3)]
    finally:
        s.close()
for label, family, kind, address, *source in TARGETS:
    attempt(label, family, kind, tuple(address), *source)
import os
out["run"] = sorted(os.listdir("/run"))
for label, path in UNIX_TARGETS:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        out[label] = ["open"]
    except OSError as exc:
        out[label] = [type(exc).__name__, str(exc)]
    finally:
        s.close()
import ipykernel.connect
out["transport"] = json.loads(ipykernel.connect.get_connection_info())["transport"]
import tre.client as tre
out["rows"] = tre.query("SELECT sex, COUNT(*) AS n FROM health GROUP BY sex", epsilon=1.0).height
print(json.dumps(out))
"""


PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"


def _listener(family: socket.AddressFamily, kind: socket.SocketKind, host: str) -> socket.socket:
    s = socket.socket(family, kind)
    s.bind((host, 0))
    if kind == socket.SOCK_STREAM:
        s.listen()
    return s


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def _unix_reachable(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_a_kernel_can_reach_tre_and_nothing_else(hub: Hub, ada: Spawned) -> None:
    if not hub.layout.egress_required:
        pytest.skip("the hub runs on the unrestricted opt-out: no nft or no mount namespace here")
    proxy_port = hub.layout.proxy_api_port
    tcp4 = _listener(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1")
    tcp6 = _listener(socket.AF_INET6, socket.SOCK_STREAM, "::1")
    udp4 = _listener(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1")
    udp4.settimeout(0.5)
    targets = [
        ("tcp4_listener", "AF_INET", "SOCK_STREAM", tcp4.getsockname()[:2]),
        ("tcp6_listener", "AF_INET6", "SOCK_STREAM", tcp6.getsockname()[:2]),
        ("udp4_listener", "AF_INET", "SOCK_DGRAM", udp4.getsockname()[:2]),
        ("udp_dns", "AF_INET", "SOCK_DGRAM", ("192.0.2.53", 53)),
        ("proxy_api", "AF_INET", "SOCK_STREAM", ("127.0.0.1", proxy_port)),
        ("external", "AF_INET", "SOCK_STREAM", ("192.0.2.1", 443)),
    ]
    # Each loopback target is open to everyone else (so a refusal means the rule refused it).
    assert _reachable("127.0.0.1", proxy_port)
    if _reachable("127.0.0.1", 5432):
        targets.append(("postgresql", "AF_INET", "SOCK_STREAM", ("127.0.0.1", 5432)))
    # A finished UDP exchange leaves a conntrack "flow" the kernel could reuse from its port.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(2)
        peer.sendto(b"hello", udp4.getsockname())
        udp4.sendto(b"reply", udp4.recvfrom(64)[1])
        assert peer.recvfrom(64)[0] == b"reply"
        stale_source = peer.getsockname()
    targets.append(
        ("udp_stale_flow", "AF_INET", "SOCK_DGRAM", udp4.getsockname()[:2], stale_source)
    )
    # Unix sockets escape the nft rule; those of local services live under /run (hidden).
    unix_path = f"/run/tre-test-{hub.prefix[:-1]}.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    os.chmod(unix_path, 0o777)
    unix.listen()
    unix_targets = [("unix_listener", unix_path)]
    if _unix_reachable(PG_SOCKET):
        unix_targets.append(("postgresql_socket", PG_SOCKET))
    code = (
        "import socket\nTARGETS = ["
        + ", ".join(
            f"({label!r}, socket.{fam}, socket.{kind}, {tuple(addr)!r}, *{list(source)!r})"
            for label, fam, kind, addr, *source in targets
        )
        + f"]\nUNIX_TARGETS = {unix_targets!r}\n"
        + PROBE
    )
    try:
        result = ada.run(hub, code)
        with pytest.raises(TimeoutError):
            udp4.recvfrom(64)  # nothing the kernel sent arrived
    finally:
        for s in (tcp4, tcp6, udp4, unix):
            s.close()
        os.unlink(unix_path)
    assert result["rows"] == 2, "tre.query must still work"
    assert result["transport"] == "ipc", "kernels must not need loopback TCP"
    assert result["run"] == [], "a notebook sees an empty /run (its runtime folder is elsewhere)"
    for label, _path in unix_targets:
        assert result[label][0] == "FileNotFoundError", (label, result[label])
    for label, _fam, kind, *_addr in targets:
        name, message, seconds = result[label]
        expected = "ConnectionRefusedError" if kind == "SOCK_STREAM" else "PermissionError"
        assert name == expected, (label, result[label])
        assert seconds < 1.0, (label, result[label])  # refused at once, not a timeout
        assert ("Connection refused" if kind == "SOCK_STREAM" else "not permitted") in message
    rule = egress.installed(hub.layout.egress_table)
    assert rule is not None and f"tcp dport {hub.layout.hub_port} accept" in rule

    # Uncaught in a cell, a refused connection says why; a refused file does not claim it.
    with pytest.raises(AssertionError) as refused:
        ada.run(hub, f"import socket\nsocket.create_connection(('127.0.0.1', {proxy_port}))")
    assert "ConnectionRefusedError" in str(refused.value)
    assert "may connect to the tre API only" in str(refused.value)
    with pytest.raises(AssertionError) as udp:
        ada.run(
            hub,
            "import socket\nsocket.socket(type=socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 53))",
        )
    assert "Operation not permitted" in str(udp.value) and "tre API only" in str(udp.value)
    data_file = next(hub.stack.settings.datasets_dir.glob("health/v1/*.parquet"))
    with pytest.raises(AssertionError) as denied:
        ada.run(hub, f"open({str(data_file)!r}, 'rb')")
    assert "Permission denied" in str(denied.value)
    assert "tre API only" not in str(denied.value)


def test_stopping_the_server_revokes_its_token(hub: Hub, ada: Spawned) -> None:
    stack = hub.stack
    r = ada.browser.api("DELETE", "/users/ada/server")
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 20
    revoked: list[object] = []
    while time.monotonic() < deadline and not revoked:
        tokens = httpx.get(
            f"{stack.api_url}/tokens",
            headers={"Authorization": f"Bearer {stack.session('ada')}"},
        ).json()
        revoked = [t for t in tokens if t["label"] == "jupyterhub" and t["revoked_at"]]
        time.sleep(0.3)
    assert revoked, "the notebook's token was not revoked when its server stopped"


def test_the_hub_state_folder_is_private(hub: Hub) -> None:
    hub_dir = hub.stack.settings.data_root.resolve().parent / "hub"
    assert hub_dir.stat().st_mode & 0o777 == 0o700
    assert (hub.stack.settings.key_dir / "hub" / "crypt.key").stat().st_mode & 0o777 == 0o600
