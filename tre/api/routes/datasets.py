"""The dataset catalogue (read, every account) and its governance (admins, custodians)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from tre import governance as g
from tre.api.catalogue import published
from tre.api.convert import cap_out
from tre.api.deps import Caller, Now, SessionCaller, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.api.state import Services
from tre.catalog.catalog import DatasetVersion
from tre.errors import NotFound
from tre.wire._base import DATASET_NAME_PATTERN, MAX_ID
from tre.wire.datasets import CapIn, ColumnOut, DatasetDetailOut, DatasetOut, DatasetRegisterIn
from tre.wire.projects import MemberIn

router = APIRouter(prefix="/datasets", tags=["datasets"], responses=ERROR_RESPONSES)
Name = Annotated[str, Path(pattern=DATASET_NAME_PATTERN)]


def _describe(svc: Services, name: str, version: int | None = None) -> DatasetDetailOut:
    versions = svc.catalog.versions(name)
    dv: DatasetVersion | None = svc.catalog.get(name, version) if versions else None
    with svc.db.read() as s:
        try:
            view: g.DatasetView | None = g.get_dataset(s, name)
        except NotFound:
            view = None
        cap = cap_out(svc.ledger.cap(s, name)) if view is not None else None
    if dv is None and view is None:
        raise NotFound(f"no dataset named {name!r}", hint="List datasets with GET /datasets.")
    if version is not None and dv is None:
        raise NotFound(f"dataset {name!r} has no published version {version}")
    return DatasetDetailOut(
        name=name,
        title=dv.title if dv is not None else view.title if view is not None else name,
        versions=versions,
        latest_version=versions[-1] if versions else None,
        row_count=dv.row_count if dv else None,
        person_count=dv.person_count if dv else None,
        contribution_limit=dv.contribution_limit if dv else None,
        governed=view is not None,
        custodian_ids=sorted(view.custodian_ids) if view else [],
        cap=cap,
        version=dv.version if dv else None,
        columns=[
            ColumnOut(
                name=c.name,
                column_class=c.column_class,
                type=c.type,
                nullable=c.nullable,
                description=c.description,
                bounds=c.bounds,
                categories=list(c.categories) if c.categories is not None else None,
                group_by=c.group_by,
                allow_quantiles=c.allow_quantiles,
            )
            for c in (dv.columns if dv else ())
        ],
    )


@router.get("", response_model=list[DatasetOut])
def list_datasets(who: Caller, svc: Svc) -> list[DatasetOut]:
    """The catalogue: every published dataset, and every governed one, with custodians and cap."""
    del who  # any authenticated account may read the catalogue (Action.VIEW_DATASET)
    with svc.db.read() as s:
        governed = {d.name for d in g.list_datasets(s)}
    names = sorted(set(svc.catalog.datasets()) | governed)
    return [
        DatasetOut.model_validate(_describe(svc, n).model_dump(exclude={"version", "columns"}))
        for n in names
    ]


@router.get("/{name}", response_model=DatasetDetailOut)
def get_dataset(
    name: Name,
    who: Caller,
    svc: Svc,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> DatasetDetailOut:
    """One dataset with the columns of a version (default: the latest)."""
    del who
    return _describe(svc, name, version)


@router.post("", response_model=DatasetDetailOut, status_code=201)
def register_dataset(
    body: DatasetRegisterIn, who: SessionCaller, svc: Svc, at: Now
) -> DatasetDetailOut:
    """Register a published catalogue dataset for governance, with custodians and a cap."""
    g.require(g.decide(who.actor, g.Action.REGISTER_DATASET, g.SYSTEM, now=at))
    dv = published(svc.catalog, body.name, field="body.name")
    with svc.db.transaction() as s:
        g.register_dataset(
            s,
            who.actor,
            name=body.name,
            title=body.title or dv.title,
            custodian_ids=body.custodian_ids,
            cap=body.cap.to_budget(),
            budget=svc.ledger,
            now=at,
        )
    return _describe(svc, body.name)


@router.put("/{name}/cap", response_model=DatasetDetailOut)
def set_cap(name: Name, body: CapIn, who: SessionCaller, svc: Svc, at: Now) -> DatasetDetailOut:
    """Change a dataset's lifetime budget cap (its custodians only)."""
    with svc.db.transaction() as s:
        g.set_dataset_cap(s, who.actor, name, body.cap.to_budget(), budget=svc.ledger, now=at)
    return _describe(svc, name)


@router.post("/{name}/custodians", response_model=DatasetDetailOut)
def add_custodian(
    name: Name, body: MemberIn, who: SessionCaller, svc: Svc, at: Now
) -> DatasetDetailOut:
    """Make another custodian responsible for the dataset (admins)."""
    with svc.db.transaction() as s:
        g.add_custodian(s, who.actor, name, body.user_id, now=at)
    return _describe(svc, name)


@router.delete("/{name}/custodians/{user_id}", response_model=DatasetDetailOut)
def remove_custodian(
    name: Name,
    user_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    who: SessionCaller,
    svc: Svc,
    at: Now,
) -> DatasetDetailOut:
    """Remove a custodian from the dataset (admins; a dataset keeps at least one)."""
    with svc.db.transaction() as s:
        g.remove_custodian(s, who.actor, name, user_id, now=at)
    return _describe(svc, name)
