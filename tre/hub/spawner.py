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
import html
import pwd
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Integer, Unicode, default

_SAFE = re.compile(r"[^a-z0-9_-]")


def system_name(username: str, prefix: str = "tre-") -> str:
    """The system account of a tre username (never an existing system account's name)."""
    return (prefix + _SAFE.sub("_", username.lower()))[:32]


def lab_args(idle_seconds: int) -> list[str]:
    """Single-user server options: no terminals, no news or update checks, idle shutdown."""
    return [
        "--ServerApp.terminals_enabled=False",
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

    def _ensure_system_user(self) -> None:
        name = self.system_user
        try:
            pwd.getpwnam(name)
            return
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(  # noqa: S603 (fixed program; the name is sanitised by system_name)
            [
                useradd,
                "--create-home",
                "--home-dir",
                str(Path(self.homes_root) / name),
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                name,
            ],
            check=True,
            capture_output=True,
        )
        self.log.info("created system user %s for %s", name, self.user.name)

    def make_preexec_fn(self, name: str) -> Any:
        """Drop to the researcher's system account (not the tre username)."""
        return super().make_preexec_fn(self.system_user)

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        """USER, HOME, SHELL and PATH of the researcher's system account and workspace."""
        pw = pwd.getpwnam(self.system_user)
        env["USER"] = pw.pw_name
        env["HOME"] = pw.pw_dir
        env["SHELL"] = "/usr/sbin/nologin"
        env["PATH"] = f"{Path(self.workspace_env) / 'bin'}:/usr/local/bin:/usr/bin:/bin"
        return env

    async def start(self) -> Any:
        """Create the system account if needed, then start the server as it."""
        await asyncio.get_running_loop().run_in_executor(None, self._ensure_system_user)
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
