"""The API end to end through TestClient, on SQLite and PostgreSQL: the governance lifecycle,
budgets, tokens and audit, and every class of bad input with its status and canonical body."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.api_support import Api, active_project, application, token_for

pytest_plugins = ("tests.governance_fixtures", "tests.api_support")


def error(r: Any, status: int, reason: str | None = None) -> dict[str, Any]:
    """Assert the canonical error body with `status` (and `reason`); return its `error`."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) <= {"reason", "message", "hint", "details"}
    assert err["message"]
    if reason is not None:
        assert err["reason"] == reason, err
    return dict(err)


def test_lifecycle_budgets_tokens_and_audit(api: Api) -> None:
    a = api
    # The catalogue lists both ingested datasets with their governance.
    datasets = {d["name"]: d for d in a.ok("GET", "/datasets", "alice")}
    assert datasets["health"]["governed"] and datasets["health"]["latest_version"] == 1
    assert datasets["health"]["cap"]["cap"]["rho"] == "5"
    detail = a.ok("GET", "/datasets/health", "alice")
    assert "cost" in [c["name"] for c in detail["columns"]]

    project = a.ok("POST", "/projects", "alice", 201, json=application(("health", "education")))
    pid = project["id"]
    assert project["state"] == "submitted" and project["lead_id"] == a.ids["alice"]
    pending = a.ok("GET", "/approvals/pending", "cust")
    assert [(r["project_id"], r["dataset"]) for r in pending] == [(pid, "health")]

    # The health custodian narrows: fewer columns, less budget, an earlier end date.
    project = a.ok(
        "POST",
        f"/projects/{pid}/requests/health/approve",
        "cust",
        json={
            "reason": "only what the protocol needs",
            "columns": ["cost", "sex"],
            "allowance": {"rho": "0.5", "delta": "1e-7"},
            "end_date": "2025-09-30",
        },
    )
    assert project["state"] == "submitted"
    project = a.ok(
        "POST", f"/projects/{pid}/requests/education/approve", "cust2", json={"reason": "fine"}
    )
    assert project["state"] == "active" and project["status"] == "active"
    assert project["end_date"] == "2025-09-30"

    budgets = a.ok("GET", f"/projects/{pid}/budgets", "alice")
    health = next(d for d in budgets["datasets"] if d["dataset"] == "health")
    assert health["allowed"]["rho"] == "0.5" and health["remaining"]["rho"] == "0.5"
    assert health["allowed"]["epsilon"] > 0

    token = token_for(a, "alice", pid, label="notebook")
    me = a.ok("GET", "/me", token)
    assert me["credential"] == "project_token" and me["project_id"] == pid
    assert a.ok("GET", f"/projects/{pid}", token)["id"] == pid
    assert [t["label"] for t in a.ok("GET", "/tokens", "alice")] == ["notebook"]

    # An admin's manual charge: reserve then commit less than reserved.
    res = a.ok(
        "POST",
        "/ledger/reservations",
        "admin",
        201,
        json={"project_id": pid, "charges": {"health": {"rho": "0.2"}}, "purpose": "offline"},
    )
    assert res["state"] == "reserved"
    res = a.ok(
        "POST",
        f"/ledger/reservations/{res['id']}/commit",
        "admin",
        json={"actual": {"health": {"rho": "0.15"}}},
    )
    assert res["state"] == "committed" and res["committed"]["health"]["rho"] == "0.15"
    health = next(
        d
        for d in a.ok("GET", f"/projects/{pid}/budgets", token)["datasets"]
        if d["dataset"] == "health"
    )
    assert health["spent"]["rho"] == "0.15" and health["remaining"]["rho"] == "0.35"
    history = a.ok("GET", f"/projects/{pid}/budgets/history", "alice")["reservations"]
    assert [h["state"] for h in history] == ["committed"]

    # Revoking the token ends it on the next request.
    tid = me["token_id"]
    a.ok("POST", f"/tokens/{tid}/revoke", "alice", json={"reason": "done"})
    error(a.call("GET", "/me", token), 401, "unauthenticated")

    # The audit log has all of it, and the chain verifies.
    verify = a.ok("GET", "/audit/verify", "admin")
    assert verify["ok"] and verify["events_checked"] == verify["head_seq"] > 10
    page = a.ok("GET", "/audit/events", "admin", params={"event_type": "budget.committed"})
    assert [e["payload"]["project_id"] for e in page["events"]] == [pid]
    everything = a.ok("GET", "/audit/events", "admin", params={"limit": 1000})["events"]
    text = str(everything)
    assert token not in text and "tre_ses_" not in text and "argon2" not in text
    anchored = a.ok(
        "GET",
        "/audit/verify",
        "admin",
        params={"anchor_seq": verify["head_seq"], "anchor_hash": verify["head_hash"]},
    )
    assert anchored["ok"]


def test_unauthenticated_credentials_are_401(api: Api) -> None:
    a = api
    pid = active_project(a)["id"]
    error(a.call("GET", "/me"), 401, "unauthenticated")
    r = a.call("GET", "/me", "not-a-token")
    assert r.headers["www-authenticate"] == "Bearer"
    error(r, 401)
    error(a.call("GET", "/me", "tre_tok_" + "x" * 43), 401)  # unknown token
    session = a.bearers["alice"]
    error(a.call("GET", "/me", session[:-3] + "AAA"), 401)  # tampered session
    # Expired token; expired session.
    token = token_for(a, "alice", pid, ttl_hours=1)
    a.ok("GET", "/me", token)
    a.clock.advance(hours=1)
    error(a.call("GET", "/me", token), 401)
    a.clock.advance(hours=8)
    err = error(a.call("GET", "/me", "alice"), 401)
    assert "expired" in err["message"]
    # Disabled account: its session and token stop at once.
    a.login("admin")
    a.session("alice")
    token = token_for(a, "alice", pid)
    a.ok("POST", f"/users/{a.ids['alice']}/disable", "admin", json={"reason": "left"})
    error(a.call("GET", "/me", "alice"), 401)
    error(a.call("GET", "/me", token), 401)
    # Wrong password and unknown user look the same.
    bad = a.client.post("/auth/login", json={"username": "admin", "password": "x" * 12})
    unknown = a.client.post("/auth/login", json={"username": "nobody", "password": "x" * 12})
    assert error(bad, 401)["message"] == error(unknown, 401)["message"]


def test_valid_credentials_without_the_right_are_403_with_reason(api: Api) -> None:
    a = api
    pid = active_project(a)["id"]
    err = error(a.call("GET", "/users", "alice"), 403, "forbidden")
    assert "only an admin" in err["message"]
    err = error(
        a.call("POST", f"/projects/{pid}/requests/health/approve", "cust2", json={"reason": "x"}),
        403,
    )
    assert "custodian of 'health'" in err["message"]
    err = error(a.call("POST", "/projects", "carol", json=application()), 403)
    assert "accreditation" in err["message"]
    error(a.call("GET", f"/projects/{pid}", "bob"), 403)
    # A project token only reads and uses its own project.
    token = token_for(a, "alice", pid)
    error(a.call("GET", "/users", token), 403, "session_required")
    error(a.call("POST", "/tokens", token, json={"project_id": pid}), 403, "session_required")
    other = a.ok("POST", "/projects", "alice", 201, json=application())
    error(a.call("GET", f"/projects/{other['id']}", token), 403, "wrong_project")
    # The lifecycle is checked on every request: accreditation ends → 403 with the reason.
    a.ok(
        "PUT",
        f"/users/{a.ids['alice']}/accreditation",
        "admin",
        json={"accredited_until": "2025-03-02"},
    )
    err = error(a.call("GET", "/me", token), 403, "no_project_access")
    assert "accreditation expired" in err["message"]
    error(
        a.call(
            "POST",
            "/ledger/reservations",
            "cust",
            json={"project_id": pid, "charges": {"health": {"rho": "0.1"}}},
        ),
        403,
    )


def test_ledger_routes_authenticate_every_request(api: Api) -> None:
    """The ledger routes check the bearer themselves (one worker-thread hop): the same
    answers as every other route, and a change to the account counts on the next request."""
    a = api
    pid = active_project(a)["id"]
    body = {"project_id": pid, "charges": {"health": {"rho": "0.01"}}}
    error(a.call("POST", "/ledger/reservations", json=body), 401, "unauthenticated")
    error(a.call("POST", "/ledger/reservations", "tre_ses_x.y", json=body), 401)
    error(a.call("POST", "/ledger/reservations", "nonsense", json=body), 401)
    token = token_for(a, "alice", pid)
    error(a.call("POST", "/ledger/reservations", token, json=body), 403, "session_required")
    tid = a.ok("GET", "/me", token)["token_id"]
    a.ok("POST", f"/tokens/{tid}/revoke", "alice", json={"reason": "done"})
    error(a.call("POST", "/ledger/reservations", token, json=body), 401, "unauthenticated")
    error(a.call("POST", "/ledger/reservations", "alice", json=body), 403)  # not an admin
    # A second admin reserves; disabled, the very next request with the same session is 401.
    a.create_user("admin2", ["admin"])
    a.session("admin2")
    res = a.ok("POST", "/ledger/reservations", "admin2", 201, json=body)
    assert a.ok("GET", f"/ledger/reservations/{res['id']}", "admin2")["state"] == "reserved"
    a.ok("POST", f"/users/{a.ids['admin2']}/disable", "admin", json={"reason": "left"})
    for method, path, payload in (
        ("POST", "/ledger/reservations", body),
        ("GET", f"/ledger/reservations/{res['id']}", None),
        ("POST", f"/ledger/reservations/{res['id']}/commit", {}),
        ("POST", f"/ledger/reservations/{res['id']}/release", None),
    ):
        error(a.call(method, path, "admin2", json=payload), 401, "unauthenticated")
    released = a.ok("POST", f"/ledger/reservations/{res['id']}/release", "admin")
    assert released["state"] == "released"
    events = a.ok("GET", "/audit/events", "admin", params={"limit": 1000})["events"]
    budget = [
        (e["event_type"], e["actor"])
        for e in events
        if e["event_type"] in ("budget.reserved", "budget.released", "budget.committed")
    ]
    assert budget == [
        ("budget.reserved", f"user:{a.ids['admin2']}"),
        ("budget.released", f"user:{a.ids['admin']}"),
    ]


def test_invalid_bodies_are_422_with_field_paths(api: Api) -> None:
    a = api
    body = application()
    del body["title"]
    body["datasets"][0]["budget"]["rho"] = "-1"
    err = error(a.call("POST", "/projects", "alice", json=body), 422, "invalid_input")
    paths = {f["path"] for f in err["details"]["fields"]}
    assert paths == {"body.title", "body.datasets.0.budget.rho"}
    assert "-1" not in str(err)  # the input is never echoed back

    body = application()
    body["datasets"][0]["columns"] = ["cost", "no_such_column", "pid"]
    err = error(a.call("POST", "/projects", "alice", json=body), 422, "bad_columns")
    assert [f["path"] for f in err["details"]["fields"]] == [
        "body.datasets.0.columns.1",
        "body.datasets.0.columns.2",
    ]
    body = application(start="2025-06-01", end="2025-05-01")
    err = error(a.call("POST", "/projects", "alice", json=body), 422)
    assert "end_date is before start_date" in err["message"]
    err = error(a.call("POST", "/users", "admin", json={"username": "xy"}), 422)
    assert {f["path"] for f in err["details"]["fields"]} == {"body.display_name", "body.roles"}
    error(
        a.call(
            "POST",
            "/users",
            "admin",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        422,
    )
    err = error(a.call("GET", "/projects/0", "admin"), 422)
    assert err["details"]["fields"][0]["path"] == "path.project_id"
    err = error(
        a.call(
            "POST",
            "/users",
            "admin",
            json={"username": "dave", "display_name": "D\x00", "roles": ["researcher"]},
        ),
        422,
    )
    err = error(
        a.call(
            "POST",
            "/datasets",
            "admin",
            json={"name": "nonesuch", "custodian_ids": [a.ids["cust"]], "cap": {"rho": "1"}},
        ),
        422,
        "not_in_catalogue",
    )
    assert err["details"]["fields"][0]["path"] == "body.name"


def test_impossible_transitions_are_409_with_reason(api: Api) -> None:
    a = api
    pid = active_project(a)["id"]
    err = error(
        a.call("POST", f"/projects/{pid}/requests/health/approve", "cust", json={"reason": "x"}),
        409,
    )
    assert "only submitted applications" in err["message"]

    rejected = a.ok("POST", "/projects", "alice", 201, json=application(("health", "education")))
    rid = rejected["id"]
    a.ok("POST", f"/projects/{rid}/requests/education/reject", "cust2", json={"reason": "no"})
    err = error(
        a.call("POST", f"/projects/{rid}/requests/health/approve", "cust", json={"reason": "x"}),
        409,
        "not_submitted",
    )
    # Approving twice (a request already approved in a still-submitted application).
    two = a.ok("POST", "/projects", "alice", 201, json=application(("health", "education")))
    a.ok("POST", f"/projects/{two['id']}/requests/health/approve", "cust", json={"reason": "ok"})
    error(
        a.call(
            "POST",
            f"/projects/{two['id']}/requests/health/approve",
            "cust",
            json={"reason": "again"},
        ),
        409,
        "already_approved",
    )
    # A member cannot be added to a closed project.
    a.ok("POST", f"/projects/{pid}/close", "alice", json={"reason": "finished"})
    err = error(
        a.call("POST", f"/projects/{pid}/members", "alice", json={"user_id": a.ids["bob"]}),
        409,
        "project_closed",
    )
    assert "closed" in err["message"]
    # Reserving on an expired project.
    short = active_project(a, end="2025-03-10")
    a.clock.advance(days=10)
    a.login("admin")
    err = error(
        a.call(
            "POST",
            "/ledger/reservations",
            "admin",
            json={"project_id": short["id"], "charges": {"health": {"rho": "0.1"}}},
        ),
        409,
        "project_expired",
    )
    assert "ended on 2025-03-10" in err["message"]
    # Budget exhausted: more than the allowance left.
    a.clock.advance(days=-10)
    a.login("admin")
    fresh = active_project(a)
    err = error(
        a.call(
            "POST",
            "/ledger/reservations",
            "admin",
            json={"project_id": fresh["id"], "charges": {"health": {"rho": "1.5"}}},
        ),
        409,
        "budget_exhausted",
    )


def test_unknown_routes_methods_and_internal_errors_use_the_canonical_body(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    a = api
    error(a.call("GET", "/nope", "admin"), 404, "not_found")
    error(a.call("DELETE", "/users", "admin"), 405, "method_not_allowed")
    error(a.call("GET", "/projects/999", "admin"), 404, "not_found")

    def boom() -> None:
        raise RuntimeError("secret detail that must not leak")

    a.client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="tre.api"):
        r = a.call("GET", "/boom")
    err = error(r, 500, "internal_error")
    assert "secret detail" not in r.text
    error_id = err["message"].removeprefix("internal error, id ")
    assert error_id and any(error_id in rec.getMessage() for rec in caplog.records)


def test_wire_vocabularies_mirror_governance() -> None:
    from typing import get_args

    from tre import governance as g
    from tre.wire import accounts, projects

    assert set(get_args(accounts.RoleName)) == {r.value for r in g.Role}
    assert set(accounts.ROLE_NAMES) == {r.value for r in g.Role}
    assert set(get_args(projects.LegalBasisName)) == {b.value for b in g.LegalBasis}
    assert set(get_args(projects.ProjectStateName)) == {s.value for s in g.ProjectState}
    assert set(get_args(projects.StatusName)) == {s.value for s in g.Status}
    assert set(get_args(projects.RequestStateName)) == {s.value for s in g.RequestState}


def test_the_database_ledger_is_the_query_services_budget_ledger(api: Api) -> None:
    from decimal import Decimal

    from tre.errors import Conflict
    from tre.query.service import BudgetLedger
    from tre.query.store import DatabaseLedger
    from tre.wire.grant import Budget

    a = api
    pid = active_project(a)["id"]
    svc = a.client.app.state.services  # type: ignore[attr-defined]
    gateway: BudgetLedger = DatabaseLedger(svc.db, f"user:{a.ids['alice']}", svc.ledger, a.clock)
    rid = gateway.reserve(pid, {"health": Budget(rho=Decimal("0.4"))}, purpose="query")
    gateway.commit(rid, {"health": Budget(rho=Decimal("0.3"))})
    rid2 = gateway.reserve(pid, {"health": Budget(rho=Decimal("0.7"))}, purpose="query")
    gateway.release(rid2)
    with pytest.raises(Conflict):
        gateway.reserve(pid, {"health": Budget(rho=Decimal("0.71"))}, purpose="too much")
    health = a.ok("GET", f"/projects/{pid}/budgets", "alice")["datasets"][0]
    assert health["spent"]["rho"] == "0.3" and health["remaining"]["rho"] == "0.7"
    states = [
        h["state"] for h in a.ok("GET", f"/projects/{pid}/budgets/history", "alice")["reservations"]
    ]
    assert sorted(states) == ["committed", "released"]
