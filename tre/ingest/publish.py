"""Atomic publication of a dataset version: stage in a private folder, check, rename into place.

- `<dataset>/.lock` (flock) serialises ingests of one dataset, so two never claim the same
  `v<N>`; the kernel drops the lock when a process dies, even by kill -9.
- `<dataset>/.staging-<random>/` holds a version while it is written. Readers ignore it; the
  next ingest (holding the lock, so no live ingest owns it) deletes leftovers of killed runs.
- `os.rename(staging, v<N>)` is atomic: a reader sees no version or a complete one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tre.catalog.catalog import LOCK_NAME, STAGING_PREFIX, VERSION_RE, version_dir_name
from tre.errors import Conflict


@contextmanager
def dataset_lock(dataset_dir: Path) -> Iterator[None]:
    """Hold the dataset's ingest lock; Conflict if another ingest holds it."""
    dataset_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(dataset_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"another ingest of dataset {dataset_dir.name!r} is running",
                reason="ingest_running",
                hint="Wait for it to finish, then run this ingest again.",
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the flock


def clean_staging(dataset_dir: Path) -> int:
    """Delete staging folders left by killed ingests (call only while holding the lock)."""
    removed = 0
    if not dataset_dir.is_dir():
        return 0
    for child in dataset_dir.iterdir():
        if child.name.startswith(STAGING_PREFIX) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


def new_staging(dataset_dir: Path) -> Path:
    """A fresh private staging folder inside the dataset folder (same file system as v<N>)."""
    return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=dataset_dir))


def next_version(dataset_dir: Path) -> int:
    """One more than the highest `v<N>` folder (complete or not, so no name is reused)."""
    numbers = [int(m.group(1)) for c in dataset_dir.iterdir() if (m := VERSION_RE.match(c.name))]
    return max(numbers, default=0) + 1


def fsync_tree(folder: Path) -> None:
    """Flush every file and the folder itself to disk before the rename makes them visible."""
    for p in folder.iterdir():
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staging: Path, dataset_dir: Path, version: int) -> Path:
    """Rename the staged folder to `v<version>` (must not exist) and make its files read-only."""
    target = dataset_dir / version_dir_name(version)
    if target.exists():
        raise Conflict(
            f"version {version} of dataset {dataset_dir.name!r} already exists",
            reason="version_exists",
            hint="Run the ingest again; it takes the next free version number.",
        )
    for p in staging.iterdir():
        if p.is_file():
            os.chmod(p, 0o400)  # a version is immutable
    fsync_tree(staging)
    os.rename(staging, target)
    _fsync_dir(dataset_dir)
    return target
