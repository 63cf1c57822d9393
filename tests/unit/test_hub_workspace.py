"""The notebook environment's settings files: written by tre, and an environment whose files
are missing or outdated is not taken as ready (so an older build is completed)."""

from __future__ import annotations

import json
from pathlib import Path

from tre.hub.workspace import (
    SERVER_CONFIG,
    workspace_ready,
    write_kernel_config,
    write_lab_settings,
    write_server_config,
)


def test_ready_only_with_the_server_and_current_settings(tmp_path: Path) -> None:
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "jupyterhub-singleuser").write_text("#!/bin/sh\n")
    assert not workspace_ready(env)  # no settings yet
    write_lab_settings(env)
    write_kernel_config(env)
    assert not workspace_ready(env)  # built before the server config existed
    path = write_server_config(env)
    assert workspace_ready(env)
    assert path.parent.name == "jupyter_server_config.d" and path.stat().st_mode & 0o777 == 0o644
    off = json.loads(path.read_text())["ServerApp"]["jpserver_extensions"]
    assert (
        off
        == {"jupyter_lsp": False, "jupyter_server_terminals": False}
        == dict(SERVER_CONFIG["ServerApp"]["jpserver_extensions"])
    )
    path.write_text("{}\n")  # changed by hand: rebuilt
    assert not workspace_ready(env)
