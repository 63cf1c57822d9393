"""Long waits show progress: a line after a second, then the elapsed time when done."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

SHOW_AFTER_SECONDS = 1.0


@contextmanager
def waiting(label: str, *, enabled: bool = True) -> Iterator[None]:
    """Print `label …` on stderr if the block takes longer than a second, and its duration."""
    started = time.monotonic()
    shown = threading.Event()

    def announce() -> None:
        shown.set()
        print(f"tre: {label} …", file=sys.stderr, flush=True)

    timer = threading.Timer(SHOW_AFTER_SECONDS, announce) if enabled else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        if shown.is_set():
            print(f"tre: {label}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
