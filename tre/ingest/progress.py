"""Progress display for long ingests: one bar per stage, fed by DuckDB's own query progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def _ignore(pct: float) -> None:
    """Progress of a stage when no bar is shown."""


class StageProgress:
    """Shows each ingest stage with a bar; silent when disabled (tests, pipes)."""

    def __init__(self, enabled: bool, console: Console | None = None):
        self.enabled = enabled
        self.timings: dict[str, float] = {}  # seconds per stage, for reports and benchmarks
        self._progress = (
            Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=console or Console(stderr=True),
                transient=False,
            )
            if enabled
            else None
        )

    def __enter__(self) -> StageProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    @contextmanager
    def stage(
        self, description: str, con: duckdb.DuckDBPyConnection | None = None
    ) -> Iterator[Callable[[float], None]]:
        """Show `description`; while a DuckDB query runs on `con`, the bar follows its progress.

        Yields a function that sets the bar (0–100) for work that is not a DuckDB query.
        """
        start = time.perf_counter()
        try:
            if self._progress is None:
                yield _ignore
            else:
                with self._bar(description, con) as set_done:
                    yield set_done
        finally:
            self.timings[description] = round(time.perf_counter() - start, 3)

    @contextmanager
    def _bar(
        self, description: str, con: duckdb.DuckDBPyConnection | None
    ) -> Iterator[Callable[[float], None]]:
        assert self._progress is not None
        progress = self._progress
        task = progress.add_task(description, total=100)

        def set_done(pct: float) -> None:
            progress.update(task, completed=min(pct, 99.0))

        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.25):
                try:
                    pct = con.query_progress() if con is not None else -1
                except duckdb.Error:
                    pct = -1
                if pct >= 0:
                    progress.update(task, completed=min(pct, 99.0))

        poller = threading.Thread(target=poll, daemon=True) if con is not None else None
        if poller is not None:
            poller.start()
        try:
            yield set_done
        finally:
            stop.set()
            if poller is not None:
                poller.join()
            progress.update(task, completed=100)
