"""tre.web: the server-rendered console for custodians, output checkers, researchers and
administrators, served by the API process under /console (see docs/web.md).

`router()` returns the console's routes; `tre.api.create_app` includes them. Pages call the
governance and output services directly, with the signed-in person as the actor, so every
permission is still decided by `tre.governance.decide`.
"""

from __future__ import annotations

from fastapi import APIRouter

from tre.web.console import PREFIX, ConsoleRoute
from tre.web.pages import admin, auth, custodian, outputs, researcher


def router() -> APIRouter:
    """The console's routes (HTML pages and forms under /console)."""
    r = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
    for module in (auth, researcher, custodian, outputs, admin):
        module.register(r)
    return r


__all__ = ["PREFIX", "router"]
