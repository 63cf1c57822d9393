"""Start the embedded JupyterHub: state folder, stable crypt key, config file, process; and
remove the notebooks' network rule when it stops."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from tre.config import Settings
from tre.hub import egress, mounts
from tre.hub.config import HubLayout
from tre.hub.workspace import write_settings

REPO = Path(__file__).resolve().parents[2]
PROXY = REPO / "deploy" / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
WORKSPACE_ENV = Path(os.environ.get("TRE_HUB_WORKSPACE_ENV", "/opt/tre/workspace"))
# The development opt-out: spawn notebooks even where the egress rule cannot be installed.
UNRESTRICTED_EGRESS_VAR = "TRE_HUB_UNRESTRICTED_EGRESS"

CONFIG_TEMPLATE = """# Written by tre.hub.launch; edit tre/hub/config.py instead.
from pathlib import Path
from tre.hub.config import HubLayout, configure

configure(c, HubLayout(
    api_url={api_url!r},
    hub_dir=Path({hub_dir!r}),
    port={port},
    hub_port={hub_port},
    proxy_api_port={proxy_api_port},
    proxy_command=Path({proxy!r}),
    workspace_env=Path({workspace!r}),
    homes_root=Path({homes!r}),
    idle_seconds={idle},
    user_prefix={prefix!r},
    runtime_root=Path({runtime!r}),
    egress_table={table!r},
    egress_required={required!r},
))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hub_dir(settings: Settings) -> Path:
    """The hub's private state folder, beside the data root (mode 0700)."""
    return settings.data_root.resolve().parent / "hub"


def crypt_key(settings: Settings) -> str:
    """The stable JUPYTERHUB_CRYPT_KEY (32 bytes, hex) in the key folder, created if missing."""
    path = settings.key_dir / "hub" / "crypt.key"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path.read_text().strip()


def layout_for(
    settings: Settings,
    *,
    api_url: str,
    port: int,
    workspace_env: Path = WORKSPACE_ENV,
    homes_root: Path = Path("/home"),
    idle_seconds: int = 3600,
    user_prefix: str = "tre-",
    runtime_root: Path = Path("/run/tre-workspace"),
    egress_table: str = egress.DEFAULT_TABLE,
) -> HubLayout:
    """A layout on free internal ports (egress rule required unless the opt-out is set)."""
    return HubLayout(
        api_url=api_url,
        hub_dir=hub_dir(settings),
        port=port,
        hub_port=_free_port(),
        proxy_api_port=_free_port(),
        proxy_command=PROXY,
        workspace_env=workspace_env,
        homes_root=homes_root,
        idle_seconds=idle_seconds,
        user_prefix=user_prefix,
        runtime_root=runtime_root,
        egress_table=egress_table,
        egress_required=not unrestricted_egress(),
    )


def unrestricted_egress() -> bool:
    """Whether the development opt-out (TRE_HUB_UNRESTRICTED_EGRESS=1) is set."""
    return os.environ.get(UNRESTRICTED_EGRESS_VAR, "").strip().lower() in ("1", "true", "yes")


def egress_problem() -> str | None:
    """Why notebooks cannot be confined here (the nft rule, the hidden /run), or None."""
    if os.geteuid() != 0:
        return "the hub is not running as root"
    if egress.nft_path() is None:
        return "the `nft` program is missing (apt-get install nftables)"
    return mounts.problem()  # hiding local services' unix sockets needs CAP_SYS_ADMIN


def remove_network_rule(layout: HubLayout) -> None:
    """Drop the notebooks' nftables table once the hub (and its servers) stopped."""
    if egress.nft_path() is not None and os.geteuid() == 0:
        egress.remove(layout.egress_table)


def write_config(layout: HubLayout) -> Path:
    """The jupyterhub_config.py for `layout`, in its private state folder."""
    layout.hub_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(layout.hub_dir, 0o700)  # jupyterhub.sqlite is created world-readable
    path = layout.hub_dir / "jupyterhub_config.py"
    path.write_text(
        CONFIG_TEMPLATE.format(
            api_url=layout.api_url,
            hub_dir=str(layout.hub_dir),
            port=layout.port,
            hub_port=layout.hub_port,
            proxy_api_port=layout.proxy_api_port,
            proxy=str(layout.proxy_command),
            workspace=str(layout.workspace_env),
            homes=str(layout.homes_root),
            idle=layout.idle_seconds,
            prefix=layout.user_prefix,
            runtime=str(layout.runtime_root),
            table=layout.egress_table,
            required=layout.egress_required,
        )
    )
    os.chmod(path, 0o600)
    return path


def start_hub(
    settings: Settings,
    *,
    api_url: str,
    port: int,
    layout: HubLayout | None = None,
    log_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """JupyterHub as a child process (own process group) with its config and crypt key."""
    layout = layout or layout_for(settings, api_url=api_url, port=port)
    if not layout.proxy_command.exists():
        raise FileNotFoundError(
            f"configurable-http-proxy not found at {layout.proxy_command}; run `make install` "
            "(it runs `npm ci` in deploy/hub)"
        )
    if not (layout.workspace_env / "bin" / "jupyterhub-singleuser").exists():
        raise FileNotFoundError(
            f"no notebook environment at {layout.workspace_env}; build it with "
            "`tre demo` (it builds it) or tre.hub.workspace.build_workspace_env"
        )
    write_settings(layout.workspace_env)
    config = write_config(layout)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "JUPYTERHUB_CRYPT_KEY": crypt_key(settings),
        "HOME": str(layout.hub_dir),
    }
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115 (kept open for the child)
    return subprocess.Popen(  # noqa: S603 (our interpreter, our config file)
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=layout.hub_dir,
        env=env,
        start_new_session=True,
        stdout=out,
        stderr=subprocess.STDOUT if out else None,
    )
