"""The query service's side effects: reserve before execute, commit on release, a failure costs
nothing, the cache is free, audit events carry the SQL and cost but never results."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
from tre.audit.payload import AuditEvent
from tre.errors import Conflict
from tre.query.errors import QueryFailed, QueryRefused
from tre.query.execute import Limits, Worker
from tre.query.service import QueryService, QuerySettings
from tre.wire.grant import Budget


class MemoryLedger:
    """An in-memory privacy filter with the BudgetLedger protocol (one allowance per dataset)."""

    def __init__(self, allowance: float):
        self.allowance = Budget(rho=allowance)
        self.spent: dict[str, Budget] = {}
        self.open: dict[str, Mapping[str, Budget]] = {}
        self.log: list[str] = []

    def reserve(
        self, project_id: int, charges: Mapping[str, Budget], *, purpose: str | None
    ) -> str:
        for ds, c in charges.items():
            held = sum((r[ds] for r in self.open.values() if ds in r), Budget.zero())
            if not (self.spent.get(ds, Budget.zero()) + held + c).fits_within(self.allowance):
                raise Conflict(f"budget on {ds} exhausted", reason="budget_exhausted")
        rid = f"r{len(self.log)}"
        self.open[rid] = dict(charges)
        self.log.append(f"reserve {rid}")
        return rid

    def commit(self, reservation_id: str, actual: Mapping[str, Budget]) -> None:
        self.open.pop(reservation_id)
        for ds, c in actual.items():
            self.spent[ds] = self.spent.get(ds, Budget.zero()) + c
        self.log.append(f"commit {reservation_id}")

    def release(self, reservation_id: str) -> None:
        self.open.pop(reservation_id)
        self.log.append(f"release {reservation_id}")


class ListSink:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


@pytest.fixture
def catalog(tmp_path: Path) -> FixtureCatalog:
    return FixtureCatalog(
        {"health": publish(tmp_path, "health", health_rows(300), HEALTH_COLUMNS, 5)}
    )


@pytest.fixture
def worker() -> Iterator[Worker]:
    w = Worker(Limits(timeout_seconds=10))
    yield w
    w.close()


G = grant("health")
SQL = "SELECT sex, COUNT(*) AS n FROM health GROUP BY sex"


def test_charge_is_reserved_then_committed_and_cache_is_free(
    catalog: FixtureCatalog, worker: Worker
) -> None:
    ledger, sink = MemoryLedger(1.0), ListSink()
    svc = QueryService(catalog, ledger, sink, worker=worker)
    first = svc.run(SQL, G, rho=0.2)
    assert ledger.log == ["reserve r0", "commit r0"]
    assert float(ledger.spent["health"].rho) == pytest.approx(0.2, rel=1e-6)
    again = svc.run(SQL, G, rho=0.2)
    assert again.rows == first.rows and again.cached and ledger.log == ["reserve r0", "commit r0"]
    ev = [e for e in sink.events if e.event_type == "query.answered"]
    assert len(ev) == 2 and ev[0].query_text == SQL and ev[1].cached
    dumped = " ".join(e.model_dump_json() for e in sink.events)
    for row in first.rows:
        assert str(row[1]) not in dumped.replace(str(ev[0].rho), "")


def test_budget_exhaustion_by_repetition_is_refused(
    catalog: FixtureCatalog, worker: Worker
) -> None:
    ledger = MemoryLedger(0.25)
    svc = QueryService(catalog, ledger, None, worker=worker)
    svc.run(SQL, G, rho=0.2)
    with pytest.raises(Conflict):
        svc.run("SELECT sex, COUNT(DISTINCT pid) FROM health GROUP BY sex", G, rho=0.2)
    assert ledger.open == {}


def test_failed_execution_costs_nothing(tmp_path: Path, worker: Worker) -> None:
    # The published file is damaged after planning could see it: execution fails in the worker.
    ledger = MemoryLedger(1.0)
    svc = QueryService(broken_catalog(tmp_path), ledger, None, worker=worker)
    with pytest.raises(QueryFailed) as info:
        svc.run(SQL, G, rho=0.2)
    assert "error id" in str(info.value)
    assert ledger.log == ["reserve r0", "release r0"] and "health" not in ledger.spent


def test_refusals_are_audited_and_cost_nothing(catalog: FixtureCatalog, worker: Worker) -> None:
    ledger, sink = MemoryLedger(1.0), ListSink()
    svc = QueryService(catalog, ledger, sink, QuerySettings(), worker=worker)
    with pytest.raises(QueryRefused):
        svc.run("SELECT pid FROM health", G, rho=0.1)
    assert ledger.log == []
    assert [e.event_type for e in sink.events] == ["query.refused"]


def test_epsilon_is_converted_to_rho_and_shown_back(
    catalog: FixtureCatalog, worker: Worker
) -> None:
    svc = QueryService(catalog, None, None, worker=worker)
    r = svc.run(SQL, G, epsilon=1.0)
    assert r.cost.epsilon == pytest.approx(1.0, rel=1e-3)
    assert r.to_arrow().num_rows == 2 and r.to_json()["cost"]["rho"] == r.cost.rho


def test_sdc_queries_cost_no_budget_but_are_audited(
    catalog: FixtureCatalog, worker: Worker
) -> None:
    from tre.wire.grant import Mode

    ledger, sink = MemoryLedger(1.0), ListSink()
    svc = QueryService(catalog, ledger, sink, worker=worker)
    g = grant("health", modes=(Mode.DP, Mode.SDC))
    r = svc.run(SQL, g, mode=Mode.SDC)
    again = svc.run(SQL, g, mode="sdc")
    assert ledger.log == [] and r.cost.rho == 0 and again.cached and again.rows == r.rows
    answered = [e for e in sink.events if e.event_type == "query.answered"]
    assert [e.mode for e in answered] == ["sdc", "sdc"] and answered[0].query_text == SQL
    assert all(e.rho == 0 for e in answered)
    with pytest.raises(QueryRefused):
        svc.run("SELECT sex, MEDIAN(cost) FROM health GROUP BY sex", g, mode=Mode.SDC)
    assert sink.events[-1].event_type == "query.refused" and ledger.log == []
    e = svc.explain(SQL, g, mode=Mode.SDC)
    assert e.cost.rho == 0 and e.cached and e.groups == 2
