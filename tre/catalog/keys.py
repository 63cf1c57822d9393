"""Custodian keys: 32 random bytes per key, in files of mode 0600 inside a 0700 folder.

A key never appears in a log, an error message, a manifest or the data root. What may be
shown is its fingerprint: a one-way, domain-separated hash that identifies a key without
revealing it (so a manifest can say which key made its pseudonyms).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from tre.errors import Conflict, Forbidden, InvalidInput, NotFound

KEY_BYTES = 32
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SUFFIX = ".key"


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: its name, fingerprint and file."""

    name: str
    fingerprint: str
    path: Path


def fingerprint(key: bytes) -> str:
    """A short public identifier of a key (domain-separated sha256, 16 hex digits)."""
    return hashlib.sha256(b"tre key fingerprint v1\x00" + key).hexdigest()[:16]


def derive_key(key: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose (e.g. the row-rank order), so the key itself is used only once."""
    return hmac.new(key, b"tre derived key v1\x00" + purpose.encode(), hashlib.sha256).digest()


def _inside(child: Path, parent: Path) -> bool:
    c, p = child.resolve(), parent.resolve()
    return c == p or p in c.parents


class KeyStore:
    """The folder of custodian keys; refuses to live inside the data root."""

    def __init__(self, key_dir: Path, data_root: Path | None = None):
        self.key_dir = Path(key_dir)
        self.data_root = Path(data_root) if data_root is not None else None

    def _check_location(self) -> None:
        if self.data_root is not None and (
            _inside(self.key_dir, self.data_root) or _inside(self.data_root, self.key_dir)
        ):
            raise Forbidden(
                "the key folder must not be inside the data root (keys are never stored next "
                "to the data)",
                reason="key_dir_in_data_root",
                hint="Set TRE_KEY_DIR to a folder outside TRE_DATA_ROOT.",
            )

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise InvalidInput(
                f"invalid key name {name!r}",
                hint="Use lower-case letters, digits and underscores, starting with a letter.",
            )
        return self.key_dir / f"{name}{_SUFFIX}"

    def create(self, name: str) -> KeyInfo:
        """Create a new random key; refuses to overwrite an existing one."""
        self._check_location()
        path = self._path(name)
        self.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.key_dir, 0o700)
        key = os.urandom(KEY_BYTES)
        try:
            # O_EXCL: never overwrite (a lost key makes every pseudonym unlinkable).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise Conflict(
                f"key {name!r} already exists",
                reason="key_exists",
                hint="Keys are never overwritten; choose another name or use the existing key.",
            ) from None
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, key.hex().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return KeyInfo(name=name, fingerprint=fingerprint(key), path=path)

    def load(self, name: str) -> bytes:
        """The key's bytes (for pseudonymisation only; never print or log them)."""
        self._check_location()
        path = self._path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise NotFound(
                f"no key named {name!r} in the key folder",
                hint=f"Create it with `tre keys create {name}` (or set TRE_KEY_DIR).",
            ) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise Forbidden(
                f"key {name!r} is readable by other users (mode {stat.S_IMODE(st.st_mode):o})",
                reason="key_mode",
                hint=f"Run `chmod 600 {path}` and check who may have read it.",
            )
        text = path.read_text(encoding="ascii", errors="replace").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise InvalidInput(
                f"key file for {name!r} is not {KEY_BYTES} hex-encoded bytes",
                reason="bad_key",
                hint="Restore the key from its backup; `tre keys create` makes valid keys.",
            )
        return key

    def info(self, name: str) -> KeyInfo:
        """Name, fingerprint and file of one key."""
        return KeyInfo(name=name, fingerprint=fingerprint(self.load(name)), path=self._path(name))

    def list(self) -> list[KeyInfo]:
        """Every key in the folder (names and fingerprints only)."""
        if not self.key_dir.is_dir():
            return []
        names = sorted(p.name.removesuffix(_SUFFIX) for p in self.key_dir.glob(f"*{_SUFFIX}"))
        return [self.info(n) for n in names if _NAME.match(n)]
