"""A real JupyterHub (embedded setup, as root) on a loopback port against a real tre API.

Deny by default at login (wrong password, no accreditation, no active project); a researcher
chooses a project, gets a server running as their own system account with a project token in
its environment, and from inside a kernel can query tre but cannot read the data root, the
control-plane database or the keys; stopping the server revokes its token.
"""

from __future__ import annotations

import json
import os
import pwd
import time

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Hub
from tests.e2e.hubkit import HubBrowser, run_in_kernel
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


def test_a_researcher_spawns_as_their_own_user_and_a_kernel_can_query_but_not_read_data(
    hub: Hub,
) -> None:
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
    ready_s = time.monotonic() - started
    token = b.user_token("ada")
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
    result = json.loads(run_in_kernel(f"{hub.url}/user/ada", token, code).strip().splitlines()[-1])
    assert result["user"] == hub.system_user("ada")
    assert result["env"] == ["TRE_API_URL", "TRE_PROJECT_ID", "TRE_TOKEN"]
    assert {result[k] for k in ("data", "db", "key", "creds")} == {"denied"}
    assert result["rows"] == 2 and result["project"] == stack.state.project_id
    assert pwd.getpwnam(hub.system_user("ada")).pw_shell == "/usr/sbin/nologin"
    assert ready_s < 30

    # Stopping the server revokes the token it was given.
    r = b.api("DELETE", "/users/ada/server")
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
