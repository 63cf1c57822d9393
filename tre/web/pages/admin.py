"""Admin pages: users (roles, accreditation expiry) and the audit log with its verification."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tre import governance as g
from tre.audit import head, read_events, verify
from tre.errors import InvalidInput
from tre.web.console import Form, Svc, Who, parse_date, redirect, render

PAGE = 50


def register(router: APIRouter) -> None:
    """Add the admin's pages."""

    @router.get("/admin/users")
    def users(request: Request, who: Who, svc: Svc) -> Response:
        """Every account with its roles and accreditation expiry."""
        who.require(g.Role.ADMIN, "User administration")
        now = svc.clock()
        with svc.db.read() as s:
            rows = g.list_users(s, who.actor, now=now)
        return render(
            request,
            "users.html",
            title="Users",
            visitor=who,
            rows=rows,
            roles=[r.value for r in g.Role],
        )

    @router.post("/admin/users/{user_id}")
    def update_user(request: Request, user_id: int, who: Who, svc: Svc, data: Form) -> Response:
        """Set a user's roles and accreditation end date."""
        who.require(g.Role.ADMIN, "User administration")
        now = svc.clock()
        roles = [str(r) for r in data.getlist("roles")]
        try:
            until = parse_date(str(data.get("accredited_until") or ""))
        except ValueError:
            raise InvalidInput(
                "the accreditation date is not a date", reason="bad_date", hint="Use yyyy-mm-dd."
            ) from None
        with svc.db.transaction() as s:
            user = g.get_user(s, who.actor, user_id, now=now)
            if set(roles) != {r.value for r in user.roles}:
                g.set_roles(s, who.actor, user_id, roles, now=now)
            if until != user.accredited_until:
                g.set_accreditation(s, who.actor, user_id, until, now=now)
        return redirect("/admin/users", f"Updated {user.username}.")

    @router.get("/admin/audit")
    def audit(
        request: Request, who: Who, svc: Svc, after: int | None = None, type: str | None = None
    ) -> Response:
        """The audit log, a page at a time, with the whole chain's verification status."""
        who.require(g.Role.ADMIN, "The audit log")
        g.require(g.decide(who.actor, g.Action.READ_AUDIT, g.SYSTEM, now=svc.clock()))
        with svc.db.read() as s:
            result = verify(s)
            last, _ = head(s)
            start = max(0, last - PAGE) if after is None else max(0, after)
            events = read_events(s, after_seq=start, limit=PAGE, event_type=type or None)
        return render(
            request,
            "audit.html",
            title="Audit log",
            visitor=who,
            result=result,
            events=events,
            start=start,
            last=last,
            page=PAGE,
            event_type=type or "",
        )
