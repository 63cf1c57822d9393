"""The notebook environment's settings files, written anew by the hub at every start."""

from __future__ import annotations

import json
from pathlib import Path

from tre.hub.workspace import KERNEL_CONFIG, LAB_OVERRIDES, write_settings


def test_settings_switch_off_unused_extensions_and_are_rewritten(tmp_path: Path) -> None:
    paths = write_settings(tmp_path)
    by_name = {p.name: p for p in paths}
    assert set(by_name) == {"overrides.json", "ipython_kernel_config.py", "zz-tre-workspace.json"}
    for p in paths:
        assert p.stat().st_mode & 0o777 == 0o644
    server = by_name["zz-tre-workspace.json"]
    assert server.parent.name == "jupyter_server_config.d"
    off = json.loads(server.read_text())["ServerApp"]["jpserver_extensions"]
    assert off == {"jupyter_lsp": False, "jupyter_server_terminals": False}
    assert json.loads(by_name["overrides.json"].read_text()) == LAB_OVERRIDES
    server.write_text("{}\n")  # changed by hand, or written by an older tre
    write_settings(tmp_path)
    assert json.loads(server.read_text())["ServerApp"]["jpserver_extensions"] == off
    assert by_name["ipython_kernel_config.py"].read_text() == KERNEL_CONFIG
