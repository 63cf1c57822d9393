"""Ledger invariants under any sequence of reserve / commit / release / time passing, checked
against a plain Python model; and exact budget arithmetic."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tre.db import Database
from tre.errors import Conflict
from tre.privacy.ledger import Ledger
from tre.wire.grant import DELTA_SCALE, RHO_SCALE, Budget

T0 = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)
TTL = timedelta(minutes=5)
LEDGER = Ledger(reservation_ttl=TTL)
PROJECTS = (1, 2)
_example = itertools.count()

Units = tuple[int, int]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One SQLite control plane for the module; each example uses fresh dataset names."""
    path: Path = tmp_path_factory.mktemp("ledger") / "control.sqlite"
    database = Database.from_url(f"sqlite:///{path}")
    database.upgrade()
    yield database
    database.dispose()


units = st.tuples(st.integers(0, 50), st.integers(0, 5))  # a charge
limits = st.tuples(st.integers(0, 200), st.integers(0, 20))  # an allowance or a cap
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.sampled_from(PROJECTS),
            st.dictionaries(st.sampled_from("ab"), units, min_size=1, max_size=2),
        ),
        st.tuples(st.just("commit"), st.integers(0, 20), st.integers(0, 4)),
        st.tuples(st.just("release"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 4), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)


@dataclass
class Model:
    """What the ledger should hold, in integer units (ρ·scale, δ·scale)."""

    caps: dict[str, Units]
    allowed: dict[tuple[int, str], Units]
    committed: dict[tuple[int, str], Units] = field(default_factory=dict)
    reserved: dict[tuple[int, str], Units] = field(default_factory=dict)
    open: dict[str, tuple[int, dict[str, Units], datetime]] = field(default_factory=dict)

    def total(self, table: dict[tuple[int, str], Units], ds: str) -> Units:
        rows = [v for (_, d), v in table.items() if d == ds]
        return sum(r[0] for r in rows), sum(r[1] for r in rows)

    def expire(self, now: datetime) -> None:
        for rid, (p, charges, expires) in list(self.open.items()):
            if expires <= now:
                self._unreserve(p, charges)
                del self.open[rid]

    def _unreserve(self, project: int, charges: dict[str, Units]) -> None:
        for ds, (r, d) in charges.items():
            cur = self.reserved[(project, ds)]
            self.reserved[(project, ds)] = (cur[0] - r, cur[1] - d)

    def fits(self, project: int, charges: dict[str, Units]) -> bool:
        for ds, (r, d) in charges.items():
            key = (project, ds)
            used = [
                self.committed.get(key, (0, 0))[i] + self.reserved.get(key, (0, 0))[i]
                for i in (0, 1)
            ]
            if used[0] + r > self.allowed[key][0] or used[1] + d > self.allowed[key][1]:
                return False
            c, res = self.total(self.committed, ds), self.total(self.reserved, ds)
            if c[0] + res[0] + r > self.caps[ds][0] or c[1] + res[1] + d > self.caps[ds][1]:
                return False
        return True


def _b(u: Units) -> Budget:
    # Amounts of 1e-3 ρ and 1e-9 δ per unit in the strategy, as exact ledger units.
    return Budget.from_units(u[0] * RHO_SCALE // 1000, u[1] * DELTA_SCALE // 10**9)


def _u(b: Budget) -> Units:
    r, d = b.units
    return r // (RHO_SCALE // 1000), d // (DELTA_SCALE // 10**9)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    caps=st.tuples(limits, limits),
    allowances=st.lists(limits, min_size=4, max_size=4),
    steps=ops,
)
def test_the_ledger_never_overspends_and_agrees_with_the_model(
    db: Database, caps: tuple[Units, Units], allowances: list[Units], steps: list
) -> None:
    n = next(_example)
    name = {"a": f"a{n}", "b": f"b{n}"}
    project_base = 1000 * (n + 1)
    model = Model(
        caps={"a": caps[0], "b": caps[1]},
        allowed={
            (p, ds): allowances[i * 2 + j]
            for i, p in enumerate(PROJECTS)
            for j, ds in enumerate("ab")
        },
    )
    model.committed = {k: (0, 0) for k in model.allowed}
    model.reserved = {k: (0, 0) for k in model.allowed}
    with db.transaction() as s:
        for ds in "ab":
            LEDGER.set_dataset_cap(s, name[ds], _b(model.caps[ds]), actor="system:t", now=T0)
        for (p, ds), allowed in model.allowed.items():
            LEDGER.open_allowance(
                s,
                project_base + p,
                name[ds],
                _b(allowed),
                valid_from=date(2025, 1, 1),
                valid_until=date(2025, 12, 31),
                actor="system:t",
                now=T0,
            )
    now = T0
    ids: list[str] = []
    for op, x, y in steps:
        if op == "wait":
            now += timedelta(minutes=2 * x)
            continue
        model.expire(now)
        if op == "reserve":
            charges: dict[str, Units] = y
            expected = model.fits(x, charges)
            try:
                with db.transaction() as s:
                    rid = LEDGER.reserve(
                        s,
                        project_base + x,
                        {name[d]: _b(u) for d, u in charges.items()},
                        actor="system:t",
                        now=now,
                    ).id
            except Conflict:
                assert not expected
                event("reservation refused")
                continue
            assert expected
            event("reservation accepted")
            ids.append(rid)
            for ds, (r, d) in charges.items():
                cur = model.reserved[(x, ds)]
                model.reserved[(x, ds)] = (cur[0] + r, cur[1] + d)
            model.open[rid] = (x, charges, now + TTL)
        elif ids:
            rid = ids[x % len(ids)]
            is_open = rid in model.open
            try:
                with db.transaction() as s:
                    if op == "commit":
                        p, charges, _ = model.open.get(rid, (0, {}, now))
                        # y/4 of each reserved amount, rounded down to whole units
                        actual = {d: (u[0] * y // 4, u[1] * y // 4) for d, u in charges.items()}
                        LEDGER.commit(
                            s,
                            rid,
                            actual={name[d]: _b(u) for d, u in actual.items()},
                            actor="system:t",
                            now=now,
                        )
                    else:
                        LEDGER.release(s, rid, actor="system:t", now=now)
            except Conflict:
                assert not is_open
                continue
            assert is_open
            event(f"{op} accepted")
            p, charges, _ = model.open.pop(rid)
            model._unreserve(p, charges)
            if op == "commit":
                for ds in charges:
                    cur = model.committed[(p, ds)]
                    model.committed[(p, ds)] = (cur[0] + actual[ds][0], cur[1] + actual[ds][1])

        with db.read() as s:
            for p, ds in model.allowed:
                a = LEDGER.allowance(s, project_base + p, name[ds])
                assert _u(a.committed) == model.committed[(p, ds)]
                assert _u(a.reserved) == model.reserved[(p, ds)]
                assert (a.committed + a.reserved).fits_within(a.allowed)
            for ds in "ab":
                c = LEDGER.cap(s, name[ds])
                assert _u(c.committed) == model.total(model.committed, ds)
                assert (c.committed + c.reserved).fits_within(c.cap)


@given(st.integers(0, 10**15), st.integers(0, 10**18))
def test_budget_units_round_trip_exactly(rho_units: int, delta_units: int) -> None:
    b = Budget.from_units(rho_units, delta_units)
    assert b.units == (rho_units, delta_units)
    assert Budget.model_validate_json(b.model_dump_json()) == b


@given(
    st.decimals(min_value=0, max_value=100, allow_nan=False, places=20),
    st.decimals(min_value=0, max_value=Decimal("0.001"), allow_nan=False, places=25),
)
def test_ceil_never_under_counts_and_adds_less_than_one_unit(rho: Decimal, delta: Decimal) -> None:
    b = Budget.ceil(rho, delta)
    assert rho <= b.rho < rho + Decimal(1) / RHO_SCALE
    assert delta <= b.delta < delta + Decimal(1) / DELTA_SCALE


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=50))
def test_sums_of_budgets_do_not_drift(parts: list[int]) -> None:
    total = Budget.zero()
    for p in parts:
        total = total + Budget.from_units(p, p)
    assert total.units == (sum(parts), sum(parts))


def test_more_precision_than_the_ledger_keeps_is_refused() -> None:
    with pytest.raises(ValueError, match="decimal places"):
        Budget(rho=Decimal("0.0000000000001"))
    with pytest.raises(ValueError, match="decimal places"):
        Budget(rho=Decimal(1), delta=Decimal("1e-19"))
    assert str(Budget(rho=Decimal("0.5"), delta=Decimal("1e-9"))) == "rho=0.5 delta=0.000000001"
