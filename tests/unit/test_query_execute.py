"""The worker gives every query a fresh DuckDB connection on a database locked down for exactly
its views (a new one, made ahead of time, or the last query's when the views and limits are
identical and every statement is a read-only query): nothing one query's SQL does is visible
to the next, and each database is locked down (no file access beyond the granted files)
before any of tre's SQL runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.query_support import HEALTH_COLUMNS, health_rows, publish
from tre.query.errors import QueryFailed
from tre.query.execute import (
    ADDRESS_SPACE_HEADROOM,
    MAX_MEMORY_LIMIT,
    MAX_QUERIES_PER_DATABASE,
    MEMORY_LIMIT_ENV,
    MIN_MEMORY_LIMIT,
    Job,
    Limits,
    Worker,
    _Current,
    default_memory_limit,
    fresh_connection,
    lock_down,
    machine_memory_bytes,
    parse_bytes,
    read_only,
)
from tre.query.model import ViewSpec


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> tuple[ViewSpec, ...]:
    root = Path(tmp_path_factory.mktemp("qexec"))
    dv = publish(root, "health", health_rows(20), HEALTH_COLUMNS, 5)
    return (
        ViewSpec("__tre_v0", "health", 1, tuple(str(f) for f in dv.files), "sex", "_tre_rank", 5),
    )


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker(Limits(timeout_seconds=10))
    yield w
    w.close()


def test_state_never_survives_into_the_next_query(
    worker: Worker, views: tuple[ViewSpec, ...]
) -> None:
    out = worker.run(views, ("CREATE TABLE leftover AS SELECT 42 AS x", "SELECT x FROM leftover"))
    assert out[1] == ((42,),)
    with pytest.raises(QueryFailed):
        worker.run(views, ("SELECT x FROM leftover",))
    (((n,),),) = worker.run(views, ("SELECT COUNT(*) FROM __tre_v0",))
    assert n > 0


def test_each_connection_is_locked_down_before_the_query(
    worker: Worker, views: tuple[ViewSpec, ...], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for sql in (
        f"SELECT * FROM read_csv('{secret}')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
    ):
        with pytest.raises(QueryFailed):
            worker.run(views, (sql,))
    assert worker.run(views, ("SELECT current_setting('enable_external_access')",)) == (
        ((False,),),
    )


def test_a_database_made_ready_for_other_views_is_never_used(
    worker: Worker, views: tuple[ViewSpec, ...]
) -> None:
    # The spare is locked down ahead for the last query's views; a query over other views (here
    # exposing one more column) must get a database built for its own, and the next query
    # over the first views must not see the extra column.
    (v,) = views
    wider = (
        ViewSpec(
            v.name, v.dataset, v.version, v.files, "sex, length_of_stay", v.rank_column, v.limit
        ),
    )
    for _ in range(2):  # twice: the second run uses the spare made ready for these views
        assert worker.run(views, ("SELECT COUNT(*) FROM __tre_v0",))[0][0][0] > 0
    (((n,),),) = worker.run(wider, ("SELECT COUNT(length_of_stay) FROM __tre_v0",))
    assert n > 0
    with pytest.raises(QueryFailed):
        worker.run(views, ("SELECT COUNT(length_of_stay) FROM __tre_v0",))
    for _ in range(2):
        (((m,),),) = worker.run(views, ("SELECT COUNT(*) FROM __tre_v0",))
        assert m == n


def test_only_single_read_only_statements_may_share_a_database() -> None:
    def job(*sql: str) -> Job:
        return Job((), sql, Limits())

    assert read_only(job("SELECT 1", "  with t AS (SELECT 1 AS a) SELECT a FROM t;"))
    for bad in (
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; CREATE TABLE t AS SELECT 1",
        "SET VARIABLE x = 1",
        "PRAGMA version",
        "",
    ):
        assert not read_only(job("SELECT 1", bad)), bad


def test_a_database_serves_later_queries_only_for_identical_views_and_limits(
    views: tuple[ViewSpec, ...],
) -> None:
    (v,) = views
    same = Job(views, ("SELECT COUNT(*) FROM __tre_v0",), Limits(timeout_seconds=10))
    wider = Job(
        (ViewSpec(v.name, v.dataset, v.version, v.files, "sex, cost", v.rank_column, v.limit),),
        same.statements,
        same.limits,
    )
    db = lock_down(fresh_connection(same.limits), views)
    current = _Current()
    assert current.connection_for(same) is None  # nothing current yet
    assert current.replace(db, same) is None
    cursor = current.connection_for(same)
    assert cursor is not None and cursor is not db  # a fresh connection to the same database
    # Connection-local state (variables, temporary tables) dies with the connection.
    cursor.execute("SET VARIABLE x = 42")
    cursor.execute("CREATE TEMP TABLE leftover AS SELECT 1 AS y")
    cursor.close()
    again = current.connection_for(same)
    assert again.execute("SELECT getvariable('x')").fetchall() == [(None,)]
    with pytest.raises(Exception, match="leftover"):
        again.execute("SELECT * FROM leftover")
    again.close()
    assert current.connection_for(wider) is None
    assert current.connection_for(Job(views, same.statements, Limits(timeout_seconds=9))) is None
    assert current.connection_for(Job(views, ("CREATE TABLE t AS SELECT 1",), same.limits)) is None
    current.served = MAX_QUERIES_PER_DATABASE
    assert current.connection_for(same) is None
    assert current.drop() is db
    assert current.connection_for(same) is None
    # A database that ran a statement changing state is never kept.
    other = lock_down(fresh_connection(same.limits), views)
    assert current.replace(other, Job(views, ("CREATE TABLE t AS SELECT 1",), same.limits)) is other
    assert current.db is None
    db.close()
    other.close()


def test_a_failed_query_is_never_followed_in_its_database(
    worker: Worker, views: tuple[ViewSpec, ...]
) -> None:
    for _ in range(2):
        assert worker.run(views, ("SELECT COUNT(*) FROM __tre_v0",))[0][0][0] > 0
    with pytest.raises(QueryFailed):
        worker.run(views, ("SELECT error('boom')",))
    (((n,),),) = worker.run(views, ("SELECT COUNT(*) FROM __tre_v0",))
    assert n > 0


def test_memory_limit_follows_the_machine_or_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    derived = parse_bytes(default_memory_limit())
    assert MIN_MEMORY_LIMIT <= derived <= MAX_MEMORY_LIMIT
    assert (
        derived
        == min(max(machine_memory_bytes() // 4, MIN_MEMORY_LIMIT), MAX_MEMORY_LIMIT)
        // 1024**2
        * 1024**2
    )
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "3GB")
    limits = Limits()
    assert limits.memory_limit == "3GB"
    # The worker's address-space limit follows DuckDB's buffer limit unless set.
    assert limits.address_space_bytes == 3 * 1000**3 + ADDRESS_SPACE_HEADROOM
    assert Limits(address_space=5 * 1024**3).address_space_bytes == 5 * 1024**3
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(ValueError, match="not a memory size"):
        Limits()


def test_memory_sizes_parse_as_duckdb_writes_them() -> None:
    assert parse_bytes("1536MiB") == 1536 * 1024**2
    assert parse_bytes("2GB") == 2 * 1000**3
    assert parse_bytes(" 2.5 GiB ") == int(2.5 * 1024**3)
    assert parse_bytes("4096") == 4096
    for bad in ("", "GB", "2 parsecs", "-1GB"):
        with pytest.raises(ValueError):
            parse_bytes(bad)
