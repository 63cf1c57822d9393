"""The worker gives every query its own never-used DuckDB database, even though it makes the
next one ahead of time: nothing one query's SQL does is visible to the next, and each is
locked down (no file access beyond the granted files) before any of tre's SQL runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.query_support import HEALTH_COLUMNS, health_rows, publish
from tre.query.errors import QueryFailed
from tre.query.execute import Limits, Worker
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
