"""Log in, log out, the home page and the console's static files."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from tre import governance as g
from tre.audit import record, user_actor
from tre.errors import NotFound, Unauthenticated
from tre.web.console import (
    CSRF_FIELD,
    HERE,
    PREFIX,
    Svc,
    Who,
    cookie_name,
    render,
    secure_transport,
    set_cookie,
    store,
)
from tre.web.console import Form as CheckedForm
from tre.web.events import ConsoleLogin, ConsoleLoginFailed, ConsoleLogout

STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
LOGIN_COOKIE = "tre_login_csrf"


def _login_cookie(request: Request) -> str:
    return ("__Host-" if secure_transport(request) else "") + LOGIN_COOKIE


def _safe_next(target: str | None) -> str:
    # Only console paths: never an absolute URL an attacker chose (open redirect).
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def register(router: APIRouter) -> None:
    """Add the login, logout, home and static routes."""

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        """The console's stylesheet and script."""
        if name not in STATIC:
            raise NotFound(f"no console file {name!r}")
        return FileResponse(
            HERE / "static" / name,
            media_type=STATIC[name],
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    def login_page(
        request: Request, *, errors: dict[str, str] | None, username: str, target: str, status: int
    ) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(
            request,
            "login.html",
            title="Log in",
            visitor=None,
            status=status,
            errors=errors,
            values={"username": username},
            next=target,
            login_csrf=token,
        )
        set_cookie(response, request, _login_cookie(request), token, max_age=3600)
        return response

    @router.get("/login")
    def login_form(request: Request, next: str | None = None) -> Response:
        """The login form (with a fresh double-submit CSRF token)."""
        return login_page(request, errors=None, username="", target=_safe_next(next), status=200)

    @router.post("/login")
    async def login(request: Request, svc: Svc) -> Response:
        """Check the password (argon2); start a server-side session with a new id."""
        data = await request.form()
        username = str(data.get("username") or "")
        password = str(data.get("password") or "")
        target = _safe_next(str(data.get("next") or ""))
        sent = str(data.get(CSRF_FIELD) or "")
        expected = request.cookies.get(_login_cookie(request)) or ""
        if not sent or not expected or not hmac.compare_digest(sent, expected):
            return await _refuse_login(request, svc, "csrf", username, target, status=403)
        try:
            from starlette.concurrency import run_in_threadpool

            actor = await run_in_threadpool(_check_password, svc, username, password)
        except Unauthenticated:
            return await _refuse_login(request, svc, "bad_credentials", username, target, 401)
        now = svc.clock()
        old = request.cookies.get(cookie_name(request))
        sessions = store(svc)
        sessions.delete(old)  # a fresh id at every login: no session fixation
        sid, _ = sessions.create(actor.user_id, now=now)
        with svc.db.transaction() as s:
            record(s, ConsoleLogin(user_id=actor.user_id), actor=user_actor(actor.user_id), now=now)
        response = RedirectResponse(target, status_code=303)
        set_cookie(response, request, cookie_name(request), sid, int(sessions.ttl.total_seconds()))
        response.delete_cookie(_login_cookie(request), path="/")
        return response

    async def _refuse_login(
        request: Request, svc: Svc, reason: str, username: str, target: str, status: int
    ) -> Response:
        from starlette.concurrency import run_in_threadpool

        def audit() -> None:
            with svc.db.transaction() as s:
                record(s, ConsoleLoginFailed(reason=reason), actor="system:web", now=svc.clock())

        await run_in_threadpool(audit)
        message = (
            "The username or password is not right, or the account is disabled."
            if reason == "bad_credentials"
            else "The login form expired or was not sent from this console; please try again."
        )
        return login_page(
            request, errors={"_form": message}, username=username, target=target, status=status
        )

    @router.post("/logout")
    def logout(request: Request, who: Who, svc: Svc, _: CheckedForm) -> Response:
        """End the session everywhere (its server-side record is deleted)."""
        store(svc).delete(who.sid)
        with svc.db.transaction() as s:
            record(
                s,
                ConsoleLogout(user_id=who.actor.user_id),
                actor=user_actor(who.actor.user_id),
                now=svc.clock(),
            )
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(cookie_name(request), path="/")
        return response

    @router.get("/")
    def home(request: Request, who: Who) -> Response:
        """The console home: the pages the visitor's roles reach."""
        return render(request, "home.html", title="Console home", visitor=who)


def _check_password(svc: Svc, username: str, password: str) -> g.Actor:
    with svc.db.read() as s:
        return g.login(s, username, password)
