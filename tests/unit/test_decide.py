"""decide(actor, action, resource): every permission of tre, as a table of cases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tre.errors import Forbidden
from tre.governance import (
    SYSTEM,
    Action,
    Actor,
    DatasetView,
    Decision,
    LegalBasis,
    OutputReviewTarget,
    ProjectState,
    ProjectView,
    RequestState,
    RequestView,
    Role,
    TokenView,
    UserView,
    decide,
    require,
)
from tre.governance.decide import Resource
from tre.wire.grant import Budget

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def person(uid: int, *roles: Role, until: date | None = None, disabled: bool = False) -> Actor:
    return Actor(
        user_id=uid,
        username=f"u{uid}",
        roles=frozenset(roles),
        accredited_until=until,
        disabled=disabled,
    )


ADMIN = person(1, Role.ADMIN)
CUST = person(2, Role.CUSTODIAN)
OTHER_CUST = person(3, Role.CUSTODIAN)
LEAD = person(4, Role.RESEARCHER, until=date(2026, 1, 1))
MEMBER = person(5, Role.RESEARCHER, until=date(2026, 1, 1))
OUTSIDER = person(6, Role.RESEARCHER, until=date(2026, 1, 1))
CHECKER = person(7, Role.OUTPUT_CHECKER)
EXPIRED = person(8, Role.RESEARCHER, until=date(2025, 5, 31))
UNACCREDITED = person(9, Role.RESEARCHER)
DISABLED_ADMIN = person(10, Role.ADMIN, disabled=True)
LAST_DAY = person(11, Role.RESEARCHER, until=date(2025, 6, 1))
CUST_MEMBER = person(12, Role.CUSTODIAN, Role.RESEARCHER, until=date(2026, 1, 1))
MEMBER_NOT_RESEARCHER = person(13, Role.OUTPUT_CHECKER)

HEALTH = DatasetView(id=1, name="health", title="Health", custodian_ids=frozenset({2}))


def request(members: frozenset[int] = frozenset({4, 5})) -> RequestView:
    return RequestView(
        id=1,
        project_id=1,
        dataset_id=1,
        dataset="health",
        custodian_ids=frozenset({2, 12}),
        columns=("cost",),
        budget=Budget(rho=Decimal(1)),
        state=RequestState.PENDING,
        project_member_ids=members,
    )


def project(
    state: ProjectState = ProjectState.ACTIVE,
    start: date = date(2025, 1, 1),
    end: date = date(2025, 12, 31),
    members: frozenset[int] = frozenset({4, 5, 8, 9, 11, 12, 13}),
) -> ProjectView:
    return ProjectView(
        id=1,
        title="t",
        lay_summary="l",
        purpose="p",
        public_benefit="b",
        legal_basis=LegalBasis.CONSENT,
        legal_basis_detail=None,
        exact_outputs=False,
        start_date=start,
        requested_end_date=end,
        end_date=end,
        state=state,
        lead_id=4,
        member_ids=members,
        requests=(request(members),),
        created_at=NOW,
    )


ACTIVE = project()
TOKEN = TokenView(
    id="t1",
    user_id=5,
    project_id=1,
    label="api",
    created_at=NOW,
    expires_at=NOW,
    revoked_at=None,
)
OUTPUT = OutputReviewTarget(project_id=1, author_id=5, project_member_ids=frozenset({4, 5}))


def user_view(a: Actor) -> UserView:
    return UserView(
        id=a.user_id,
        username=a.username,
        display_name=a.username,
        email=None,
        roles=a.roles,
        disabled=a.disabled,
        accredited_until=a.accredited_until,
        created_at=NOW,
    )


# (actor, action, resource, allowed, words the reason must contain)
CASES: list[tuple[str, Actor, Action, Resource, bool, str]] = [
    # accounts
    ("admin manages users", ADMIN, Action.MANAGE_USERS, SYSTEM, True, "admin"),
    ("admin changes another account", ADMIN, Action.MANAGE_USERS, user_view(LEAD), True, "admin"),
    (
        "admin never changes own account",
        ADMIN,
        Action.MANAGE_USERS,
        user_view(ADMIN),
        False,
        "another admin",
    ),
    ("custodian cannot manage users", CUST, Action.MANAGE_USERS, SYSTEM, False, "only an admin"),
    (
        "disabled admin is refused everything",
        DISABLED_ADMIN,
        Action.MANAGE_USERS,
        SYSTEM,
        False,
        "disabled",
    ),
    (
        "disabled admin cannot read audit",
        DISABLED_ADMIN,
        Action.READ_AUDIT,
        SYSTEM,
        False,
        "disabled",
    ),
    # datasets
    ("admin registers datasets", ADMIN, Action.REGISTER_DATASET, SYSTEM, True, "admin"),
    (
        "researcher cannot register datasets",
        LEAD,
        Action.REGISTER_DATASET,
        SYSTEM,
        False,
        "only an admin",
    ),
    ("admin manages custodians", ADMIN, Action.MANAGE_CUSTODIANS, HEALTH, True, "admin"),
    (
        "custodian cannot add custodians",
        CUST,
        Action.MANAGE_CUSTODIANS,
        HEALTH,
        False,
        "only an admin",
    ),
    ("custodian sets own dataset's cap", CUST, Action.SET_DATASET_CAP, HEALTH, True, "custodian"),
    (
        "other custodian cannot set the cap",
        OTHER_CUST,
        Action.SET_DATASET_CAP,
        HEALTH,
        False,
        "only a custodian of 'health'",
    ),
    ("admin cannot set a cap", ADMIN, Action.SET_DATASET_CAP, HEALTH, False, "only a custodian"),
    ("anyone lists datasets", OUTSIDER, Action.VIEW_DATASET, HEALTH, True, "every account"),
    # applying
    ("accredited researcher applies", LEAD, Action.APPLY, SYSTEM, True, "accredited"),
    ("accredited on its last day", LAST_DAY, Action.APPLY, SYSTEM, True, "accredited"),
    ("expired accreditation", EXPIRED, Action.APPLY, SYSTEM, False, "expired on 2025-05-31"),
    ("no accreditation", UNACCREDITED, Action.APPLY, SYSTEM, False, "no researcher accreditation"),
    ("custodian cannot apply", CUST, Action.APPLY, SYSTEM, False, "only researchers"),
    # viewing projects
    ("member views project", MEMBER, Action.VIEW_PROJECT, ACTIVE, True, "member"),
    ("custodian views project", CUST, Action.VIEW_PROJECT, ACTIVE, True, "custodian"),
    ("checker views project", CHECKER, Action.VIEW_PROJECT, ACTIVE, True, "output checker"),
    ("admin views project", ADMIN, Action.VIEW_PROJECT, ACTIVE, True, "admin"),
    (
        "outsider cannot view project",
        OUTSIDER,
        Action.VIEW_PROJECT,
        ACTIVE,
        False,
        "not a member of project 1",
    ),
    (
        "other custodian cannot view project",
        OTHER_CUST,
        Action.VIEW_PROJECT,
        ACTIVE,
        False,
        "not a member",
    ),
    # custodians' decisions
    ("custodian decides on own dataset", CUST, Action.DECIDE_REQUEST, request(), True, "custodian"),
    (
        "other custodian cannot decide",
        OTHER_CUST,
        Action.DECIDE_REQUEST,
        request(),
        False,
        "only a custodian of 'health'",
    ),
    (
        "admin cannot decide for a custodian",
        ADMIN,
        Action.DECIDE_REQUEST,
        request(),
        False,
        "only a custodian",
    ),
    (
        "custodian who is a member cannot decide",
        CUST_MEMBER,
        Action.DECIDE_REQUEST,
        request(frozenset({4, 12})),
        False,
        "member of",
    ),
    (
        "decide_request needs a request",
        CUST,
        Action.DECIDE_REQUEST,
        ACTIVE,
        False,
        "does not apply to ProjectView",
    ),
    # lifecycle transitions
    ("lead withdraws", LEAD, Action.WITHDRAW, ACTIVE, True, "lead"),
    ("member cannot withdraw", MEMBER, Action.WITHDRAW, ACTIVE, False, "only the project lead"),
    ("admin revokes", ADMIN, Action.REVOKE_PROJECT, ACTIVE, True, "admin"),
    ("custodian revokes", CUST, Action.REVOKE_PROJECT, ACTIVE, True, "custodian"),
    (
        "other custodian cannot revoke",
        OTHER_CUST,
        Action.REVOKE_PROJECT,
        ACTIVE,
        False,
        "only an admin or a custodian",
    ),
    ("lead cannot revoke", LEAD, Action.REVOKE_PROJECT, ACTIVE, False, "only an admin"),
    ("lead closes", LEAD, Action.CLOSE_PROJECT, ACTIVE, True, "lead"),
    ("member cannot close", MEMBER, Action.CLOSE_PROJECT, ACTIVE, False, "close the project"),
    ("lead manages members", LEAD, Action.MANAGE_MEMBERS, ACTIVE, True, "lead"),
    ("admin manages members", ADMIN, Action.MANAGE_MEMBERS, ACTIVE, True, "admin"),
    (
        "member cannot manage members",
        MEMBER,
        Action.MANAGE_MEMBERS,
        ACTIVE,
        False,
        "change its members",
    ),
    # using a project: checked on every request
    ("member uses an active project", MEMBER, Action.USE_PROJECT, ACTIVE, True, "active"),
    (
        "member on the project's last day",
        MEMBER,
        Action.USE_PROJECT,
        project(end=date(2025, 6, 1)),
        True,
        "active",
    ),
    (
        "project past its end date",
        MEMBER,
        Action.USE_PROJECT,
        project(end=date(2025, 5, 31)),
        False,
        "ended on 2025-05-31",
    ),
    (
        "project not started",
        MEMBER,
        Action.USE_PROJECT,
        project(start=date(2025, 7, 1)),
        False,
        "starts on 2025-07-01",
    ),
    (
        "project waiting for approval",
        MEMBER,
        Action.USE_PROJECT,
        project(ProjectState.SUBMITTED),
        False,
        "waiting for custodians",
    ),
    (
        "revoked project",
        MEMBER,
        Action.USE_PROJECT,
        project(ProjectState.REVOKED),
        False,
        "is revoked",
    ),
    (
        "closed project",
        MEMBER,
        Action.USE_PROJECT,
        project(ProjectState.CLOSED),
        False,
        "is closed",
    ),
    (
        "rejected application",
        MEMBER,
        Action.USE_PROJECT,
        project(ProjectState.REJECTED),
        False,
        "is rejected",
    ),
    (
        "member's accreditation expired",
        EXPIRED,
        Action.USE_PROJECT,
        ACTIVE,
        False,
        "expired on 2025-05-31",
    ),
    (
        "member never accredited",
        UNACCREDITED,
        Action.USE_PROJECT,
        ACTIVE,
        False,
        "no researcher accreditation",
    ),
    ("member accredited to today", LAST_DAY, Action.USE_PROJECT, ACTIVE, True, "active"),
    ("non-member", OUTSIDER, Action.USE_PROJECT, ACTIVE, False, "not a member of project 1"),
    (
        "member who is not a researcher",
        MEMBER_NOT_RESEARCHER,
        Action.USE_PROJECT,
        ACTIVE,
        False,
        "only researchers",
    ),
    (
        "removed member",
        MEMBER,
        Action.USE_PROJECT,
        project(members=frozenset({4})),
        False,
        "not a member",
    ),
    ("admin does not use projects", ADMIN, Action.USE_PROJECT, ACTIVE, False, "not a member"),
    ("member gets a token", MEMBER, Action.ISSUE_TOKEN, ACTIVE, True, "active"),
    (
        "no token for an ended project",
        MEMBER,
        Action.ISSUE_TOKEN,
        project(end=date(2025, 5, 1)),
        False,
        "ended on",
    ),
    (
        "use_project needs a project",
        MEMBER,
        Action.USE_PROJECT,
        SYSTEM,
        False,
        "does not apply to System",
    ),
    # tokens
    ("owner revokes own token", MEMBER, Action.REVOKE_TOKEN, TOKEN, True, "owner"),
    ("admin revokes any token", ADMIN, Action.REVOKE_TOKEN, TOKEN, True, "admin"),
    ("someone else's token", LEAD, Action.REVOKE_TOKEN, TOKEN, False, "owner or an admin"),
    # audit
    ("admin reads audit", ADMIN, Action.READ_AUDIT, SYSTEM, True, "admin"),
    ("custodian cannot read audit", CUST, Action.READ_AUDIT, SYSTEM, False, "only an admin"),
    ("admin charges budget by hand", ADMIN, Action.CHARGE_BUDGET, SYSTEM, True, "admin"),
    ("custodian cannot charge budget", CUST, Action.CHARGE_BUDGET, SYSTEM, False, "only an admin"),
    ("researcher cannot charge budget", LEAD, Action.CHARGE_BUDGET, SYSTEM, False, "only an admin"),
    # output review
    ("independent checker reviews", CHECKER, Action.REVIEW_OUTPUT, OUTPUT, True, "independent"),
    (
        "author never reviews",
        person(5, Role.OUTPUT_CHECKER, Role.RESEARCHER),
        Action.REVIEW_OUTPUT,
        OUTPUT,
        False,
        "their own",
    ),
    (
        "project member never reviews",
        person(4, Role.OUTPUT_CHECKER),
        Action.REVIEW_OUTPUT,
        OUTPUT,
        False,
        "own project",
    ),
    (
        "researcher cannot review",
        OUTSIDER,
        Action.REVIEW_OUTPUT,
        OUTPUT,
        False,
        "only output checkers",
    ),
    ("member downloads outputs", MEMBER, Action.DOWNLOAD_OUTPUT, ACTIVE, True, "project member"),
    ("lead downloads outputs", LEAD, Action.DOWNLOAD_OUTPUT, ACTIVE, True, "project member"),
    (
        "outsider cannot download outputs",
        OUTSIDER,
        Action.DOWNLOAD_OUTPUT,
        ACTIVE,
        False,
        "only members of project 1",
    ),
    (
        "checker is not a member: no download",
        CHECKER,
        Action.DOWNLOAD_OUTPUT,
        ACTIVE,
        False,
        "only members",
    ),
    (
        "admin is not a member: no download",
        ADMIN,
        Action.DOWNLOAD_OUTPUT,
        ACTIVE,
        False,
        "only members",
    ),
    (
        "download needs a project",
        MEMBER,
        Action.DOWNLOAD_OUTPUT,
        SYSTEM,
        False,
        "does not apply to System",
    ),
    ("admin reassigns reviews", ADMIN, Action.REASSIGN_REVIEW, SYSTEM, True, "admin"),
    ("checker cannot reassign", CHECKER, Action.REASSIGN_REVIEW, SYSTEM, False, "only an admin"),
]


@pytest.mark.parametrize(
    ("actor", "action", "resource", "allowed", "reason_part"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide_table(
    actor: Actor, action: Action, resource: Resource, allowed: bool, reason_part: str
) -> None:
    decision = decide(actor, action, resource, now=NOW)
    assert isinstance(decision, Decision)
    assert decision.allowed is allowed
    assert reason_part in decision.reason
    assert decision.reason  # every decision, allowing or not, says why


def test_every_action_appears_in_the_table() -> None:
    assert {c[2] for c in CASES} == set(Action)


def test_require_raises_forbidden_with_the_reason() -> None:
    with pytest.raises(Forbidden) as err:
        require(decide(OUTSIDER, Action.USE_PROJECT, ACTIVE, now=NOW))
    assert err.value.status == 403
    assert "not a member of project 1" in err.value.message
    require(decide(MEMBER, Action.USE_PROJECT, ACTIVE, now=NOW))  # allowed: no exception


def test_project_status_follows_the_calendar() -> None:
    p = project(start=date(2025, 2, 1), end=date(2025, 3, 31))
    assert p.status(date(2025, 1, 31)).value == "not_started"
    assert p.status(date(2025, 2, 1)).value == "active"
    assert p.status(date(2025, 3, 31)).value == "active"
    assert p.status(date(2025, 4, 1)).value == "expired"
    assert project(ProjectState.REVOKED).status(date(2025, 3, 1)).value == "revoked"
