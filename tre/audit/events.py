"""The audit events of governance and the budget ledger: one typed class per event.

Other packages define their own events the same way (subclass `AuditEvent`, set
`event_type` and `schema_version`) in their own modules; `record()` accepts any of them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from tre.audit.payload import AuditEvent, AuditPayload

# --- people -------------------------------------------------------------------------------


class UserCreated(AuditEvent):
    """An account was created."""

    event_type = "user.created"
    user_id: int
    username: str
    roles: tuple[str, ...]
    accredited_until: date | None


class UserRolesSet(AuditEvent):
    """An account's roles were replaced."""

    event_type = "user.roles_set"
    user_id: int
    roles: tuple[str, ...]


class UserDisabled(AuditEvent):
    """An account was disabled; every credential of it stops working."""

    event_type = "user.disabled"
    user_id: int
    reason: str


class UserEnabled(AuditEvent):
    """A disabled account was enabled again."""

    event_type = "user.enabled"
    user_id: int


class AccreditationSet(AuditEvent):
    """A researcher's accreditation end date was set (None: removed)."""

    event_type = "user.accreditation_set"
    user_id: int
    accredited_until: date | None


class PasswordChanged(AuditEvent):
    """An account's console password was set (the password itself is never recorded)."""

    event_type = "user.password_changed"
    user_id: int


# --- datasets -----------------------------------------------------------------------------


class DatasetRegistered(AuditEvent):
    """A catalogue dataset was registered for governance, with its custodians."""

    event_type = "dataset.registered"
    dataset_id: int
    dataset: str
    custodian_ids: tuple[int, ...]


class CustodianAdded(AuditEvent):
    """A custodian was added to a dataset."""

    event_type = "dataset.custodian_added"
    dataset_id: int
    user_id: int


class CustodianRemoved(AuditEvent):
    """A custodian was removed from a dataset."""

    event_type = "dataset.custodian_removed"
    dataset_id: int
    user_id: int


# --- projects -----------------------------------------------------------------------------


class ProjectApplied(AuditEvent):
    """A project application was submitted."""

    event_type = "project.applied"
    project_id: int
    title: str
    legal_basis: str
    datasets: tuple[str, ...]
    member_ids: tuple[int, ...]
    exact_outputs: bool
    start_date: date
    end_date: date


class RequestApproved(AuditEvent):
    """A custodian approved one requested dataset (possibly narrowed)."""

    event_type = "project.request_approved"
    project_id: int
    request_id: int
    dataset: str
    columns: tuple[str, ...]
    rho: Decimal
    delta: Decimal
    end_date: date
    exact_outputs: bool
    reason: str


class RequestRejected(AuditEvent):
    """A custodian rejected one requested dataset (which rejects the application)."""

    event_type = "project.request_rejected"
    project_id: int
    request_id: int
    dataset: str
    reason: str


class ProjectActivated(AuditEvent):
    """Every requested dataset was approved: the project is active."""

    event_type = "project.activated"
    project_id: int
    start_date: date
    end_date: date


class ProjectEnded(AuditEvent):
    """A project left the active or submitted state (rejected, withdrawn, revoked, closed)."""

    event_type = "project.ended"
    project_id: int
    state: str
    reason: str


class MemberAdded(AuditEvent):
    """A researcher joined a project."""

    event_type = "project.member_added"
    project_id: int
    user_id: int


class MemberRemoved(AuditEvent):
    """A researcher left a project."""

    event_type = "project.member_removed"
    project_id: int
    user_id: int
    reason: str


# --- tokens -------------------------------------------------------------------------------


class TokenIssued(AuditEvent):
    """An API token was issued (its public id only; the token is never recorded)."""

    event_type = "token.issued"
    token_id: str
    user_id: int
    project_id: int
    expires_at: datetime


class TokenRevoked(AuditEvent):
    """An API token was revoked."""

    event_type = "token.revoked"
    token_id: str
    reason: str


# --- budget ledger ------------------------------------------------------------------------


class BudgetCharge(AuditPayload):
    """An amount of privacy budget on one dataset."""

    dataset: str
    rho: Decimal
    delta: Decimal


class DatasetCapSet(AuditEvent):
    """A dataset's lifetime privacy-budget cap across all projects was set."""

    event_type = "budget.cap_set"
    dataset: str
    rho: Decimal
    delta: Decimal


class AllowanceOpened(AuditEvent):
    """A project's budget on a dataset was opened (on activation) or changed."""

    event_type = "budget.allowance_opened"
    project_id: int
    dataset: str
    rho: Decimal
    delta: Decimal
    valid_from: date
    valid_until: date


class AllowancesClosed(AuditEvent):
    """A project's allowances were closed (revoked or closed project)."""

    event_type = "budget.allowances_closed"
    project_id: int
    datasets: tuple[str, ...]
    reason: str


class BudgetReserved(AuditEvent):
    """Budget was reserved for a query about to run."""

    event_type = "budget.reserved"
    reservation_id: str
    project_id: int
    charges: tuple[BudgetCharge, ...]
    expires_at: datetime
    purpose: str | None


class BudgetCommitted(AuditEvent):
    """A reservation was committed with the actual cost (at most the reserved amount)."""

    event_type = "budget.committed"
    reservation_id: str
    project_id: int
    charges: tuple[BudgetCharge, ...]


class BudgetReleased(AuditEvent):
    """A reservation was given back: released, expired, or its project closed."""

    event_type = "budget.released"
    reservation_id: str
    project_id: int
    charges: tuple[BudgetCharge, ...]
    cause: str
