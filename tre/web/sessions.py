"""Server-side console sessions: the browser holds only a random id; the server holds the rest.

A session is a small JSON file under `<data_root>/web/sessions/` (folder 0700, files 0600) named
by the sha256 of its id, so several server processes share sessions without a database table,
a stolen file listing reveals no usable id, and logging out deletes the file (the session is
over everywhere at once). Each session carries its own CSRF token (session-bound tokens) and
has an absolute lifetime and an idle timeout. The account itself is re-read on every request.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

SESSION_TTL = timedelta(hours=8)
IDLE_TIMEOUT = timedelta(hours=1)
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


@dataclass(frozen=True)
class WebSession:
    """A live console session: whose, its CSRF token, and when it ends."""

    user_id: int
    csrf: str
    created_at: datetime
    expires_at: datetime
    last_seen: datetime


class SessionStore:
    """Console sessions kept as files under one folder."""

    def __init__(
        self, folder: Path, *, ttl: timedelta = SESSION_TTL, idle: timedelta = IDLE_TIMEOUT
    ):
        self.folder = folder
        self.ttl = ttl
        self.idle = idle

    def _path(self, sid: str) -> Path:
        return self.folder / (hashlib.sha256(sid.encode("ascii")).hexdigest() + ".json")

    def _write(self, path: Path, session: WebSession) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = json.dumps(
            {
                "user_id": session.user_id,
                "csrf": session.csrf,
                "created_at": session.created_at.isoformat(),
                "expires_at": session.expires_at.isoformat(),
                "last_seen": session.last_seen.isoformat(),
            }
        )
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(body)
        os.replace(tmp, path)  # readers see the old or the new file, never half of one

    def create(self, user_id: int, *, now: datetime) -> tuple[str, WebSession]:
        """A new session for `user_id`: its id (for the cookie only) and its record."""
        sid = secrets.token_urlsafe(32)
        session = WebSession(
            user_id=user_id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.ttl,
            last_seen=now,
        )
        self._write(self._path(sid), session)
        return sid, session

    def get(self, sid: str | None, *, now: datetime) -> WebSession | None:
        """The live session with id `sid` (touching its idle clock), or None."""
        if not sid or not _ID_RE.match(sid):
            return None
        path = self._path(sid)
        try:
            raw = json.loads(path.read_text())
            session = WebSession(
                user_id=int(raw["user_id"]),
                csrf=str(raw["csrf"]),
                created_at=datetime.fromisoformat(raw["created_at"]),
                expires_at=datetime.fromisoformat(raw["expires_at"]),
                last_seen=datetime.fromisoformat(raw["last_seen"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if now >= session.expires_at or now - session.last_seen >= self.idle:
            self.delete(sid)
            return None
        if now - session.last_seen >= timedelta(minutes=1):  # not a write per request
            session = WebSession(
                session.user_id, session.csrf, session.created_at, session.expires_at, now
            )
            self._write(path, session)
        return session

    def delete(self, sid: str | None) -> None:
        """End the session `sid` (logging out); unknown ids are ignored."""
        if sid and _ID_RE.match(sid):
            with contextlib.suppress(FileNotFoundError):
                self._path(sid).unlink()
