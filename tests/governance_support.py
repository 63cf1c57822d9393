"""Builders shared by the governance, ledger and audit tests (fixtures: governance_fixtures)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tre import governance as g
from tre.db import Database
from tre.governance import Actor, ProjectView
from tre.privacy.ledger import Ledger
from tre.wire.grant import Budget

T0 = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)  # a Monday morning
LEDGER = Ledger()


@dataclass
class World:
    """A small TRE: an admin, two custodians, three researchers, a checker, two datasets."""

    admin: Actor
    custodian: Actor  # custodian of "health"
    custodian2: Actor  # custodian of "education"
    alice: Actor  # accredited researcher until 2026-03-31
    bob: Actor  # accredited researcher until 2025-06-30
    carol: Actor  # researcher without accreditation
    checker: Actor


def seed(db: Database, now: datetime = T0) -> World:
    """Create the `World` in one transaction."""
    with db.transaction() as s:
        admin = g.bootstrap_admin(s, username="admin", display_name="Admin", now=now).as_actor()

        def user(name: str, roles: list[str], until: date | None = None) -> Actor:
            view = g.create_user(
                s,
                admin,
                username=name,
                display_name=name.title(),
                roles=roles,
                accredited_until=until,
                now=now,
            )
            return view.as_actor()

        world = World(
            admin=admin,
            custodian=user("cust", ["custodian"]),
            custodian2=user("cust2", ["custodian"]),
            alice=user("alice", ["researcher"], date(2026, 3, 31)),
            bob=user("bob", ["researcher"], date(2025, 6, 30)),
            carol=user("carol", ["researcher"]),
            checker=user("checker", ["output_checker"]),
        )
        g.register_dataset(
            s,
            admin,
            name="health",
            title="Hospital episodes",
            custodian_ids=[world.custodian.user_id],
            cap=Budget(rho=Decimal(5), delta=Decimal("1e-6")),
            budget=LEDGER,
            now=now,
        )
        g.register_dataset(
            s,
            admin,
            name="education",
            title="Pupils",
            custodian_ids=[world.custodian2.user_id],
            cap=Budget(rho=Decimal(5), delta=Decimal("1e-6")),
            budget=LEDGER,
            now=now,
        )
    return world


def application(
    *,
    datasets: tuple[str, ...] = ("health",),
    members: tuple[int, ...] = (),
    exact: bool = False,
    start: date = date(2025, 3, 1),
    end: date = date(2025, 12, 31),
    rho: str = "1",
    delta: str = "1e-7",
) -> g.Application:
    """A complete application for the given datasets."""
    columns = {"health": ("cost", "sex", "region"), "education": ("ks4_attainment8", "sex")}
    return g.Application(
        title="Deprivation and hospital admissions",
        lay_summary="Do children in deprived areas go to hospital more often?",
        purpose="Estimate admission rates by deprivation decile.",
        public_benefit="Targets prevention where it helps most.",
        legal_basis=g.LegalBasis.DEA_2017_PART_5,
        datasets=tuple(
            g.DatasetAsk(
                dataset=d, columns=columns[d], budget=Budget(rho=Decimal(rho), delta=Decimal(delta))
            )
            for d in datasets
        ),
        member_ids=members,
        exact_outputs=exact,
        start_date=start,
        end_date=end,
    )


def active_project(
    db: Database,
    w: World,
    *,
    datasets: tuple[str, ...] = ("health",),
    members: tuple[int, ...] = (),
    exact: bool = False,
    now: datetime = T0,
    **approve: object,
) -> ProjectView:
    """Alice applies; every custodian approves as asked (plus `approve` overrides)."""
    custodians = {"health": w.custodian, "education": w.custodian2}
    with db.transaction() as s:
        project = g.apply(
            s, w.alice, application(datasets=datasets, members=members, exact=exact), now=now
        )
    for d in datasets:
        with db.transaction() as s:
            project = g.approve_request(
                s,
                custodians[d],
                project.id,
                d,
                reason="meets the access policy",
                budget=LEDGER,
                now=now,
                **approve,  # type: ignore[arg-type]
            )
    return project


def later(days: int = 0, hours: int = 0) -> datetime:
    """T0 moved forward."""
    return T0 + timedelta(days=days, hours=hours)
