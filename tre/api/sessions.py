"""Console sessions: a password login yields a signed, expiring bearer (`tre_ses_…`).

Sessions are stateless (HMAC-SHA256 over user id, issue and expiry times and a nonce, with a
secret kept in `<key_dir>/api/session.secret`), so several server processes share them.
They prove only *who* logged in and until when: the account itself is re-read on every
request (`tre.governance.load_actor`), so disabling it ends its sessions at once. Logging out
forgets the bearer on the client; a stolen bearer works until it expires (8 hours by default),
unless the account is disabled or the secret is rotated (delete the file and restart).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tre.errors import Unauthenticated

SESSION_PREFIX = "tre_ses_"
DEFAULT_SESSION_TTL = timedelta(hours=8)
_SECRET_BYTES = 32
_HINT = "Log in again (POST /auth/login)."


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_secret(path: Path) -> bytes:
    """The signing secret at `path`, created (mode 0600, folder 0700) if missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another server process may be writing it right now: wait for the whole secret.
        for _ in range(100):
            data = path.read_bytes()
            if len(data) >= _SECRET_BYTES:
                return data[:_SECRET_BYTES]
            time.sleep(0.01)
        raise RuntimeError(f"session secret {path} is truncated; delete it and restart") from None
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(_SECRET_BYTES))
    return path.read_bytes()[:_SECRET_BYTES]


@dataclass(frozen=True)
class Session:
    """A verified session bearer: whose, and until when."""

    user_id: int
    expires_at: datetime


@dataclass(frozen=True)
class SessionSigner:
    """Issues and checks session bearers with one secret."""

    secret: bytes
    ttl: timedelta = DEFAULT_SESSION_TTL

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user_id: int, *, now: datetime) -> tuple[str, datetime]:
        """A new bearer for `user_id` and its expiry time."""
        expires = now + self.ttl
        claims = {
            "u": user_id,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "n": secrets.token_hex(8),
        }
        body = _b64(json.dumps(claims, separators=(",", ":")).encode("ascii"))
        return f"{SESSION_PREFIX}{body}.{self._sign(body)}", expires

    def verify(self, raw: str, *, now: datetime) -> Session:
        """The session a bearer proves, or Unauthenticated (bad signature, malformed, expired)."""
        if not raw.startswith(SESSION_PREFIX) or len(raw) > 400:
            raise Unauthenticated("not a tre session", hint=_HINT)
        body, _, signature = raw[len(SESSION_PREFIX) :].partition(".")
        if not body or not signature:
            raise Unauthenticated("malformed session", hint=_HINT)
        try:
            expected = self._sign(body)
        except UnicodeEncodeError:
            raise Unauthenticated("malformed session", hint=_HINT) from None
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
            raise Unauthenticated("invalid session", hint=_HINT)
        try:
            claims = json.loads(_unb64(body))
            user_id, exp = int(claims["u"]), int(claims["exp"])
        except (ValueError, KeyError, TypeError):
            raise Unauthenticated("malformed session", hint=_HINT) from None
        expires_at = datetime.fromtimestamp(exp, UTC)
        if now >= expires_at:
            raise Unauthenticated(
                f"this session expired at {expires_at:%Y-%m-%d %H:%M} UTC", hint=_HINT
            )
        return Session(user_id=user_id, expires_at=expires_at)
