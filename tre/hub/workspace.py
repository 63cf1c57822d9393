"""The researchers' notebook environment: a virtual environment from the system Python.

It must be executable by every researcher's system account, so it cannot be the service's own
environment (whose interpreter may live under a root-only home). It holds JupyterLab, the
single-user server and the tre client (installed without server dependencies), pinned by the
repository's constraints.txt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = (
    "jupyterlab",
    "jupyterhub==6.1.1",
    "ipykernel",
    "httpx",
    "polars",
    "matplotlib",
    "pandas",
    "pyarrow",
    "pydantic",
)
# Pins that need a newer Python than Debian's 3.11.2 (soupsieve 4 needs ≥ 3.11.5): the
# notebook environment takes the newest version its interpreter supports.
UNPINNED = frozenset({"soupsieve"})
# JupyterLab settings forced for every researcher: no "get notified about Jupyter news?"
# prompt, no news fetch, no update check (a notebook cannot reach the internet anyway).
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    }
}
# Jupyter server extensions researchers have no use for, switched off (each costs start-up
# time): the language-server bridge (no language servers are installed) and terminals (off
# anyway: a terminal would be a shell outside the notebook's audited API).
SERVER_CONFIG = {
    "ServerApp": {"jpserver_extensions": {"jupyter_lsp": False, "jupyter_server_terminals": False}}
}
SERVER_CONFIG_NAME = "zz-tre-workspace.json"  # sorts after the extensions' own enable files
# IPython kernel configuration (sys.prefix/etc/ipython is on IPython's config path): a socket
# refused by the egress rule (tre.hub.egress) gets a note saying why. File permission errors
# (EACCES) are left alone; the rule's UDP refusal is EPERM.
NETWORK_NOTE = (
    "tre: notebooks in this workspace may connect to the tre API only (use tre.query, "
    "tre.datasets, ...); other hosts, local services, UDP and DNS are refused by the "
    "workspace's network rule."
)
_NOTE_CODE = f"""
def _tre_network_note():
    import errno, socket

    def noted(shell, etype, value, tb, tb_offset=None):
        refused = isinstance(value, (ConnectionRefusedError, socket.gaierror)) or (
            isinstance(value, PermissionError) and value.errno == errno.EPERM
        )
        if refused and {NETWORK_NOTE!r} not in getattr(value, "__notes__", ()):
            value.add_note({NETWORK_NOTE!r})
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)

    get_ipython().set_custom_exc((ConnectionRefusedError, PermissionError, socket.gaierror), noted)

_tre_network_note()
del _tre_network_note
"""
KERNEL_CONFIG = (
    "# Written by tre.hub.workspace; edit it there (see docs/workspace.md).\n"
    f"c.InteractiveShellApp.exec_lines = [{_NOTE_CODE!r}]\n"
)


def system_python() -> str:
    """The system interpreter (world-executable), not the one running tre."""
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("python3")
    if not found:
        raise FileNotFoundError("no system python3 to build the notebook environment from")
    return found


def build_workspace_env(target: Path, *, repo: Path = REPO) -> Path:
    """Create (or complete) the notebook environment at `target`; returns it."""
    pip = [str(target / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    if not (target / "bin" / "python").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([system_python(), "-m", "venv", str(target)], check=True)  # noqa: S603
        subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)  # noqa: S603
    constraints = target / "constraints.txt"
    constraints.write_text(
        "".join(
            line + "\n"
            for line in (repo / "constraints.txt").read_text().splitlines()
            if line.split("==")[0].strip().lower() not in UNPINNED
        )
    )
    subprocess.run(  # noqa: S603 (fixed package list, pinned by the constraints file)
        [*pip, "install", "-c", str(constraints), *PACKAGES], check=True
    )
    # The client only: tre's server dependencies are deliberately not installed here.
    subprocess.run([*pip, "install", "--no-deps", "--upgrade", str(repo)], check=True)  # noqa: S603
    write_settings(target)
    for folder in (target.parent, target):
        os.chmod(folder, 0o755)  # noqa: S103 (researchers must execute it; it holds no secrets)
    return target


def _settings_files(target: Path) -> dict[Path, str]:
    """Every settings file tre writes into the environment, with its content."""
    return {
        _lab_settings_path(target): json.dumps(LAB_OVERRIDES, indent=2) + "\n",
        _kernel_config_path(target): KERNEL_CONFIG,
        _server_config_path(target): json.dumps(SERVER_CONFIG, indent=2) + "\n",
    }


def _write_setting(path: Path, target: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_settings_files(target)[path])
    os.chmod(path, 0o644)
    return path


def write_lab_settings(target: Path) -> Path:
    """JupyterLab's settings overrides in the environment (share/jupyter/lab/settings)."""
    return _write_setting(_lab_settings_path(target), target)


def write_kernel_config(target: Path) -> Path:
    """The IPython kernel configuration in the environment (etc/ipython)."""
    return _write_setting(_kernel_config_path(target), target)


def write_server_config(target: Path) -> Path:
    """The Jupyter server configuration in the environment (unused extensions off)."""
    return _write_setting(_server_config_path(target), target)


def workspace_ready(target: Path) -> bool:
    """Whether `target` has the single-user server (the hub rewrites the settings files at
    every start: `write_settings`)."""
    return (target / "bin" / "jupyterhub-singleuser").exists()


def write_settings(target: Path) -> tuple[Path, ...]:
    """Every settings file tre keeps in the environment, written anew (an environment built
    by an older tre gets the current ones)."""
    return tuple(_write_setting(p, target) for p in _settings_files(target))


def _lab_settings_path(target: Path) -> Path:
    return target / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def _kernel_config_path(target: Path) -> Path:
    return target / "etc" / "ipython" / "ipython_kernel_config.py"


def _server_config_path(target: Path) -> Path:
    return target / "etc" / "jupyter" / "jupyter_server_config.d" / SERVER_CONFIG_NAME
