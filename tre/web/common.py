"""Reading helpers shared by the console pages (catalogue, people, budgets, the audit log)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tre import governance as g
from tre.api.state import Services
from tre.audit import StoredEvent, read_events
from tre.catalog.catalog import DatasetVersion
from tre.errors import NotFound
from tre.governance.models import User
from tre.outputs import OutputService
from tre.wire.grant import Budget

# Identifier and rank columns are never granted: nobody may output them.
NOT_GRANTED = {"person_identifier", "direct_identifier", "rank"}


@dataclass(frozen=True)
class Person:
    """What the console shows about a person: name and accreditation."""

    id: int
    username: str
    display_name: str
    accredited_until: date | None
    disabled: bool


def people(s: Session, ids: Iterable[int]) -> dict[int, Person]:
    """The named people (read directly: custodians and checkers need names, not accounts)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = s.execute(sa.select(User).where(User.id.in_(wanted))).scalars()
    return {
        u.id: Person(u.id, u.username, u.display_name, u.accredited_until, bool(u.disabled))
        for u in rows
    }


def user_ids_by_name(s: Session, names: Iterable[str]) -> tuple[dict[str, int], list[str]]:
    """Usernames → ids, and the names that are not accounts."""
    wanted = [n for n in names if n]
    rows = s.execute(sa.select(User.username, User.id).where(User.username.in_(wanted))).all()
    found = {str(n): int(i) for n, i in rows}
    return found, [n for n in wanted if n not in found]


def outputs(svc: Services) -> OutputService:
    """The output-request service over this app's database and settings."""
    return OutputService(svc.db, svc.settings)


def latest(svc: Services, name: str) -> DatasetVersion | None:
    """The latest published version of a dataset, or None if the catalogue lacks it."""
    try:
        return svc.catalog.get(name)
    except NotFound:
        return None


def grantable(dv: DatasetVersion) -> list[Any]:
    """The columns a project may ask for."""
    return [c for c in dv.columns if c.column_class not in NOT_GRANTED]


def parse_budget(rho: str | None, delta: str | None) -> Budget:
    """A budget from form text (ValueError with a readable message when malformed)."""
    try:
        r = Decimal((rho or "").strip())
        d = Decimal((delta or "0").strip() or "0")
    except InvalidOperation:
        raise ValueError("enter numbers, e.g. 0.5 for ρ and 1e-6 for δ") from None
    if not r.is_finite() or not d.is_finite() or r <= 0 or d < 0 or d > 1:
        raise ValueError("ρ must be more than 0, and δ between 0 and 1")
    try:
        return Budget(rho=r, delta=d)
    except ValueError as exc:
        raise ValueError(f"not a valid budget: {str(exc).splitlines()[0]}") from None


def events_of(s: Session, event_type: str, *, limit: int = 100_000) -> list[StoredEvent]:
    """Every stored event of one type, oldest first (paged through the log)."""
    out: list[StoredEvent] = []
    after = 0
    while len(out) < limit:
        page = read_events(s, after_seq=after, limit=1000, event_type=event_type)
        if not page:
            break
        out.extend(page)
        after = page[-1].seq
    return out


def allowance_rows(svc: Services, s: Session, project: g.ProjectView) -> list[dict[str, Any]]:
    """Per requested dataset: asked, approved and the ledger's allowance (spent, remaining)."""
    rows = []
    for r in project.requests:
        try:
            status = svc.ledger.allowance(s, project.id, r.dataset)
        except NotFound:
            status = None
        rows.append({"request": r, "allowance": status})
    return rows
