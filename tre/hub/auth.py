"""`TREAuthenticator`: JupyterHub logins checked against the tre API, deny by default.

A person gets in only when the tre API accepts their password, their account has the
researcher role with accreditation valid today, and they are a member of at least one active
project. The console session from the API is kept in JupyterHub's encrypted auth state
(needs a stable JUPYTERHUB_CRYPT_KEY); before a server starts, `pre_spawn_start` exchanges it
for a short-lived token scoped to the chosen project and puts TRE_API_URL and TRE_TOKEN into
the notebook's environment. Nothing here sees data: the hub talks to the API over HTTP only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Float, Unicode

TOKEN_LABEL = "jupyterhub"  # noqa: S105 (a label, not a secret)


@dataclass(frozen=True)
class Admission:
    """Why a login is admitted or refused (`projects` empty means refused)."""

    projects: tuple[dict[str, Any], ...]
    refusal: str | None = None


def admission(me: dict[str, Any], projects: list[dict[str, Any]], today: date) -> Admission:
    """Decide a login from `GET /me` and `GET /projects` (pure, so it is tested directly)."""
    user = me["user"]
    if user.get("disabled"):
        return Admission((), "this account is disabled")
    if "researcher" not in user.get("roles", []):
        return Admission((), "only researchers use the notebook workspace")
    until = user.get("accredited_until")
    if until is None or date.fromisoformat(until) < today:
        when = f" (it ended on {until})" if until else ""
        return Admission((), f"your researcher accreditation is not valid today{when}")
    mine = tuple(
        {"id": p["id"], "title": p["title"], "end_date": p["end_date"]}
        for p in projects
        if p.get("status") == "active" and user["id"] in p.get("member_ids", [])
    )
    if not mine:
        return Admission((), "you are not a member of an active project")
    return Admission(mine)


class TREAuthenticator(Authenticator):
    """Password login against the tre API; admits active, accredited project members only."""

    api_url = Unicode(
        "http://127.0.0.1:8000",
        config=True,
        help="Base URL of the tre API (as the hub reaches it).",
    )
    notebook_api_url = Unicode(
        "",
        config=True,
        help="TRE_API_URL given to notebooks, if they reach the API at another address "
        "(default: api_url).",
    )
    token_ttl_hours = Float(
        12.0, config=True, help="Lifetime of the project token injected into a notebook server."
    )
    http_timeout = Float(10.0, config=True, help="Seconds to wait for the tre API.")

    async def _call(
        self, method: str, path: str, *, bearer: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        async with httpx.AsyncClient(base_url=self.api_url, timeout=self.http_timeout) as http:
            try:
                return await http.request(method, path, headers=headers, **kw)
            except httpx.HTTPError as exc:
                self.log.error("tre API unreachable at %s: %s", self.api_url, type(exc).__name__)
                raise web.HTTPError(503, "the tre API is unreachable; try again shortly") from None

    @staticmethod
    def _message(r: httpx.Response) -> str:
        try:
            err = r.json()["error"]
            return f"{err['message']}" + (f" ({err['hint']})" if err.get("hint") else "")
        except (ValueError, KeyError, TypeError):
            return f"the tre API answered HTTP {r.status_code}"

    async def _admission(self, session: str) -> Admission:
        me = await self._call("GET", "/me", bearer=session)
        projects = await self._call("GET", "/projects", bearer=session)
        for r in (me, projects):
            if r.status_code != 200:
                raise web.HTTPError(403, self._message(r))
        return admission(me.json(), projects.json(), date.today())

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        """Check the password with the API, then who may use the workspace."""
        username = (data.get("username") or "").strip()
        password = data.get("password") or ""
        if not username or not password:
            return None
        r = await self._call(
            "POST", "/auth/login", json={"username": username, "password": password}
        )
        if r.status_code in (401, 422):
            self.log.info("tre login refused for a user (HTTP %s)", r.status_code)
            return None  # JupyterHub shows "Invalid username or password"
        if r.status_code != 200:
            raise web.HTTPError(403, self._message(r))
        session = r.json()["access_token"]
        decided = await self._admission(session)
        if decided.refusal:
            self.log.info("tre workspace refused %s: %s", username, decided.refusal)
            raise web.HTTPError(403, f"{username}: {decided.refusal}")
        return {
            "name": username,
            "auth_state": {"session": session, "projects": list(decided.projects)},
        }

    async def check_allowed(
        self, username: str, authentication: dict[str, Any] | None = None
    ) -> bool:
        """Deny by default: only logins that `authenticate` admitted (with projects) pass."""
        state = (authentication or {}).get("auth_state") or {}
        return bool(state.get("projects"))

    async def refresh_user(
        self, user: Any, handler: Any = None, **kw: Any
    ) -> bool | dict[str, Any]:
        """Re-read the projects before a spawn; a dead session or no project means log in again."""
        state = await user.get_auth_state()
        if not state or not state.get("session"):
            return False
        try:
            decided = await self._admission(state["session"])
        except web.HTTPError:
            return False
        if decided.refusal:
            return False
        return {"auth_state": {**state, "projects": list(decided.projects)}}

    async def pre_spawn_start(self, user: Any, spawner: Any) -> None:
        """Issue a project token for the chosen project and inject it into the server's env."""
        state = await user.get_auth_state()
        if not state or not state.get("session"):
            raise web.HTTPError(403, "your tre login has expired; log out and in again")
        project_id = int((spawner.user_options or {}).get("project_id") or 0)
        allowed = {int(p["id"]) for p in state.get("projects", [])}
        if not project_id and len(allowed) == 1:
            project_id = next(iter(allowed))
        if project_id not in allowed:
            raise web.HTTPError(403, "choose one of your active projects")
        r = await self._call(
            "POST",
            "/tokens",
            bearer=state["session"],
            json={
                "project_id": project_id,
                "ttl_hours": self.token_ttl_hours,
                "label": TOKEN_LABEL,
            },
        )
        if r.status_code != 201:
            raise web.HTTPError(403, self._message(r))
        issued = r.json()
        spawner.environment = {
            **(spawner.environment or {}),
            "TRE_API_URL": self.notebook_api_url or self.api_url,
            "TRE_TOKEN": issued["token"],
            "TRE_PROJECT_ID": str(project_id),
        }
        # Kept (encrypted) so the token can be revoked when the server stops.
        await user.save_auth_state({**state, "token_id": issued["info"]["id"]})

    async def revoke_token(self, user: Any) -> None:
        """Revoke the project token of the user's last server (it stopped)."""
        state = await user.get_auth_state()
        if not state or not state.get("token_id") or not state.get("session"):
            return
        r = await self._call(
            "POST",
            f"/tokens/{state['token_id']}/revoke",
            bearer=state["session"],
            json={"reason": "notebook server stopped"},
        )
        if r.status_code not in (200, 409):
            self.log.warning("could not revoke a notebook token (HTTP %s)", r.status_code)
        await user.save_auth_state({k: v for k, v in state.items() if k != "token_id"})
