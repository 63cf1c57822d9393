"""A notebook server's own mount namespace, with folders of local services' sockets hidden.

The egress rule (`tre.hub.egress`) covers IP sockets only. Local services also listen on unix
sockets, mostly under /run (PostgreSQL's `/run/postgresql/.s.PGSQL.5432`, whose `local ... trust`
line would make a notebook a database superuser, MySQL, Redis, ...). Before dropping to the
researcher's account, the server's process enters a new mount namespace (private propagation,
so nothing leaks back to the host) where each hidden folder is an empty tmpfs; folders the
server needs inside one (its Jupyter runtime folder) are bind-mounted back.

`hide` runs in the forked child before exec (`preexec_fn`), which is single-threaded, as
unshare(CLONE_NEWNS) requires; `problem` checks beforehand, from the multi-threaded hub, that the
kernel allows it, so a spawn can be refused with a clear message instead of failing in the child.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import PurePosixPath

CLONE_NEWNS = 0x00020000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _inside(path: str, folder: str) -> bool:
    return PurePosixPath(folder) in (PurePosixPath(path), *PurePosixPath(path).parents)


def hide(libc: ctypes.CDLL, hidden: Sequence[str], keep: Sequence[str]) -> None:
    """Enter a new mount namespace with each `hidden` folder an empty tmpfs, `keep` kept."""
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Private first: without it the tmpfs mounts below would propagate to the host.
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for folder in hidden:
        if not os.path.isdir(folder):
            continue
        held = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in keep if _inside(p, folder)]
        _check(
            libc.mount(
                b"tmpfs",
                folder.encode(),
                b"tmpfs",
                MS_NOSUID | MS_NODEV | MS_NOEXEC,
                b"mode=755,size=1m",
            ),
            f"mount a tmpfs on {folder}",
        )
        for path, fd in held:
            os.makedirs(path, mode=0o755, exist_ok=True)
            source = f"/proc/self/fd/{fd}".encode()
            _check(libc.mount(source, path.encode(), None, MS_BIND, None), f"bind {path}")
            os.close(fd)


def problem() -> str | None:
    """Why a server could not get its own mount namespace here, or None if it can."""
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    if not os.access(unshare, os.X_OK):
        return "the `unshare` program (util-linux) is missing"
    done = subprocess.run(  # noqa: S603 (fixed program and arguments)
        [unshare, "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        detail = " ".join(done.stderr.split())[:200] or f"exit status {done.returncode}"
        return f"a mount namespace is not allowed ({detail}); it needs CAP_SYS_ADMIN"
    return None
