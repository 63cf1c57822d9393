"""The console's plumbing: templates, the session cookie, CSRF, the signed-in visitor, and one
route class that turns refusals into pages (and audits them).

Every page handler depends on `visitor` (a live server-side session and an enabled account,
re-read on each request) and every form handler on `form` (the session-bound CSRF token
checked). A refusal — `tre.errors.UserError` from governance or the output workflow, a missing
or forged CSRF token, a page the visitor's roles do not reach — is rendered as a page with the
same status code, and recorded as a `web.refused` audit event.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from tre import governance as g
from tre.api.deps import services
from tre.api.state import Services
from tre.audit import record, user_actor
from tre.errors import Forbidden, Unauthenticated, UserError
from tre.web.events import ConsoleActionRefused
from tre.web.sessions import SessionStore, WebSession

log = logging.getLogger("tre.web")
PREFIX = "/console"
HERE = Path(__file__).parent
COOKIE = "tre_console"
SECURE_COOKIE = "__Host-tre_console"  # the __Host- prefix: Secure, Path=/, no Domain
CSRF_FIELD = "csrf_token"

ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


class LoginRequired(Exception):
    """No live session: the visitor is sent to the login page."""


def secure_transport(request: Request) -> bool:
    """True unless the console is reached over plain HTTP on a loopback address.

    Cookies are marked Secure everywhere else, so a deployment must serve the console over
    HTTPS (or a TLS-terminating proxy that forwards `X-Forwarded-Proto: https`).
    """
    if request.url.scheme == "https":
        return True
    host = request.url.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def cookie_name(request: Request) -> str:
    """The session cookie's name on this transport."""
    return SECURE_COOKIE if secure_transport(request) else COOKIE


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """Set a console cookie: HttpOnly, SameSite=Strict, Path=/, Secure unless loopback HTTP."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_transport(request),
    )


def store(svc: Services) -> SessionStore:
    """The console's session store for this app (under the data root)."""
    return SessionStore(svc.settings.data_root / "web" / "sessions")


@dataclass(frozen=True)
class Visitor:
    """The signed-in person on this request."""

    actor: g.Actor
    display_name: str
    session: WebSession
    sid: str

    @property
    def roles(self) -> frozenset[g.Role]:
        """The visitor's roles."""
        return self.actor.roles

    def has(self, role: g.Role | str) -> bool:
        """True when the visitor holds `role`."""
        return g.Role(role) in self.actor.roles

    def require(self, role: g.Role, what: str) -> None:
        """Refuse a page meant for another role."""
        if not self.has(role):
            raise Forbidden(
                f"{what} is for {role.value.replace('_', ' ')}s; your account does not hold "
                "that role",
                reason="role_required",
                hint="Use the navigation: it lists the pages your roles reach.",
            )


def visitor(request: Request, svc: Annotated[Services, Depends(services)]) -> Visitor:
    """The signed-in visitor, or LoginRequired (no, expired or ended session; disabled account)."""
    sid = request.cookies.get(cookie_name(request))
    session = store(svc).get(sid, now=svc.clock())
    if session is None or sid is None:
        raise LoginRequired
    try:
        with svc.db.read() as s:
            actor = g.load_actor(s, session.user_id)
            user = g.get_user(s, actor, actor.user_id, now=svc.clock())
    except Unauthenticated:
        store(svc).delete(sid)
        raise LoginRequired from None
    v = Visitor(actor=actor, display_name=user.display_name, session=session, sid=sid)
    request.state.visitor = v
    return v


async def form(request: Request, svc: Annotated[Services, Depends(services)]) -> FormData:
    """The posted form, once its CSRF token matches the session's (else 403, audited)."""
    data = await request.form()
    sid = request.cookies.get(cookie_name(request))
    session = store(svc).get(sid, now=svc.clock())
    if session is None:
        raise LoginRequired
    sent = data.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(
        sent.encode("utf-8", "replace"), session.csrf.encode("ascii")
    ):
        raise Forbidden(
            "this form's security token is missing or does not match your session; "
            "nothing was changed",
            reason="csrf",
            hint="Go back, reload the page and submit the form again.",
        )
    return data


Who = Annotated[Visitor, Depends(visitor)]
Form = Annotated[FormData, Depends(form)]
Svc = Annotated[Services, Depends(services)]


# --- navigation and rendering -----------------------------------------------------------------

NAV: tuple[tuple[str | None, str, str], ...] = (
    (None, "Home", "/"),
    ("researcher", "Apply", "/apply"),
    ("researcher", "My projects", "/projects"),
    ("researcher", "My queries", "/queries"),
    ("researcher", "My output requests", "/outputs"),
    ("custodian", "My datasets", "/datasets"),
    ("custodian", "Applications", "/applications"),
    ("output_checker", "Review queue", "/review"),
    ("admin", "Users", "/admin/users"),
    ("admin", "Audit log", "/admin/audit"),
)


def nav_for(v: Visitor | None) -> list[tuple[str, str]]:
    """The navigation links the visitor's roles reach."""
    if v is None:
        return []
    return [(label, PREFIX + path) for role, label, path in NAV if role is None or v.has(role)]


def _fmt_time(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _age(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "—"
    seconds = max(0, int((now - value).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _budget(value: Any) -> str:
    if value is None:
        return "—"
    rho = format(value.rho.normalize(), "f")
    return f"ρ {rho}" + (f", δ {format(value.delta, 'g')}" if value.delta else "")


ENV.filters["time"] = _fmt_time
ENV.filters["budget"] = _budget
ENV.filters["label"] = lambda s: str(s).replace("_", " ")


@dataclass
class Page:
    """What every template gets besides its own values."""

    title: str
    visitor: Visitor | None
    now: datetime
    notice: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def render(
    request: Request,
    template: str,
    *,
    title: str,
    visitor: Visitor | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """Render `template` with the layout's values (title, navigation, CSRF token, notice)."""
    svc: Services = request.app.state.services
    now = svc.clock()
    html = ENV.get_template(template).render(
        request=request,
        title=title,
        visitor=visitor,
        nav=nav_for(visitor),
        current=request.url.path,
        csrf=visitor.session.csrf if visitor else "",
        csrf_field=CSRF_FIELD,
        prefix=PREFIX,
        notice=request.query_params.get("notice"),
        now=now,
        today=now.date(),
        age=lambda t: _age(t, now),
        **values,
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def redirect(path: str, notice: str | None = None) -> RedirectResponse:
    """See-other redirect to a console path, with an optional notice shown on arrival."""
    url = PREFIX + path
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + quote(notice)
    return RedirectResponse(url, status_code=303)


STATUS_TITLES = {
    401: "Please log in",
    403: "Not allowed",
    404: "Not found",
    409: "Already decided or not possible now",
    422: "Please check what you entered",
}


def _audit_refusal(svc: Services, request: Request, route: str, exc: UserError) -> None:
    v: Visitor | None = getattr(request.state, "visitor", None)
    uid = v.actor.user_id if v else None
    with svc.db.transaction() as s:
        record(
            s,
            ConsoleActionRefused(
                method=request.method,
                route=route[:200],
                user_id=uid,
                reason=exc.reason[:100],
                status=exc.status,
            ),
            actor=user_actor(uid) if uid else "system:web",
            now=svc.clock(),
        )


class ConsoleRoute(APIRoute):
    """Refusals become pages (and audit events); a missing session goes to the login page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler."""
        original = super().get_route_handler()
        route = self.path

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired:
                target = request.url.path if request.method == "GET" else PREFIX + "/"
                return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
            except UserError as exc:
                svc: Services = request.app.state.services
                if request.method != "GET" or exc.status == 403:
                    await run_in_threadpool(_audit_refusal, svc, request, route, exc)
                v = getattr(request.state, "visitor", None)
                return render(
                    request,
                    "error.html",
                    title=STATUS_TITLES.get(exc.status, "Something went wrong"),
                    visitor=v,
                    status=exc.status,
                    error=exc,
                    back=request.headers.get("referer") if request.method == "POST" else None,
                )

        return handler


def field_errors(exc: UserError, fields: Mapping[str, str]) -> dict[str, str]:
    """Place a service refusal next to the form field it is about (by reason), else on `_form`."""
    for reason, name in fields.items():
        if exc.reason.startswith(reason):
            return {name: exc.message}
    return {"_form": exc.message + (f" — {exc.hint}" if exc.hint else "")}


def parse_date(text: str | None) -> date | None:
    """A yyyy-mm-dd date from a form, or None when empty (ValueError when malformed)."""
    if not text:
        return None
    return date.fromisoformat(text.strip())
