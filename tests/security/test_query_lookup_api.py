"""A lookup join through the HTTP API: the route reads lookups from the settings' policy folder
(`<policy_dir>/lookups`), answers with noise, and refuses a lookup the folder does not hold."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.api_support import REPO, Api, active_project, token_for

pytest_plugins = ("tests.governance_fixtures", "tests.api_support")

SQL = (
    "SELECT a.area, COUNT(*) AS n FROM health h "
    "JOIN {lookup} a ON h.region = a.region GROUP BY a.area"
)


def test_lookup_join_through_the_api_uses_the_policy_folder(api: Api, tmp_path: Path) -> None:
    a = api
    project = active_project(a)
    a.bearers["tok"] = token_for(a, "alice", project["id"])
    # The app's policy folder, copied with the region lookup under another name: only the
    # folder the settings point at is read.
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    text = (policies / "lookups" / "region_area.yaml").read_text()
    (policies / "lookups" / "region_broad.yaml").write_text(
        text.replace("name: region_area", "name: region_broad")
    )
    services = a.client.app.state.services
    services.settings = services.settings.model_copy(update={"policy_dir": policies})

    out = a.ok(
        "POST", "/query", "tok", json={"sql": SQL.format(lookup="region_broad"), "epsilon": 2.0}
    )
    assert sorted(r[0] for r in out["rows"]) == ["Midlands", "North", "South"]
    assert out["cost"]["rho"] > 0 and all(h[1] > 0 for h in out["half_widths_95"])

    (policies / "lookups" / "region_broad.yaml").unlink()
    r = a.call(
        "POST", "/query", "tok", json={"sql": SQL.format(lookup="region_broad"), "epsilon": 2.0}
    )
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["reason"] == "unknown_table" and "region_area" in body["hint"]
    assert str(policies) not in r.text
