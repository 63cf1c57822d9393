"""Catalogue datasets under governance: registration, custodians, lifetime budget caps.

Datasets are named as in the catalogue (governance does not import the catalogue: the API
checks that a name exists there before registering it). The lifetime cap itself lives in the
ledger; these functions decide who may set it and pass it on through `BudgetBook`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tre.audit import lock_chain, record, user_actor
from tre.audit.events import CustodianAdded, CustodianRemoved, DatasetRegistered
from tre.errors import Conflict, InvalidInput
from tre.governance._load import dataset_row, dataset_view, user_row
from tre.governance.budget import BudgetBook
from tre.governance.decide import SYSTEM, Action, decide, require
from tre.governance.models import Dataset, DatasetCustodian
from tre.governance.types import Actor, DatasetView, Role
from tre.wire.grant import Budget

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_custodian(session: Session, user_id: int) -> None:
    user = user_row(session, user_id)
    if Role.CUSTODIAN.value not in {r.role for r in user.roles} or user.disabled:
        raise Conflict(
            f"user {user.username!r} is not an enabled custodian",
            reason="not_a_custodian",
            hint="An admin gives the account the custodian role first.",
        )


def register_dataset(
    session: Session,
    actor: Actor,
    *,
    name: str,
    title: str,
    custodian_ids: Iterable[int],
    cap: Budget,
    budget: BudgetBook,
    now: datetime,
) -> DatasetView:
    """Register a catalogue dataset with its custodians and initial lifetime cap (admins)."""
    require(decide(actor, Action.REGISTER_DATASET, SYSTEM, now=now))
    if not DATASET_NAME.match(name):
        raise InvalidInput(
            f"dataset name {name!r} is not a catalogue name",
            reason="bad_dataset_name",
            hint="Names are lower-case letters, digits and '_', starting with a letter.",
        )
    custodians = sorted(set(custodian_ids))
    if not custodians:
        raise InvalidInput("a dataset needs at least one custodian")
    lock_chain(session)
    if session.execute(sa.select(Dataset.id).where(Dataset.name == name)).first():
        raise Conflict(f"dataset {name!r} is already registered", reason="dataset_exists")
    for uid in custodians:
        _check_custodian(session, uid)
    ds = Dataset(
        name=name,
        title=title.strip() or name,
        created_at=now,
        custodians=[DatasetCustodian(user_id=uid) for uid in custodians],
    )
    session.add(ds)
    session.flush()
    who = user_actor(actor.user_id)
    record(
        session,
        DatasetRegistered(dataset_id=ds.id, dataset=name, custodian_ids=tuple(custodians)),
        actor=who,
        now=now,
    )
    budget.set_dataset_cap(session, name, cap, actor=who, now=now)
    return dataset_view(ds)


def add_custodian(
    session: Session, actor: Actor, dataset: str, user_id: int, *, now: datetime
) -> DatasetView:
    """Make a custodian responsible for a dataset too (admins)."""
    ds = dataset_row(session, dataset)
    require(decide(actor, Action.MANAGE_CUSTODIANS, dataset_view(ds), now=now))
    lock_chain(session)
    if any(c.user_id == user_id for c in ds.custodians):
        raise Conflict(f"user {user_id} is already a custodian of {dataset!r}")
    _check_custodian(session, user_id)
    ds.custodians.append(DatasetCustodian(user_id=user_id))
    session.flush()
    record(
        session,
        CustodianAdded(dataset_id=ds.id, user_id=user_id),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return dataset_view(ds)


def remove_custodian(
    session: Session, actor: Actor, dataset: str, user_id: int, *, now: datetime
) -> DatasetView:
    """Remove a custodian from a dataset (admins); a dataset keeps at least one."""
    ds = dataset_row(session, dataset)
    require(decide(actor, Action.MANAGE_CUSTODIANS, dataset_view(ds), now=now))
    lock_chain(session)
    link = next((c for c in ds.custodians if c.user_id == user_id), None)
    if link is None:
        raise Conflict(f"user {user_id} is not a custodian of {dataset!r}")
    if len(ds.custodians) == 1:
        raise Conflict(
            f"{dataset!r} would have no custodian left",
            reason="last_custodian",
            hint="Add the new custodian first.",
        )
    ds.custodians.remove(link)
    session.flush()
    record(
        session,
        CustodianRemoved(dataset_id=ds.id, user_id=user_id),
        actor=user_actor(actor.user_id),
        now=now,
    )
    return dataset_view(ds)


def set_dataset_cap(
    session: Session,
    actor: Actor,
    dataset: str,
    cap: Budget,
    *,
    budget: BudgetBook,
    now: datetime,
) -> None:
    """Change a dataset's lifetime budget cap (its custodians only)."""
    ds = dataset_row(session, dataset)
    require(decide(actor, Action.SET_DATASET_CAP, dataset_view(ds), now=now))
    budget.set_dataset_cap(session, dataset, cap, actor=user_actor(actor.user_id), now=now)


def get_dataset(session: Session, dataset: str) -> DatasetView:
    """A governed dataset by name, or NotFound."""
    return dataset_view(dataset_row(session, dataset))


def list_datasets(session: Session) -> list[DatasetView]:
    """Every governed dataset, by name."""
    rows = session.execute(sa.select(Dataset).order_by(Dataset.name)).scalars()
    return [dataset_view(d) for d in rows]
