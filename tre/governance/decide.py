"""The one permission function: `decide(actor, action, resource, now=...) -> Decision`.

Every "may this person do this?" in tre is answered here, as data: pure over frozen views
(no database, no clock of its own), so it is tested as a table of cases
(tests/unit/test_decide.py). State transitions ("approve twice", "add a member to a closed
project") are not permissions: the service functions refuse those with Conflict after
`decide` allowed the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tre.errors import Forbidden
from tre.governance.types import (
    Actor,
    DatasetView,
    OutputReviewTarget,
    ProjectView,
    RequestView,
    Role,
    Status,
    TokenView,
    UserView,
)


class Action(StrEnum):
    """Everything a person can ask governance for."""

    MANAGE_USERS = "manage_users"  # create accounts, set roles/accreditation, disable/enable
    REGISTER_DATASET = "register_dataset"
    MANAGE_CUSTODIANS = "manage_custodians"
    SET_DATASET_CAP = "set_dataset_cap"
    VIEW_DATASET = "view_dataset"
    APPLY = "apply"
    VIEW_PROJECT = "view_project"
    DECIDE_REQUEST = "decide_request"
    WITHDRAW = "withdraw"
    REVOKE_PROJECT = "revoke_project"
    CLOSE_PROJECT = "close_project"
    MANAGE_MEMBERS = "manage_members"
    USE_PROJECT = "use_project"  # query, reserve budget, request outputs
    ISSUE_TOKEN = "issue_token"  # noqa: S105 - an action name
    REVOKE_TOKEN = "revoke_token"  # noqa: S105 - an action name
    READ_AUDIT = "read_audit"
    CHARGE_BUDGET = "charge_budget"  # manual ledger charges/settlements (audited), not queries
    REVIEW_OUTPUT = "review_output"  # review, decide on and release an output request
    DOWNLOAD_OUTPUT = "download_output"  # a released output bundle of one's own project
    REASSIGN_REVIEW = "reassign_review"  # move an open output review to another checker


class System:
    """The resource of actions that concern the whole TRE (creating users, applying…)."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = System()

Resource = (
    System | UserView | DatasetView | ProjectView | RequestView | TokenView | OutputReviewTarget
)


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and why (a reason a person can act on)."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def allow(reason: str) -> Decision:
    """An allowing decision."""
    return Decision(True, reason)


def deny(reason: str) -> Decision:
    """A refusing decision."""
    return Decision(False, reason)


def require(decision: Decision) -> None:
    """Raise Forbidden with the decision's reason unless it allows."""
    if not decision.allowed:
        raise Forbidden(decision.reason)


def _wrong_resource(action: Action, resource: Resource) -> Decision:
    return deny(f"{action.value} does not apply to {type(resource).__name__}")


def decide(actor: Actor, action: Action, resource: Resource, *, now: datetime) -> Decision:
    """May `actor` do `action` on `resource` at `now`? Deny by default, always with a reason."""
    if actor.disabled:
        return deny(f"account {actor.username!r} is disabled")
    today = now.date()
    admin = actor.has(Role.ADMIN)

    match action:
        case Action.MANAGE_USERS:
            if not admin:
                return deny("only an admin can manage accounts")
            if isinstance(resource, UserView) and resource.id == actor.user_id:
                return deny("admins cannot change their own account; ask another admin")
            return allow("admin")

        case Action.REGISTER_DATASET:
            return allow("admin") if admin else deny("only an admin can register datasets")

        case Action.MANAGE_CUSTODIANS:
            if not isinstance(resource, DatasetView):
                return _wrong_resource(action, resource)
            return allow("admin") if admin else deny("only an admin can change custodians")

        case Action.SET_DATASET_CAP:
            if not isinstance(resource, DatasetView):
                return _wrong_resource(action, resource)
            if actor.user_id in resource.custodian_ids and actor.has(Role.CUSTODIAN):
                return allow("custodian of the dataset")
            return deny(f"only a custodian of {resource.name!r} can set its lifetime budget")

        case Action.VIEW_DATASET:
            return allow("datasets are listed for every account")

        case Action.APPLY:
            if not actor.has(Role.RESEARCHER):
                return deny("only researchers can apply for projects")
            if not actor.accredited_on(today):
                return _accreditation_denial(actor)
            return allow("accredited researcher")

        case Action.VIEW_PROJECT:
            if not isinstance(resource, ProjectView):
                return _wrong_resource(action, resource)
            if admin:
                return allow("admin")
            if actor.user_id in resource.member_ids or actor.user_id == resource.lead_id:
                return allow("project member")
            if actor.user_id in resource.custodian_ids and actor.has(Role.CUSTODIAN):
                return allow("custodian of a requested dataset")
            if actor.has(Role.OUTPUT_CHECKER):
                return allow("output checker")
            return deny(f"you are not a member of project {resource.id}")

        case Action.DECIDE_REQUEST:
            if not isinstance(resource, RequestView):
                return _wrong_resource(action, resource)
            if not (actor.has(Role.CUSTODIAN) and actor.user_id in resource.custodian_ids):
                return deny(f"only a custodian of {resource.dataset!r} can decide on this request")
            if actor.user_id in resource.project_member_ids:
                return deny("custodians cannot decide on a project they are a member of")
            return allow("custodian of the dataset")

        case Action.WITHDRAW:
            if not isinstance(resource, ProjectView):
                return _wrong_resource(action, resource)
            if actor.user_id == resource.lead_id:
                return allow("project lead")
            return deny("only the project lead can withdraw an application")

        case Action.REVOKE_PROJECT:
            if not isinstance(resource, ProjectView):
                return _wrong_resource(action, resource)
            if admin:
                return allow("admin")
            if actor.has(Role.CUSTODIAN) and actor.user_id in resource.custodian_ids:
                return allow("custodian of a dataset the project uses")
            return deny("only an admin or a custodian of the project's datasets can revoke it")

        case Action.CLOSE_PROJECT | Action.MANAGE_MEMBERS:
            if not isinstance(resource, ProjectView):
                return _wrong_resource(action, resource)
            if admin:
                return allow("admin")
            if actor.user_id == resource.lead_id:
                return allow("project lead")
            return deny(f"only the project lead or an admin can {_verb(action)}")

        case Action.USE_PROJECT | Action.ISSUE_TOKEN:
            if not isinstance(resource, ProjectView):
                return _wrong_resource(action, resource)
            return _may_use(actor, resource, now)

        case Action.REVOKE_TOKEN:
            if not isinstance(resource, TokenView):
                return _wrong_resource(action, resource)
            if actor.user_id == resource.user_id:
                return allow("token owner")
            return allow("admin") if admin else deny("only the token's owner or an admin")

        case Action.READ_AUDIT:
            return allow("admin") if admin else deny("only an admin can read the audit log")

        case Action.CHARGE_BUDGET:
            return allow("admin") if admin else deny("only an admin can charge budget by hand")

        case Action.REVIEW_OUTPUT:
            if not isinstance(resource, OutputReviewTarget):
                return _wrong_resource(action, resource)
            if not actor.has(Role.OUTPUT_CHECKER):
                return deny("only output checkers can review outputs")
            if actor.user_id == resource.author_id:
                return deny("nobody reviews their own output request")
            if actor.user_id in resource.project_member_ids:
                return deny("output checkers cannot review outputs of their own project")
            return allow("independent output checker")

        case Action.DOWNLOAD_OUTPUT:
            if not isinstance(resource, ProjectView):
                return _wrong_resource(action, resource)
            if actor.user_id in resource.member_ids or actor.user_id == resource.lead_id:
                return allow("project member")
            return deny(f"only members of project {resource.id} can download its outputs")

        case Action.REASSIGN_REVIEW:
            return allow("admin") if admin else deny("only an admin can reassign output reviews")

    return deny(f"unknown action {action!r}")  # pragma: no cover - the match is exhaustive


def _verb(action: Action) -> str:
    return "close the project" if action is Action.CLOSE_PROJECT else "change its members"


def _accreditation_denial(actor: Actor) -> Decision:
    if actor.accredited_until is None:
        return deny(f"{actor.username!r} has no researcher accreditation")
    return deny(
        f"{actor.username!r}'s researcher accreditation expired on {actor.accredited_until}"
    )


def _may_use(actor: Actor, project: ProjectView, now: datetime) -> Decision:
    """Lifecycle checks made on every request: membership, accreditation, project dates."""
    today = now.date()
    if actor.user_id not in project.member_ids:
        return deny(f"you are not a member of project {project.id}")
    if not actor.has(Role.RESEARCHER):
        return deny("only researchers can use a project's data")
    if not actor.accredited_on(today):
        return _accreditation_denial(actor)
    status = project.status(today)
    match status:
        case Status.ACTIVE:
            return allow("member of an active project")
        case Status.SUBMITTED:
            return deny(f"project {project.id} is waiting for custodians' approval")
        case Status.NOT_STARTED:
            return deny(f"project {project.id} starts on {project.start_date}")
        case Status.EXPIRED:
            return deny(f"project {project.id} ended on {project.end_date}")
        case _:
            return deny(f"project {project.id} is {status.value}")
