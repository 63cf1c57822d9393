"""Governance and ledger views → wire models (the only place the two vocabularies meet)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from tre import governance as g
from tre.privacy import mechanisms
from tre.privacy.ledger import AllowanceStatus, CapStatus, ReservationView
from tre.wire.accounts import UserOut
from tre.wire.budgets import AllowanceOut, Amount, CapOut, ReservationOut
from tre.wire.grant import Budget
from tre.wire.projects import ApprovalOut, ProjectOut, RequestOut
from tre.wire.tokens import TokenOut

# The δ at which budgets are also shown as ε (what people read; the ledger keeps ρ).
EPSILON_DELTA = 1e-6


@lru_cache(maxsize=4096)
def _epsilon(rho: float) -> float:
    return mechanisms.rho_to_epsilon(rho, EPSILON_DELTA)


def amount(b: Budget) -> Amount:
    """A budget with its ε at EPSILON_DELTA."""
    return Amount(rho=b.rho, delta=b.delta, epsilon=_epsilon(float(b.rho)))


def user_out(u: g.UserView) -> UserOut:
    """An account."""
    return UserOut(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        email=u.email,
        roles=sorted(r.value for r in u.roles),
        disabled=u.disabled,
        accredited_until=u.accredited_until,
        created_at=u.created_at,
    )


def request_out(r: g.RequestView) -> RequestOut:
    """One requested dataset and its decision."""
    a = r.approval
    return RequestOut(
        id=r.id,
        project_id=r.project_id,
        dataset=r.dataset,
        custodian_ids=sorted(r.custodian_ids),
        columns=list(r.columns),
        budget=r.budget,
        state=r.state.value,
        approval=None
        if a is None
        else ApprovalOut(
            approved=a.approved,
            reason=a.reason,
            decided_by=a.decided_by,
            decided_at=a.decided_at,
            columns=list(a.columns) if a.columns is not None else None,
            budget=a.budget,
            end_date=a.end_date,
            exact_outputs=a.exact_outputs,
            version=a.version,
        ),
    )


def project_out(p: g.ProjectView, today: date) -> ProjectOut:
    """A project with its effective status today."""
    return ProjectOut(
        id=p.id,
        title=p.title,
        lay_summary=p.lay_summary,
        purpose=p.purpose,
        public_benefit=p.public_benefit,
        legal_basis=p.legal_basis.value,
        legal_basis_detail=p.legal_basis_detail,
        exact_outputs=p.exact_outputs,
        start_date=p.start_date,
        requested_end_date=p.requested_end_date,
        end_date=p.end_date,
        state=p.state.value,
        status=p.status(today).value,
        lead_id=p.lead_id,
        member_ids=sorted(p.member_ids),
        requests=[request_out(r) for r in p.requests],
        created_at=p.created_at,
        ended_reason=p.ended_reason,
    )


def token_out(t: g.TokenView) -> TokenOut:
    """A token's public facts."""
    return TokenOut(
        id=t.id,
        user_id=t.user_id,
        project_id=t.project_id,
        label=t.label,
        created_at=t.created_at,
        expires_at=t.expires_at,
        revoked_at=t.revoked_at,
    )


def cap_out(c: CapStatus) -> CapOut:
    """A dataset's lifetime cap."""
    return CapOut(
        dataset=c.dataset,
        cap=amount(c.cap),
        spent=amount(c.committed),
        reserved=amount(c.reserved),
        remaining=amount(c.remaining),
    )


def allowance_out(a: AllowanceStatus, cap: CapStatus) -> AllowanceOut:
    """A project's allowance on a dataset, with what the dataset's cap has left."""
    return AllowanceOut(
        dataset=a.dataset,
        allowed=amount(a.allowed),
        spent=amount(a.committed),
        reserved=amount(a.reserved),
        remaining=amount(a.remaining),
        cap_remaining=amount(cap.remaining),
        valid_from=a.valid_from,
        valid_until=a.valid_until,
        closed=a.closed,
    )


def reservation_out(r: ReservationView) -> ReservationOut:
    """A reservation."""
    return ReservationOut(
        id=r.id,
        project_id=r.project_id,
        state=r.state.value,
        reserved=r.reserved,
        committed=r.committed,
        created_at=r.created_at,
        expires_at=r.expires_at,
        settled_at=r.settled_at,
    )
