"""Stage 4, execute: tre's SQL on a fresh, locked-down DuckDB connection in a worker process.

The connection is built in the order PLATFORM_NOTES gives (start-up options; views over the
exact granted files; allowed_paths; external access off; configuration locked). The worker
process runs under an OS address-space limit (RLIMIT_AS) and is killed on a wall-clock timeout;
a dead worker is replaced on the next query. DuckDB's error text never leaves this module: the
caller gets a generic `QueryFailed` with an error id; the log gets the error class only.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import queue
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tre.errors import new_error_id
from tre.query.errors import QueryFailed
from tre.query.model import ViewSpec

log = logging.getLogger("tre.query.execute")

MAX_RESULT_ROWS = 100_000


@dataclass(frozen=True)
class Limits:
    """Resource limits of one query."""

    memory_limit: str = "1GB"  # DuckDB's own buffer limit
    address_space_bytes: int = 3 * 1024**3  # RLIMIT_AS of the worker process
    threads: int = 2
    timeout_seconds: float = 30.0
    max_rows: int = MAX_RESULT_ROWS


@dataclass(frozen=True)
class Job:
    """What the worker runs: views to build, then statements whose rows come back (capped)."""

    views: tuple[ViewSpec, ...]
    statements: tuple[str, ...]
    limits: Limits


@dataclass(frozen=True)
class Outcome:
    """The worker's answer: rows per statement, or an error class (never DuckDB's text)."""

    rows: tuple[tuple[tuple[Any, ...], ...], ...] = ()
    error_class: str | None = None
    too_many_rows: bool = False


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def fresh_connection(limits: Limits) -> Any:
    """A new, never-used in-memory DuckDB database with only start-up options (step 1).

    Creating a database costs 15–45 ms here; the worker makes the next one while idle, so a
    query pays only for its views and the lock-down. Every query still gets its own database.
    """
    import duckdb

    return duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
            "allow_unsigned_extensions": False,
            "allow_persistent_secrets": False,
            "python_enable_replacements": False,
            "memory_limit": limits.memory_limit,
            "threads": limits.threads,
            "max_execution_time": int(limits.timeout_seconds * 1000),
            "temp_directory": "",
        },
    )


def lock_down(con: Any, views: tuple[ViewSpec, ...]) -> Any:
    """Steps 2–5 on a fresh connection: tre's bounded views, allowed files, access off, lock."""
    files: list[str] = []
    for v in views:
        file_list = "[" + ", ".join(_lit(f) for f in v.files) + "]"
        con.execute(
            f"CREATE VIEW {_q(v.name)} AS SELECT {v.select_list} "
            f"FROM read_parquet({file_list}) WHERE {_q(v.rank_column)} <= {int(v.limit)}"
        )
        files.extend(v.files)
    con.execute("SET allowed_paths=[" + ", ".join(_lit(f) for f in files) + "]")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def open_sandbox(views: tuple[ViewSpec, ...], limits: Limits) -> Any:
    """A fresh locked-down DuckDB connection exposing only tre's bounded views."""
    return lock_down(fresh_connection(limits), views)


def run_job(job: Job) -> Outcome:
    """Run a job in this process on a fresh connection; errors become an error class only."""
    try:
        con = fresh_connection(job.limits)
    except Exception as exc:
        return Outcome(error_class=type(exc).__name__)
    try:
        return execute_on(job, con)
    finally:
        con.close()


def execute_on(job: Job, con: Any) -> Outcome:
    """Lock down `con` (fresh, never used) for the job and run its statements; never raises
    DuckDB's text: errors become an error class only. The caller closes `con`."""
    import duckdb

    try:
        lock_down(con, job.views)
        out = []
        for sql in job.statements:
            rows = con.execute(sql).fetchmany(job.limits.max_rows + 1)
            if len(rows) > job.limits.max_rows:
                return Outcome(too_many_rows=True)
            out.append(tuple(tuple(r) for r in rows))
        return Outcome(rows=tuple(out))
    except duckdb.Error as exc:
        return Outcome(error_class=type(exc).__name__)
    except MemoryError:
        return Outcome(error_class="MemoryError")


# An idle spare reserves 200–400 MB of address space (DuckDB's threads and allocator arenas;
# ~6 MB resident). With 3 spares a COUNT(DISTINCT) over 10M rows hit RLIMIT_AS: keep one, and
# widen the worker's limit by its reservation so queries keep the headroom `Limits` promises.
SPARE_DATABASES = 1
SPARE_ADDRESS_SPACE = 512 * 1024**2


class _Spares:
    """Fresh, never-used databases made ahead of time, and used ones closed, off the query path.

    Opening a DuckDB database costs 15–45 ms and closing one 3–17 ms on this hardware; a helper
    thread does both only while no query runs (it would compete for the GIL and the cores), so
    a query pays only for its views and the lock-down. Each database is handed out once and
    never returns to the pool.
    """

    def __init__(self, limits: Limits, size: int = SPARE_DATABASES):
        self.limits = limits
        self._ready: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._used: queue.Queue[Any] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="tre-spares", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop:
            self._idle.wait()
            if self._stop:
                return
            try:
                self._used.get_nowait().close()
                continue
            except queue.Empty:
                pass
            except Exception as exc:
                log.debug("closing a used database failed: %s", type(exc).__name__)
                continue
            if self._ready.full():
                self._idle.clear()  # nothing to do until the next query ends
                continue
            try:
                self._ready.put_nowait(fresh_connection(self.limits))
            except Exception:
                time.sleep(1.0)  # e.g. out of memory: retry later; queries make their own

    def take(self, limits: Limits) -> Any:
        """A never-used connection for these limits (a spare if one is ready)."""
        self._idle.clear()
        if limits == self.limits:
            with contextlib.suppress(queue.Empty):
                return self._ready.get_nowait()
        return fresh_connection(limits)

    def discard(self, con: Any) -> None:
        """Close a used connection in the helper thread, and let it refill the pool."""
        self._used.put(con)
        self._idle.set()

    def stop(self) -> None:
        """Stop the helper thread and close every connection (before the process exits)."""
        self._stop = True
        self._idle.set()
        self._thread.join(10)
        for q in (self._ready, self._used):
            while not q.empty():
                with contextlib.suppress(Exception):
                    q.get_nowait().close()


def _worker_main(conn: Connection, address_space: int, limits: Limits) -> None:
    import resource

    limit = address_space + SPARE_DATABASES * SPARE_ADDRESS_SPACE
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    spares = _Spares(limits)
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            con = None
            try:
                con = spares.take(job.limits)
                outcome = execute_on(job, con)
            except BaseException as exc:
                outcome = Outcome(error_class=type(exc).__name__)
            conn.send(outcome)
            if con is not None:
                spares.discard(con)
    finally:
        spares.stop()


class Worker:
    """One long-lived worker process (spawned), replaced when it dies or is killed."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_worker_main,
            args=(child, self.limits.address_space_bytes, self.limits),
            daemon=True,
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def close(self) -> None:
        """Stop the worker process."""
        with self._lock:
            if self._conn is not None and self._proc is not None and self._proc.is_alive():
                try:
                    self._conn.send(None)
                    self._proc.join(2)
                except (OSError, BrokenPipeError):
                    pass
            self._kill()

    def run(
        self, views: tuple[ViewSpec, ...], statements: tuple[str, ...]
    ) -> tuple[tuple[tuple[Any, ...], ...], ...]:
        """Run statements in the sandbox; a generic `QueryFailed` (with an error id) on any failure."""
        job = Job(views, statements, self.limits)
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._kill()
                self._start()
            assert self._conn is not None
            try:
                self._conn.send(job)
                if not self._conn.poll(self.limits.timeout_seconds + 5):
                    self._kill()
                    raise _failed("timeout", "the query took too long and was stopped")
                outcome: Outcome = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._kill()
                raise _failed(
                    "worker_died", "the query used too many resources and was stopped"
                ) from None
        if outcome.too_many_rows:
            raise _failed(
                "too_many_rows", f"the query produced more than {self.limits.max_rows} groups"
            )
        if outcome.error_class is not None:
            raise _failed(outcome.error_class, "the query could not be run")
        return outcome.rows


def _failed(cause: str, message: str) -> QueryFailed:
    error_id = new_error_id()
    # The log gets the error id and DuckDB's error class, never its message (it can quote values).
    log.warning("query execution failed: id=%s cause=%s", error_id, cause)
    return QueryFailed(message, error_id=error_id)
