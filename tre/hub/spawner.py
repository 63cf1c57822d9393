"""`TRESpawner`: one system account per researcher, a project chosen at spawn, a locked-down Lab.

Each tre username maps to its own system user (`tre-<name>`, created on first spawn without a
login shell), so a kernel runs with no access to the hub's files: the data root, the control
database and the keys are owned by the service account with modes 0700/0600. The notebook
environment is a separate virtual environment built from the system Python (researchers must be
able to execute it) holding JupyterLab and the tre client only. JupyterLab's news and update
checks and its terminal are off; idle kernels and servers shut themselves down.
"""

from __future__ import annotations

import asyncio
import ctypes
import grp
import html
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets import Bool, Integer, List, Unicode, default

from tre.hub import egress, mounts

_PR_SET_NO_NEW_PRIVS = 38

_SAFE = re.compile(r"[^a-z0-9_-]")


def system_name(username: str, prefix: str = "tre-") -> str:
    """The system account of a tre username (never an existing system account's name)."""
    return (prefix + _SAFE.sub("_", username.lower()))[:32]


def lab_args(idle_seconds: int) -> list[str]:
    """Single-user server options: no terminals, no news or update checks, idle shutdown,
    kernels on unix sockets (the egress rule closes loopback TCP)."""
    return [
        "--ServerApp.terminals_enabled=False",
        "--KernelManager.transport=ipc",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--MappingKernelManager.cull_idle_timeout={idle_seconds}",
        "--MappingKernelManager.cull_interval=60",
        "--MappingKernelManager.cull_connected=True",
        f"--ServerApp.shutdown_no_activity_timeout={idle_seconds}",
    ]


class TRESpawner(LocalProcessSpawner):
    """LocalProcessSpawner with per-researcher system users and a project chooser."""

    workspace_env = Unicode(
        "/opt/tre/workspace",
        config=True,
        help="Virtual environment (from the system Python) with JupyterLab and the tre client.",
    )
    homes_root = Unicode("/home", config=True, help="Where researchers' home folders are made.")
    user_prefix = Unicode("tre-", config=True, help="Prefix of researchers' system accounts.")
    idle_seconds = Integer(
        3600, config=True, help="Idle kernels, then the idle server, stop after this long."
    )
    runtime_root = Unicode(
        "/run/tre-workspace",
        config=True,
        help="Where each researcher gets a private (0700) Jupyter runtime folder: kernel "
        "connection files and their unix sockets (a short path: sockets allow 107 bytes).",
    )
    egress_table = Unicode(
        egress.DEFAULT_TABLE, config=True, help="The nftables table (family inet) of the rule."
    )
    egress_allow = List(
        Unicode(),
        config=True,
        help="URLs (http://host:port) notebooks may open TCP connections to: the tre API and "
        "the hub's API. Everything else is refused.",
    )
    hidden_folders = List(
        Unicode(),
        ["/run"],
        config=True,
        help="Folders replaced by an empty tmpfs in the server's own mount namespace: local "
        "services' unix sockets live there (PostgreSQL's /run/postgresql, ...), which the "
        "egress rule cannot see. The runtime folder is mounted back if inside one.",
    )
    egress_required = Bool(
        True,
        config=True,
        help="Refuse to start a server when the egress rule cannot be installed or the hidden "
        "folders cannot be hidden. Off only for development on machines without nftables or "
        "CAP_SYS_ADMIN: notebooks can then reach any host or local service.",
    )

    _hide = False  # set before each spawn: whether hidden_folders can be hidden here

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        return [str(Path(self.workspace_env) / "bin" / "jupyterhub-singleuser")]

    @default("args")
    def _args_default(self) -> list[str]:
        return lab_args(self.idle_seconds)

    @default("env_keep")
    def _env_keep_default(self) -> list[str]:
        # Nothing of the hub's own environment (paths to the data root, keys, crypt key).
        return ["LANG", "LC_ALL"]

    @default("options_form")
    def _options_form_default(self) -> Any:
        return self._project_form

    @property
    def system_user(self) -> str:
        """This server's system account."""
        return system_name(self.user.name, self.user_prefix)

    @property
    def researchers_group(self) -> str:
        """The primary group of every researcher account (what the egress rule matches)."""
        return f"{self.user_prefix}researchers"

    @property
    def runtime_dir(self) -> Path:
        """This account's private Jupyter runtime folder."""
        return Path(self.runtime_root) / self.system_user

    async def _project_form(self, spawner: Any) -> str:
        state = await self.user.get_auth_state() or {}
        options = "".join(
            f'<option value="{int(p["id"])}">{html.escape(str(p["title"]))} '
            f"(project {int(p['id'])}, until {html.escape(str(p['end_date']))})</option>"
            for p in state.get("projects", [])
        )
        return (
            '<label for="project_id">Project</label>'
            f'<select class="form-control" name="project_id" id="project_id">{options}</select>'
            "<p>Your notebook can query this project's data only, with its budget.</p>"
        )

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """The chosen project id."""
        raw = (formdata.get("project_id") or [""])[0]
        return {"project_id": int(raw)} if raw.isdigit() else {}

    def _ensure_group(self) -> int:
        name = self.researchers_group
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            pass
        groupadd = shutil.which("groupadd") or "/usr/sbin/groupadd"
        subprocess.run(  # noqa: S603 (fixed program; the name comes from configuration)
            [groupadd, "--system", "--force", name], check=True, capture_output=True
        )
        self.log.info("created group %s for researchers' accounts", name)
        return grp.getgrnam(name).gr_gid

    def _ensure_system_user(self, gid: int) -> None:
        """The account exists, its primary group is the researchers' group, its home is 0700."""
        name = self.system_user
        home = Path(self.homes_root) / name
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            subprocess.run(  # noqa: S603 (fixed program; the name is sanitised by system_name)
                [
                    useradd,
                    "--create-home",
                    "--home-dir",
                    str(home),
                    "--shell",
                    "/usr/sbin/nologin",
                    "--gid",
                    str(gid),
                    name,
                ],
                check=True,
                capture_output=True,
            )
            self.log.info("created system user %s for %s", name, self.user.name)
            pw = pwd.getpwnam(name)
        if pw.pw_gid != gid:
            # An account made before the egress rule: move it into the researchers' group.
            usermod = shutil.which("usermod") or "/usr/sbin/usermod"
            subprocess.run(  # noqa: S603 (fixed program and sanitised name)
                [usermod, "--gid", str(gid), name], check=True, capture_output=True
            )
            self.log.info("moved system user %s into group %s", name, self.researchers_group)
        # Researchers share a group: their homes must not be readable through it.
        os.chmod(pw.pw_dir, 0o700)
        runtime = self.runtime_dir
        Path(self.runtime_root).mkdir(mode=0o755, parents=True, exist_ok=True)
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.chown(runtime, pw.pw_uid, gid)
        os.chmod(runtime, 0o700)

    def _confine_network(self, gid: int) -> None:
        """(Re)install the egress rule and check that local sockets can be hidden, or refuse
        the spawn (unless explicitly opted out)."""
        failures: list[str] = []
        try:
            hosts = [egress.url_endpoint(url) for url in self.egress_allow]
            if not hosts:
                raise egress.EgressError("no allowed endpoint is configured (egress_allow)")
            egress.install(egress.EgressPolicy(self.egress_table, gid, egress.endpoints(hosts)))
        except (egress.EgressError, ValueError) as exc:
            failures.append(str(exc))
        problem = mounts.problem() if self.hidden_folders else None
        if problem:
            failures.append(f"cannot hide local services' sockets: {problem}")
        self._hide = bool(self.hidden_folders) and problem is None
        if not failures:
            return
        if self.egress_required:
            self.log.error("refusing to start %s: %s", self.system_user, "; ".join(failures))
            refusal = web.HTTPError(
                503,
                "The notebook workspace is not available: its network rule could not be "
                "installed, so a notebook could reach hosts or services other than tre. An "
                "administrator must fix this (see the hub log).",
            )
            refusal.jupyterhub_message = refusal.log_message  # type: ignore[attr-defined]
            raise refusal
        self.log.warning(
            "UNRESTRICTED NETWORK: starting %s without full confinement (%s); its notebooks "
            "can reach other hosts or local services (egress_required is off)",
            self.system_user,
            "; ".join(failures),
        )

    def _prepare(self) -> None:
        gid = self._ensure_group()
        self._confine_network(gid)
        self._ensure_system_user(gid)

    def make_preexec_fn(self, name: str) -> Any:
        """Drop to the researcher's system account (not the tre username), in a mount
        namespace hiding local services' sockets, with no_new_privs: no setuid or setgid
        program can then change the group the egress rule matches."""
        drop = super().make_preexec_fn(self.system_user)
        libc = ctypes.CDLL(None, use_errno=True)  # looked up before the fork
        hidden = list(self.hidden_folders) if self._hide else []
        keep = [str(self.runtime_dir), pwd.getpwnam(self.system_user).pw_dir]

        def preexec() -> None:
            if hidden:
                mounts.hide(libc, hidden, keep)
            if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
            drop()

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        """USER, HOME, SHELL and PATH of the researcher's system account and workspace."""
        pw = pwd.getpwnam(self.system_user)
        env["USER"] = pw.pw_name
        env["HOME"] = pw.pw_dir
        env["SHELL"] = "/usr/sbin/nologin"
        env["PATH"] = f"{Path(self.workspace_env) / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        env["JUPYTER_RUNTIME_DIR"] = str(self.runtime_dir)
        return env

    async def start(self) -> Any:
        """Install the egress rule and create the system account if needed, then start the
        server as that account."""
        await asyncio.get_running_loop().run_in_executor(None, self._prepare)
        return await super().start()

    async def stop(self, now: bool = False) -> None:
        """Stop the server and revoke its project token."""
        await super().stop(now=now)
        revoke = getattr(self.authenticator, "revoke_token", None)
        if revoke is not None:
            try:
                await revoke(self.user)
            except Exception:  # the token expires anyway; never block a stop on it
                self.log.exception("revoking the notebook token failed")
