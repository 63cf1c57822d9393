"""Queries against the real ledger and audit log, on SQLite and PostgreSQL.

Reserve before execute, commit before release; a refused or failed query leaves nothing
reserved or spent; the query's events sit in the same database's hash-chained log next to the
ledger's; released answers are kept in the database, so a repeat at the same or a lower ρ is
free in another service instance, and a repeat at a higher ρ is charged in full.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.query_support import (
    HEALTH_COLUMNS,
    FixtureCatalog,
    broken_catalog,
    grant,
    health_rows,
    publish,
)
from tre.audit import read_events, user_actor, verify
from tre.db import Database, utcnow
from tre.errors import Conflict
from tre.privacy.ledger import Ledger
from tre.query.errors import QueryFailed, QueryRefused
from tre.query.execute import Limits, Worker
from tre.query.service import QueryService
from tre.query.store import DatabaseAnswerCache, DatabaseAudit, DatabaseLedger
from tre.wire.grant import Budget

pytest_plugins = ("tests.governance_fixtures",)  # the `db` fixture on SQLite and PG

PROJECT = 7
SQL = "SELECT sex, COUNT(*) AS n FROM health GROUP BY sex"
G = grant("health", project_id=PROJECT)
LEDGER = Ledger(reservation_ttl=timedelta(minutes=5))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> FixtureCatalog:
    root: Path = tmp_path_factory.mktemp("data")
    return FixtureCatalog({"health": publish(root, "health", health_rows(200), HEALTH_COLUMNS, 5)})


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker(Limits(timeout_seconds=20))
    yield w
    w.close()


@pytest.fixture
def funded(db: Database) -> Database:
    """Dataset health with a lifetime cap ρ=5 and project 7's allowance ρ=0.5, δ=1e-6."""
    now = utcnow()
    with db.transaction() as s:
        LEDGER.set_dataset_cap(
            s, "health", Budget(rho=Decimal(5), delta=Decimal("1e-5")), actor="system:test", now=now
        )
        LEDGER.open_allowance(
            s,
            PROJECT,
            "health",
            Budget(rho=Decimal("0.5"), delta=Decimal("1e-6")),
            valid_from=date(2020, 1, 1),
            valid_until=date(2099, 1, 1),
            actor="system:test",
            now=now,
        )
    return db


def service(db: Database, catalog: FixtureCatalog, worker: Worker) -> QueryService:
    actor = user_actor(G.user_id)
    return QueryService(
        catalog,
        DatabaseLedger(db, actor, LEDGER),
        DatabaseAudit(db, actor),
        worker=worker,
        cache=DatabaseAnswerCache(db),
    )


def types(db: Database) -> list[str]:
    with db.read() as s:
        return [
            e.event_type
            for e in read_events(s, limit=1000)
            if not e.event_type.startswith("budget.cap")
            and e.event_type != "budget.allowance_opened"
        ]


def test_a_query_is_reserved_then_committed_and_audited_in_the_chain(
    funded: Database, catalog: FixtureCatalog, worker: Worker
) -> None:
    r = service(funded, catalog, worker).run(SQL, G, rho=0.2)
    with funded.read() as s:
        a = LEDGER.allowance(s, PROJECT, "health")
        assert a.reserved == Budget.zero()
        assert a.committed == Budget.ceil(r.cost.rho, r.cost.delta)
        assert float(a.committed.rho) == pytest.approx(0.2, rel=1e-6)
        assert verify(s).ok
        answered = read_events(s, event_type="query.answered")[0]
    assert types(funded) == ["budget.reserved", "budget.committed", "query.answered"]
    assert answered.payload["query_text"] == SQL and answered.actor == "user:3"
    # The released numbers are not in the log (as whole numbers: a two-digit count can occur
    # inside the query id's or digest's hex by chance, which is not a leak).
    text = str(answered.payload)
    assert not any(
        re.search(rf"(?<![\w.]){re.escape(str(row[1]))}(?![\w.])", text)
        for row in r.rows
        if abs(row[1]) > 9
    )


def test_repeats_are_free_at_the_same_or_lower_rho_and_charged_above(
    funded: Database, catalog: FixtureCatalog, worker: Worker
) -> None:
    first = service(funded, catalog, worker).run(SQL, G, rho=0.2)
    # A new service instance (another API process) finds the answer in the database.
    svc = service(funded, catalog, worker)
    same = svc.run("select SEX, count(*) as n from HEALTH group by SEX", G, rho=0.2)
    lower = svc.run(SQL, G, rho=0.05)
    assert same.cached and lower.cached and same.rows == lower.rows == first.rows
    assert same.cost.rho == 0 and svc.explain(SQL, G, rho=0.1).cached
    with funded.read() as s:
        assert float(LEDGER.allowance(s, PROJECT, "health").committed.rho) == pytest.approx(
            0.2, rel=1e-5
        )
    higher = svc.run(SQL, G, rho=0.25)
    assert not higher.cached and not svc.explain(SQL, G, rho=0.3).cached
    with funded.read() as s:
        assert float(LEDGER.allowance(s, PROJECT, "health").committed.rho) == pytest.approx(
            0.45, rel=1e-5
        )
    # The kept answer is now the more accurate one.
    again = svc.run(SQL, G, rho=0.2)
    assert again.cached and again.rows == higher.rows and again.query_id == higher.query_id


def test_refused_and_over_budget_queries_leave_nothing_reserved(
    funded: Database, catalog: FixtureCatalog, worker: Worker
) -> None:
    svc = service(funded, catalog, worker)
    with pytest.raises(QueryRefused):
        svc.run("SELECT pid FROM health", G, rho=0.1)
    with pytest.raises(Conflict) as info:
        svc.run(SQL, G, rho=0.6)
    assert info.value.reason == "budget_exhausted"
    with funded.read() as s:
        a = LEDGER.allowance(s, PROJECT, "health")
        assert a.reserved == Budget.zero() and a.committed == Budget.zero()
        reasons = [e.payload["reason"] for e in read_events(s, event_type="query.refused")]
        assert verify(s).ok
    assert reasons[1] == "budget_exhausted"
    assert types(funded) == ["query.refused", "query.refused"]


def test_a_failed_execution_releases_its_reservation(
    funded: Database, tmp_path: Path, worker: Worker
) -> None:
    # The published file is damaged: execution fails in the worker after the reservation.
    with pytest.raises(QueryFailed) as info:
        service(funded, broken_catalog(tmp_path), worker).run(SQL, G, rho=0.2)
    with funded.read() as s:
        a = LEDGER.allowance(s, PROJECT, "health")
        assert a.reserved == Budget.zero() and a.committed == Budget.zero()
        failed = read_events(s, event_type="query.failed")
        assert verify(s).ok
    assert types(funded) == ["budget.reserved", "budget.released", "query.failed"]
    assert failed[0].payload["error_id"] == info.value.error_id
