"""Stage 4, execute: tre's SQL on a fresh, locked-down DuckDB connection in a worker process.

The connection is built in the order PLATFORM_NOTES gives (start-up options; views over the
exact granted files; allowed_paths; external access off; configuration locked). The worker
process runs under an OS address-space limit (RLIMIT_AS) and is killed on a wall-clock timeout;
a dead worker is replaced on the next query. DuckDB's memory limit per query is a setting
(`TRE_QUERY_MEMORY_LIMIT`, default a quarter of the machine's memory within [1 GiB, 16 GiB]);
RLIMIT_AS follows it. There is no temp directory: nothing spills to disk. DuckDB's error text never leaves this module: the
caller gets a generic `QueryFailed` with an error id; the log gets the error class only.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import re
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tre.errors import new_error_id
from tre.query.errors import QueryFailed
from tre.query.model import ViewSpec

log = logging.getLogger("tre.query.execute")

MAX_RESULT_ROWS = 100_000


MEMORY_LIMIT_ENV = "TRE_QUERY_MEMORY_LIMIT"
MIN_MEMORY_LIMIT = 1024**3
MAX_MEMORY_LIMIT = 16 * 1024**3
# An idle spare database reserves 200–400 MB of address space (DuckDB's threads and allocator
# arenas; ~6 MB resident).
SPARE_ADDRESS_SPACE = 512 * 1024**2
# RLIMIT_AS above DuckDB's buffer limit: allocations outside the buffer pool, DuckDB's threads
# and allocator arenas, the Python interpreter, and the worker's one spare database.
ADDRESS_SPACE_HEADROOM = 2 * 1024**3 + SPARE_ADDRESS_SPACE

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_bytes(text: str) -> int:
    """Bytes in a size such as "2GB", "1536MiB" or "2147483648" (DuckDB's units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if m is None or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a memory size: {text!r} (write e.g. 2GB, 1536MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def machine_memory_bytes() -> int:
    """Physical memory, or the cgroup's memory limit when that is lower (containers)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            text = Path(path).read_text().strip()
            if text.isdigit():
                total = min(total, int(text))
    return total


def default_memory_limit() -> str:
    """DuckDB's buffer limit per query: `TRE_QUERY_MEMORY_LIMIT`, else a quarter of the
    machine's memory within [1 GiB, 16 GiB] (a hash join of 10M × 27M rows needs ~1.5 GiB,
    and the sandbox cannot spill: it has no temp directory)."""
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        parse_bytes(env)  # fail at start-up, not at the first query
        return env.strip()
    quarter = machine_memory_bytes() // 4
    return f"{min(max(quarter, MIN_MEMORY_LIMIT), MAX_MEMORY_LIMIT) // 1024**2}MiB"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one query."""

    memory_limit: str = field(default_factory=default_memory_limit)  # DuckDB's buffer limit
    # RLIMIT_AS of the worker process; None: the memory limit plus ADDRESS_SPACE_HEADROOM.
    address_space: int | None = None
    threads: int = 2
    timeout_seconds: float = 30.0
    max_rows: int = MAX_RESULT_ROWS

    @property
    def address_space_bytes(self) -> int:
        """The worker's address-space limit (follows the memory limit unless set)."""
        if self.address_space is not None:
            return self.address_space
        return parse_bytes(self.memory_limit) + ADDRESS_SPACE_HEADROOM


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
        if v.is_lookup:
            # A public lookup table: tre's literal VALUES from policy, created before lock-down.
            con.execute(f"CREATE VIEW {_q(v.name)} AS {v.values_sql}")
            continue
        file_list = "[" + ", ".join(_lit(f) for f in v.files) + "]"
        bound = f" WHERE {_q(v.rank_column)} <= {int(v.limit)}" if v.rank_filter else ""
        con.execute(
            f"CREATE VIEW {_q(v.name)} AS SELECT {v.select_list} "
            f"FROM read_parquet({file_list}){bound}"
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


def execute_on(job: Job, con: Any, *, locked: bool = False) -> Outcome:
    """Lock down `con` (fresh, never used) for the job unless `locked` (already locked down for
    exactly `job.views`), and run its statements; never raises DuckDB's text: errors become an
    error class only. The caller closes `con`."""
    import duckdb

    try:
        if not locked:
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


# How long a query waits for the spare being built (opening one takes 15–45 ms) before it
# opens its own; two databases opened at once would each take longer.
SPARE_WAIT_SECONDS = 2.0


class _Spares:
    """One fresh, never-used database made ahead of time: locked down for the views of the last
    query when no current database serves them (e.g. after a failure), otherwise left open for
    whichever views come next, so that a query's critical path is (nearly) its statements only.

    Opening a DuckDB database costs ~15 ms of CPU (holding the GIL) and its views and lock-down
    2–6 ms. The helper thread builds the next spare once an answer has left; a query that
    arrives while it is being built waits for it rather than opening a second database at the
    same time. Building it while the previous query's statements ran was measured slower on
    the 2-core machine (the open competes with DuckDB's threads). A spare locked down for
    other views than the job's is not used (a database is never re-configured); it is closed
    after the query. Each database is handed out once and never returns to the pool. Used
    databases are closed by the caller.
    """

    def __init__(self, limits: Limits):
        self.limits = limits
        self._cv = threading.Condition()
        self._spare: tuple[Any, tuple[ViewSpec, ...] | None] | None = None
        self._views: tuple[ViewSpec, ...] | None = None  # the next spare is locked down for these
        self._want = True
        self._building = False
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="tre-spares", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (self._spare is not None or not self._want):
                    self._cv.wait()
                if self._stop:
                    return
                self._building, self._want = True, False
                views = self._views
            con = None
            try:
                con = fresh_connection(self.limits)
                if views is not None:
                    lock_down(con, views)
            except Exception as exc:  # e.g. out of memory: the next query opens its own
                log.debug("building a spare database failed: %s", type(exc).__name__)
                if con is not None:
                    with contextlib.suppress(Exception):
                        con.close()
                con = None
            with self._cv:
                self._building = False
                if con is not None:
                    self._spare = (con, views)
                self._cv.notify_all()

    def take(self, job: Job) -> tuple[Any, bool, Any]:
        """(a never-used connection for the job, whether it is already locked down for the
        job's views, a spare to close after the query or None)."""
        stale = None
        with self._cv:
            spare = None
            if job.limits == self.limits:
                deadline = time.monotonic() + SPARE_WAIT_SECONDS
                while self._spare is None and self._building:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                spare, self._spare = self._spare, None
        if spare is not None:
            con, views = spare
            if views is None:
                return con, False, None
            if views == job.views:
                return con, True, None
            stale = con
        return fresh_connection(job.limits), False, stale

    def refill(self, views: tuple[ViewSpec, ...] | None) -> None:
        """Start building the next spare, locked down for `views` (None: left open for any
        views), once an answer has left."""
        with self._cv:
            self._views = views
            self._want = True
            self._cv.notify_all()

    def stop(self) -> None:
        """Stop the helper thread and close the spare (before the process exits)."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(10)
        with self._cv:
            spare, self._spare = self._spare, None
        if spare is not None:
            with contextlib.suppress(Exception):
                spare[0].close()


# A database locked down for one set of views serves at most this many queries (each on a
# fresh connection of its own) before it is closed and a new one is made.
MAX_QUERIES_PER_DATABASE = 1000


def read_only(job: Job) -> bool:
    """Whether every statement of the job is one query (SELECT or WITH … SELECT), as the
    planner generates them: only such jobs may share a database (defence in depth; the
    validator already refuses everything else)."""
    for sql in job.statements:
        text = sql.strip().rstrip(";")
        head = text.split(None, 1)[0].upper() if text else ""
        if head not in ("SELECT", "WITH") or ";" in text:
            return False
    return True


class _Current:
    """The database the last query ran in, locked down for exactly its views.

    The next query with identical views (same files, same bounded select lists, same limits)
    gets a fresh connection (`cursor()`) to it instead of a new database: opening, locking down
    and closing a database costs ~20 ms of CPU, as much as a whole one-column query over 10M
    rows. Reuse is safe because the database can hold nothing a query left behind: its
    configuration is locked, external access is off, and tre's generated SQL is a read-only
    SELECT (the validator refuses every statement that changes state); connection-local state
    dies with the connection. A database is never reused after a failed query, for other views
    or limits, or after MAX_QUERIES_PER_DATABASE queries.
    """

    def __init__(self) -> None:
        self.db: Any = None
        self.views: tuple[ViewSpec, ...] | None = None
        self.limits: Limits | None = None
        self.served = 0

    def connection_for(self, job: Job) -> Any:
        """A fresh connection to the current database if it fits the job, else None."""
        if self.db is None or self.views != job.views or self.limits != job.limits:
            return None
        if not read_only(job):
            return None
        if self.served >= MAX_QUERIES_PER_DATABASE:
            return None
        self.served += 1
        return self.db.cursor()

    def replace(self, db: Any, job: Job) -> Any:
        """Make `db` (locked down for the job's views) current; returns the old one to close.
        A database that ran anything but read-only statements is never kept: returns `db`."""
        if not read_only(job):
            return db
        old = self.db
        self.db, self.views, self.limits, self.served = db, job.views, job.limits, 1
        return old

    def drop(self) -> Any:
        """Forget the current database (after a failure); returns it to close."""
        old, self.db, self.views, self.limits = self.db, None, None, None
        return old


def _worker_main(conn: Connection, address_space: int, limits: Limits) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    spares = _Spares(limits)
    current = _Current()
    try:
        while True:
            try:
                job = conn.recv()
            except EOFError:
                return
            if job is None:
                return
            used: list[Any] = []  # closed after the answer has left: 3–17 ms each
            took_spare = False
            con = None
            try:
                cursor = current.connection_for(job)
                if cursor is not None:
                    used.append(cursor)
                    outcome = execute_on(job, cursor, locked=True)
                    if outcome.error_class is not None:
                        used.append(current.drop())
                else:
                    con, locked, stale = spares.take(job)
                    took_spare = True
                    used.append(stale)
                    outcome = execute_on(job, con, locked=locked)
                    failed = outcome.error_class is not None
                    used.append(con if failed else current.replace(con, job))
                    con = None  # handed over: closed from `used`, or kept as the current one
            except BaseException as exc:
                outcome = Outcome(error_class=type(exc).__name__)
                used += [con, current.drop()]
            conn.send(outcome)
            if took_spare:
                # While the current database serves these views, a spare locked down for them
                # would go unused: leave it open for the next view set instead.
                spares.refill(None if current.views == job.views else job.views)
            for c in used:
                if c is not None:
                    with contextlib.suppress(Exception):
                        c.close()
    finally:
        spares.stop()
        with contextlib.suppress(Exception):
            if current.db is not None:
                current.db.close()


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

    @property
    def pid(self) -> int | None:
        """The worker process's id while it runs (for CPU accounting in benchmarks)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.is_alive() else None

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
