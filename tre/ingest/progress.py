"""Progress display for long ingests: one bar per stage, fed by DuckDB's own query progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


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
    ) -> Iterator[None]:
        """Show `description`; while a DuckDB query runs on `con`, the bar follows its progress."""
        start = time.perf_counter()
        try:
            if self._progress is None:
                yield
            else:
                with self._bar(description, con):
                    yield
        finally:
            self.timings[description] = round(time.perf_counter() - start, 3)

    @contextmanager
    def _bar(self, description: str, con: duckdb.DuckDBPyConnection | None) -> Iterator[None]:
        assert self._progress is not None
        progress = self._progress
        task = progress.add_task(description, total=100)
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
            yield
        finally:
            stop.set()
            if poller is not None:
                poller.join()
            progress.update(task, completed=100)
