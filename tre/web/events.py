"""Audit events of the web console: refusals and logins (never a password, cookie or token)."""

from __future__ import annotations

from tre.audit import AuditEvent


class ConsoleActionRefused(AuditEvent):
    """The console refused an action or a page: forbidden, bad CSRF, impossible now, invalid."""

    event_type = "web.refused"
    method: str
    route: str  # the route's path template, e.g. /console/review/{request_id}
    user_id: int | None
    reason: str
    status: int


class ConsoleLogin(AuditEvent):
    """A person logged in to the console."""

    event_type = "web.login"
    user_id: int


class ConsoleLoginFailed(AuditEvent):
    """A console login was refused (the username is not recorded: it may be a mistyped password)."""

    event_type = "web.login_failed"
    reason: str


class ConsoleLogout(AuditEvent):
    """A person logged out of the console."""

    event_type = "web.logout"
    user_id: int
