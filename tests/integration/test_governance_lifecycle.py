"""The project lifecycle, enforced by the machine, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.governance_support import (
    LEDGER,
    T0,
    World,
    active_project,
    application,
    later,
    seed,
)
from tre import governance as g
from tre.audit import head, read_events, verify
from tre.db import Database
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from tre.governance.models import ApiToken, User
from tre.wire.grant import Budget, Mode

pytest_plugins = ("tests.governance_fixtures",)  # the `db` fixture on SQLite and PG


@pytest.fixture
def w(db: Database) -> World:
    return seed(db)


def test_project_is_active_only_when_every_requested_dataset_is_approved(
    db: Database, w: World
) -> None:
    with db.transaction() as s:
        p = g.apply(s, w.alice, application(datasets=("health", "education")), now=T0)
    assert p.state is g.ProjectState.SUBMITTED
    assert {r.state for r in p.requests} == {g.RequestState.PENDING}

    with db.transaction() as s:
        p = g.approve_request(s, w.custodian, p.id, "health", reason="fine", budget=LEDGER, now=T0)
    assert p.state is g.ProjectState.SUBMITTED  # education still pending
    with db.transaction() as s, pytest.raises(Forbidden, match="waiting for custodians"):
        g.issue_token(s, w.alice, p.id, now=T0)

    with db.transaction() as s:
        p = g.approve_request(
            s,
            w.custodian2,
            p.id,
            "education",
            reason="fine, until the summer",
            end_date=date(2025, 8, 31),
            budget=LEDGER,
            now=T0,
        )
    assert p.state is g.ProjectState.ACTIVE
    assert p.end_date == date(2025, 8, 31)  # the earliest approved end date
    with db.read() as s:
        for ds in ("health", "education"):
            status = LEDGER.allowance(s, p.id, ds)
            assert status.valid_until == date(2025, 8, 31)
            assert status.allowed == Budget(rho=Decimal(1), delta=Decimal("1e-7"))
        assert verify(s).ok


def test_approval_can_narrow_columns_budget_end_date_and_exact_outputs(
    db: Database, w: World
) -> None:
    p = active_project(
        db,
        w,
        exact=True,
        columns=["cost", "sex"],
        allowance=Budget(rho=Decimal("0.25"), delta=Decimal("1e-8")),
        end_date=date(2025, 6, 30),
        exact_outputs=False,
        version=2,
    )
    with db.read() as s:
        grant = g.grant_for(s, w.alice, p.id, budget=LEDGER, now=T0)
    (health,) = grant.datasets
    assert health.columns == ("cost", "sex")
    assert health.allowance == Budget(rho=Decimal("0.25"), delta=Decimal("1e-8"))
    assert health.remaining == health.allowance
    assert health.modes == (Mode.DP,)
    assert health.version == 2
    assert grant.end_date == date(2025, 6, 30)
    assert grant.allows_column("health", "cost")
    assert not grant.allows_column("health", "region")
    with pytest.raises(Forbidden, match="education"):
        grant.dataset("education")


def test_exact_outputs_approved_give_the_sdc_mode(db: Database, w: World) -> None:
    p = active_project(db, w, exact=True)
    with db.read() as s:
        grant = g.grant_for(s, w.alice, p.id, budget=LEDGER, now=T0)
    assert grant.dataset("health").modes == (Mode.DP, Mode.SDC)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"columns": ["cost", "nhs_number"]}, "not requested"),
        ({"columns": []}, "non-empty subset"),
        ({"allowance": Budget(rho=Decimal(2))}, "more than the requested"),
        ({"end_date": date(2026, 1, 1)}, "must lie between"),
        ({"end_date": date(2025, 2, 1)}, "must lie between"),
        ({"exact_outputs": True}, "exact outputs were not requested"),
        ({"reason": "  "}, "reason is required"),
    ],
)
def test_an_approval_cannot_grant_more_than_was_asked(
    db: Database, w: World, overrides: dict[str, object], message: str
) -> None:
    with db.transaction() as s:
        p = g.apply(s, w.alice, application(), now=T0)
        seq = head(s)[0]
    kwargs: dict[str, object] = {"reason": "ok", **overrides}
    with pytest.raises(InvalidInput, match=message), db.transaction() as s:
        g.approve_request(
            s,
            w.custodian,
            p.id,
            "health",
            budget=LEDGER,
            now=T0,
            **kwargs,  # type: ignore[arg-type]
        )
    with db.read() as s:
        assert g.get_project(s, w.alice, p.id, now=T0).state is g.ProjectState.SUBMITTED
        assert head(s)[0] == seq  # the refused approval left nothing behind


def test_impossible_transitions_are_conflicts_with_the_reason(db: Database, w: World) -> None:
    p = active_project(db, w)
    with pytest.raises(Conflict, match="only submitted applications"), db.transaction() as s:
        g.approve_request(s, w.custodian, p.id, "health", reason="again", budget=LEDGER, now=T0)

    with db.transaction() as s:
        p2 = g.apply(s, w.alice, application(datasets=("health", "education")), now=T0)
        g.approve_request(s, w.custodian, p2.id, "health", reason="ok", budget=LEDGER, now=T0)
    with db.transaction() as s:
        p2 = g.reject_request(
            s, w.custodian2, p2.id, "education", reason="no legal basis for pupils", now=T0
        )
    assert p2.state is g.ProjectState.REJECTED
    assert "no legal basis" in (p2.ended_reason or "")
    with pytest.raises(Conflict, match="rejected"), db.transaction() as s:
        g.approve_request(
            s, w.custodian2, p2.id, "education", reason="changed my mind", budget=LEDGER, now=T0
        )
    with pytest.raises(Conflict, match="cannot withdraw"), db.transaction() as s:
        g.withdraw(s, w.alice, p2.id, reason="too late", now=T0)

    with db.transaction() as s:
        g.close_project(s, w.alice, p.id, reason="finished", budget=LEDGER, now=T0)
    with pytest.raises(Conflict, match="closed"), db.transaction() as s:
        g.add_member(s, w.alice, p.id, w.bob.user_id, now=T0)
    with pytest.raises(Conflict, match="closed"), db.transaction() as s:
        g.close_project(s, w.alice, p.id, reason="twice", budget=LEDGER, now=T0)
    with pytest.raises(Conflict, match="closed"), db.transaction() as s:
        g.revoke_project(s, w.admin, p.id, reason="late", budget=LEDGER, now=T0)


def test_a_request_is_decided_only_once(db: Database, w: World) -> None:
    with db.transaction() as s:
        p = g.apply(s, w.alice, application(datasets=("health", "education")), now=T0)
        g.approve_request(s, w.custodian, p.id, "health", reason="ok", budget=LEDGER, now=T0)
    with pytest.raises(Conflict, match="already approved"), db.transaction() as s:
        g.approve_request(s, w.custodian, p.id, "health", reason="ok", budget=LEDGER, now=T0)
    with pytest.raises(Conflict, match="already approved"), db.transaction() as s:
        g.reject_request(s, w.custodian, p.id, "health", reason="no", now=T0)


def test_no_right_is_forbidden_with_the_reason(db: Database, w: World) -> None:
    with db.transaction() as s:
        p = g.apply(s, w.alice, application(members=(w.bob.user_id,)), now=T0)
    with pytest.raises(Forbidden, match="only a custodian of 'health'"), db.transaction() as s:
        g.approve_request(s, w.custodian2, p.id, "health", reason="ok", budget=LEDGER, now=T0)
    with pytest.raises(Forbidden, match="only researchers"), db.transaction() as s:
        g.apply(s, w.custodian, application(), now=T0)
    with pytest.raises(Forbidden, match="no researcher accreditation"), db.transaction() as s:
        g.apply(s, w.carol, application(), now=T0)
    with pytest.raises(Forbidden, match="only the project lead"), db.transaction() as s:
        g.withdraw(s, w.bob, p.id, reason="not mine", now=T0)
    with pytest.raises(Forbidden, match="not a member"), db.read() as s:
        g.get_project(s, w.checker.model_copy(update={"roles": frozenset()}), p.id, now=T0)
    with pytest.raises(NotFound), db.read() as s:
        g.get_project(s, w.admin, 999, now=T0)


def test_members_must_be_accredited_researchers(db: Database, w: World) -> None:
    with (
        pytest.raises(Conflict, match="no current researcher accreditation"),
        db.transaction() as s,
    ):
        g.apply(s, w.alice, application(members=(w.carol.user_id,)), now=T0)
    with pytest.raises(Conflict, match="not an enabled researcher"), db.transaction() as s:
        g.apply(s, w.alice, application(members=(w.checker.user_id,)), now=T0)
    p = active_project(db, w)
    with pytest.raises(Conflict, match="accreditation"), db.transaction() as s:
        g.add_member(s, w.alice, p.id, w.carol.user_id, now=T0)
    with db.transaction() as s:
        p = g.add_member(s, w.alice, p.id, w.bob.user_id, now=T0)
    assert w.bob.user_id in p.member_ids
    with pytest.raises(Conflict, match="already a member"), db.transaction() as s:
        g.add_member(s, w.alice, p.id, w.bob.user_id, now=T0)
    with pytest.raises(Conflict, match="lead cannot be removed"), db.transaction() as s:
        g.remove_member(s, w.admin, p.id, w.alice.user_id, reason="x", now=T0)


def test_access_ends_on_every_request_not_only_at_login(db: Database, w: World) -> None:
    p = active_project(db, w, members=(w.bob.user_id,), end_date=date(2025, 9, 30))
    with db.transaction() as s:
        alice_tok = g.issue_token(s, w.alice, p.id, now=T0, ttl=timedelta(days=30))
        bob_tok = g.issue_token(s, w.bob, p.id, now=T0, ttl=timedelta(days=30))
    with db.read() as s:
        ctx = g.authenticate(s, alice_tok.raw, now=T0)
        assert ctx.actor.user_id == w.alice.user_id
        assert ctx.project.id == p.id
        assert g.authenticate(s, bob_tok.raw, now=T0).actor.username == "bob"

    # Bob's accreditation runs to 2025-06-30: his token (valid 30 days) stops working after.
    tok_later = later(days=119)  # 2025-06-30
    with db.transaction() as s:
        bob_tok2 = g.issue_token(s, w.bob, p.id, now=tok_later, ttl=timedelta(days=2))
    with db.read() as s:
        assert g.authenticate(s, bob_tok2.raw, now=tok_later).actor.username == "bob"
        with pytest.raises(Forbidden, match="expired on 2025-06-30"):
            g.authenticate(s, bob_tok2.raw, now=later(days=120))

    # Removing a member ends their access at once.
    with db.transaction() as s:
        g.remove_member(s, w.alice, p.id, w.bob.user_id, reason="left the team", now=T0)
    with db.read() as s, pytest.raises(Forbidden, match="not a member"):
        g.authenticate(s, bob_tok.raw, now=T0)

    # The project's end date ends access even though the token has not expired.
    with db.transaction() as s:
        late_tok = g.issue_token(s, w.alice, p.id, now=later(days=200), ttl=timedelta(days=30))
    with db.read() as s:
        g.authenticate(s, late_tok.raw, now=later(days=210))  # 2025-09-29
        with pytest.raises(Forbidden, match="ended on 2025-09-30"):
            g.authenticate(s, late_tok.raw, now=later(days=212))

    # Disabling the account: the token no longer authenticates.
    with db.transaction() as s:
        g.disable_user(s, w.admin, w.alice.user_id, reason="left the organisation", now=T0)
    with db.read() as s, pytest.raises(Unauthenticated, match="disabled"):
        g.authenticate(s, alice_tok.raw, now=T0)


def test_revocation_ends_access_and_closes_the_budget(db: Database, w: World) -> None:
    p = active_project(db, w)
    with db.transaction() as s:
        tok = g.issue_token(s, w.alice, p.id, now=T0)
        rid = LEDGER.reserve(
            s, p.id, {"health": Budget(rho=Decimal("0.1"))}, actor="user:4", now=T0
        ).id
    with db.transaction() as s:
        p = g.revoke_project(
            s, w.custodian, p.id, reason="breach of conditions", budget=LEDGER, now=T0
        )
    assert p.state is g.ProjectState.REVOKED
    with db.read() as s:
        with pytest.raises(Forbidden, match="is revoked"):
            g.authenticate(s, tok.raw, now=T0)
        assert LEDGER.allowance(s, p.id, "health").closed
        assert LEDGER.allowance(s, p.id, "health").reserved == Budget.zero()
        assert LEDGER.reservation(s, rid).state.value == "released"
    with pytest.raises(Conflict, match="closed"), db.transaction() as s:
        LEDGER.reserve(s, p.id, {"health": Budget(rho=Decimal("0.1"))}, actor="user:4", now=T0)
    with pytest.raises(Conflict, match="already released"), db.transaction() as s:
        LEDGER.commit(s, rid, actor="user:4", now=T0)


def test_reserving_on_an_expired_project_is_a_conflict(db: Database, w: World) -> None:
    p = active_project(db, w, end_date=date(2025, 4, 30))
    with db.transaction() as s:
        LEDGER.reserve(s, p.id, {"health": Budget(rho=Decimal("0.1"))}, actor="user:4", now=T0)
    with pytest.raises(Conflict, match="ended on 2025-04-30") as err, db.transaction() as s:
        LEDGER.reserve(
            s, p.id, {"health": Budget(rho=Decimal("0.1"))}, actor="user:4", now=later(days=60)
        )
    assert err.value.status == 409
    assert err.value.reason == "project_expired"


def test_unknown_expired_and_revoked_tokens_are_unauthenticated(db: Database, w: World) -> None:
    p = active_project(db, w)
    with db.transaction() as s:
        tok = g.issue_token(s, w.alice, p.id, now=T0, ttl=timedelta(hours=1))
        other = g.issue_token(s, w.alice, p.id, now=T0)
    with db.read() as s:
        with pytest.raises(Unauthenticated, match="unknown"):
            g.authenticate(s, tok.raw[:-2] + "xx", now=T0)
        with pytest.raises(Unauthenticated, match="not a tre API token"):
            g.authenticate(s, "Bearer something", now=T0)
        with pytest.raises(Unauthenticated, match="expired"):
            g.authenticate(s, tok.raw, now=later(hours=1))
    with pytest.raises(Forbidden, match="owner or an admin"), db.transaction() as s:
        g.revoke_token(s, w.bob, other.token.id, reason="not mine", now=T0)
    with db.transaction() as s:
        g.revoke_token(s, w.alice, other.token.id, reason="laptop lost", now=T0)
    with db.read() as s, pytest.raises(Unauthenticated, match="revoked"):
        g.authenticate(s, other.raw, now=T0)
    with pytest.raises(Conflict, match="already revoked"), db.transaction() as s:
        g.revoke_token(s, w.admin, other.token.id, reason="again", now=T0)
    with db.read() as s:
        assert {t.id for t in g.list_tokens(s, w.alice)} == {tok.token.id, other.token.id}
        assert {t.id for t in g.list_tokens(s, w.bob)} == set()


def test_tokens_and_passwords_are_stored_only_hashed_and_never_audited(
    db: Database, w: World
) -> None:
    p = active_project(db, w)
    password = "correct horse battery staple"
    with db.transaction() as s:
        tok = g.issue_token(s, w.alice, p.id, now=T0)
        g.set_password(s, w.alice, w.alice.user_id, password, now=T0)
    assert tok.raw not in repr(tok)
    with db.read() as s:
        stored = s.execute(sa.select(ApiToken)).scalars().all()
        assert all(tok.raw not in (t.token_sha256 + t.id + t.label) for t in stored)
        user = s.get(User, w.alice.user_id)
        assert user is not None and user.password_hash is not None
        assert user.password_hash.startswith("$argon2")
        assert password not in user.password_hash
        everything = repr(read_events(s, limit=10_000))
        assert tok.raw not in everything
        assert password not in everything
        assert "$argon2" not in everything
        assert g.login(s, "alice", password).user_id == w.alice.user_id
        for bad_user, bad_pw in (("alice", "wrong password!!"), ("nobody", password)):
            with pytest.raises(Unauthenticated, match="wrong username or password"):
                g.login(s, bad_user, bad_pw)
    with pytest.raises(InvalidInput, match="shorter"), db.transaction() as s:
        g.set_password(s, w.alice, w.alice.user_id, "short", now=T0)


def test_accounts_roles_and_bootstrap(db: Database, w: World) -> None:
    with pytest.raises(Conflict, match="admin already exists"), db.transaction() as s:
        g.bootstrap_admin(s, username="root", display_name="Root", now=T0)
    with pytest.raises(Conflict, match="taken"), db.transaction() as s:
        g.create_user(s, w.admin, username="alice", display_name="A", roles=[], now=T0)
    with pytest.raises(InvalidInput, match="unknown role"), db.transaction() as s:
        g.create_user(s, w.admin, username="dave", display_name="D", roles=["wizard"], now=T0)
    with pytest.raises(InvalidInput, match="not allowed"), db.transaction() as s:
        g.create_user(s, w.admin, username="Dave Smith", display_name="D", roles=[], now=T0)
    with pytest.raises(Forbidden, match="another admin"), db.transaction() as s:
        g.disable_user(s, w.admin, w.admin.user_id, reason="oops", now=T0)
    with db.transaction() as s:
        carol = g.set_accreditation(s, w.admin, w.carol.user_id, date(2025, 12, 31), now=T0)
        carol = g.set_roles(s, w.admin, w.carol.user_id, ["researcher", "custodian"], now=T0)
    assert carol.roles == {g.Role.RESEARCHER, g.Role.CUSTODIAN}
    assert carol.accredited_until == date(2025, 12, 31)
    with db.transaction() as s:
        g.disable_user(s, w.admin, w.carol.user_id, reason="on leave", now=T0)
    with pytest.raises(Conflict, match="already disabled"), db.transaction() as s:
        g.disable_user(s, w.admin, w.carol.user_id, reason="again", now=T0)
    with db.read() as s, pytest.raises(Unauthenticated, match="disabled"):
        g.load_actor(s, w.carol.user_id)
    with db.transaction() as s:
        g.enable_user(s, w.admin, w.carol.user_id, now=T0)
    with db.read() as s:
        assert g.load_actor(s, w.carol.user_id).accredited_on(date(2025, 12, 31))
        assert g.list_users(s, w.admin, now=T0)[0].username == "admin"
        assert verify(s).ok


def test_datasets_custodians_and_caps(db: Database, w: World) -> None:
    with pytest.raises(Conflict, match="already registered"), db.transaction() as s:
        g.register_dataset(
            s,
            w.admin,
            name="health",
            title="again",
            custodian_ids=[w.custodian.user_id],
            cap=Budget(rho=Decimal(1)),
            budget=LEDGER,
            now=T0,
        )
    with pytest.raises(Conflict, match="not an enabled custodian"), db.transaction() as s:
        g.register_dataset(
            s,
            w.admin,
            name="benefits",
            title="Benefits",
            custodian_ids=[w.alice.user_id],
            cap=Budget(rho=Decimal(1)),
            budget=LEDGER,
            now=T0,
        )
    with db.read() as s:
        assert [d.name for d in g.list_datasets(s)] == ["education", "health"]
        assert LEDGER.cap(s, "health").cap == Budget(rho=Decimal(5), delta=Decimal("1e-6"))
    with pytest.raises(Forbidden, match="only a custodian of 'health'"), db.transaction() as s:
        g.set_dataset_cap(s, w.admin, "health", Budget(rho=Decimal(9)), budget=LEDGER, now=T0)
    with db.transaction() as s:
        g.set_dataset_cap(s, w.custodian, "health", Budget(rho=Decimal(3)), budget=LEDGER, now=T0)
        g.add_custodian(s, w.admin, "health", w.custodian2.user_id, now=T0)
        ds = g.remove_custodian(s, w.admin, "health", w.custodian.user_id, now=T0)
    assert ds.custodian_ids == {w.custodian2.user_id}
    with pytest.raises(Conflict, match="no custodian left"), db.transaction() as s:
        g.remove_custodian(s, w.admin, "health", w.custodian2.user_id, now=T0)
    with db.read() as s:
        assert LEDGER.cap(s, "health").cap.rho == Decimal(3)


def test_custodians_see_pending_requests_and_cannot_decide_their_own_project(
    db: Database, w: World
) -> None:
    with db.transaction() as s:
        g.set_roles(s, w.admin, w.custodian.user_id, ["custodian", "researcher"], now=T0)
        g.set_accreditation(s, w.admin, w.custodian.user_id, date(2026, 1, 1), now=T0)
        p = g.apply(s, w.alice, application(members=(w.custodian.user_id,)), now=T0)
        q = g.apply(s, w.bob, application(datasets=("health", "education")), now=T0)
    custodian = w.custodian.model_copy(
        update={"roles": frozenset({g.Role.CUSTODIAN, g.Role.RESEARCHER})}
    )
    with db.read() as s:
        pending = g.pending_requests(s, custodian, now=T0)
        assert [(r.project_id, r.dataset) for r in pending] == [(q.id, "health")]
        assert [r.dataset for r in g.pending_requests(s, w.custodian2, now=T0)] == ["education"]
    with pytest.raises(Forbidden, match="member of"), db.transaction() as s:
        g.approve_request(s, custodian, p.id, "health", reason="ok", budget=LEDGER, now=T0)
    with db.read() as s:
        visible = {v.id for v in g.list_projects(s, w.custodian2, now=T0)}
        assert visible == {q.id}


def test_withdrawn_applications_end_with_an_audited_reason(db: Database, w: World) -> None:
    with db.transaction() as s:
        p = g.apply(s, w.alice, application(), now=T0)
    with db.transaction() as s:
        p = g.withdraw(s, w.alice, p.id, reason="funding fell through", now=T0)
    assert p.state is g.ProjectState.WITHDRAWN
    with db.read() as s:
        ended = read_events(s, event_type="project.ended")
        assert ended[-1].payload == {
            "project_id": p.id,
            "state": "withdrawn",
            "reason": "funding fell through",
        }
