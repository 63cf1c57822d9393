"""The embedded JupyterHub's configuration, as a function of a few paths and ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class HubLayout:
    """Where the embedded hub listens, keeps its state and finds its programs."""

    api_url: str  # the tre API, as the hub and the notebooks reach it
    hub_dir: Path  # jupyterhub.sqlite, cookie secret, pid files (mode 0700)
    port: int  # the public proxy port (the URL people open)
    hub_port: int  # the hub's own API, for the proxy and the notebook servers
    proxy_api_port: int
    proxy_command: Path
    workspace_env: Path
    homes_root: Path = Path("/home")
    idle_seconds: int = 3600
    token_ttl_hours: float = 12.0
    user_prefix: str = "tre-"  # system accounts are <prefix><username>
    runtime_root: Path = Path("/run/tre-workspace")  # researchers' private Jupyter runtime dirs
    egress_table: str = "tre_workspace"  # the nftables table confining notebooks' connections
    egress_required: bool = True  # refuse spawns when that rule cannot be installed


def configure(c: Any, layout: HubLayout) -> None:
    """Fill a JupyterHub config object `c` for the embedded, local-process setup."""
    from tre.hub.auth import TREAuthenticator
    from tre.hub.spawner import TRESpawner

    state = layout.hub_dir
    c.JupyterHub.ip = "127.0.0.1"
    c.JupyterHub.port = layout.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = layout.hub_port
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.command = [str(layout.proxy_command)]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{layout.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.JupyterHub.cleanup_servers = True  # Ctrl-C on the demo stops notebook servers too

    c.JupyterHub.authenticator_class = TREAuthenticator
    c.TREAuthenticator.api_url = layout.api_url
    c.TREAuthenticator.token_ttl_hours = layout.token_ttl_hours
    c.Authenticator.enable_auth_state = True  # the tre session, encrypted (JUPYTERHUB_CRYPT_KEY)
    # JupyterHub ≥ 5 admits nobody without allow config; ours is check_allowed (deny by default).
    c.Authenticator.any_allow_config = True
    c.Authenticator.refresh_pre_spawn = True  # re-read projects (and the session) before a spawn
    c.Authenticator.auth_refresh_age = 300
    c.Authenticator.admin_users = set()

    c.JupyterHub.spawner_class = TRESpawner
    c.TRESpawner.workspace_env = str(layout.workspace_env)
    c.TRESpawner.homes_root = str(layout.homes_root)
    c.TRESpawner.idle_seconds = layout.idle_seconds
    c.TRESpawner.user_prefix = layout.user_prefix
    c.TRESpawner.runtime_root = str(layout.runtime_root)
    c.TRESpawner.egress_table = layout.egress_table
    c.TRESpawner.egress_required = layout.egress_required
    # Notebooks may connect to the tre API and to the hub's own API (the single-user server
    # reports activity and completes OAuth there); nothing else, the proxy's API included.
    c.TRESpawner.egress_allow = [layout.api_url, f"http://127.0.0.1:{layout.hub_port}"]
    c.Spawner.start_timeout = 60
    c.Spawner.http_timeout = 60
    c.Spawner.default_url = "/lab"
