"""Output requests over HTTP (TestClient on SQLite and PostgreSQL): the whole story from a
notebook's project token to a verified bundle, blind reviews, and every refusal with its
status, canonical body and `output.refused` audit event."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from typing import Any

from tests.api_support import Api, active_project, application, token_for
from tre.outputs import CheckStatus, ItemKind, RequestState, ReviewDecision
from tre.wire.outputs import CheckStatusName, DecisionName, ItemKindName, OutputStateName

pytest_plugins = ("tests.governance_fixtures", "tests.api_support")

# Two groups of about 500 rows: at ε = 4 the noise (95% half-width about 45) keeps each count far
# from the threshold and from zero, so the automatic check passes whatever the noise draws.
BY_SEX = "SELECT sex, COUNT(*) AS n FROM health GROUP BY sex"
TABLE = b"region,n\nnorth,25\nsouth,14\nwest,10\n"


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def upload(
    a: Api,
    who: str,
    rid: int,
    name: str,
    content: bytes,
    kind: str = "table",
    status: int = 201,
    **fields: Any,
) -> Any:
    """Upload one item (multipart); returns the response (checked when status is given)."""
    data = {"kind": kind, "context": f"{name}: counts of people, 2024.", **fields}
    r = a.call("POST", f"/outputs/{rid}/items", who, files={"file": (name, content)}, data=data)
    assert r.status_code == status, r.text
    return r


def refusal(r: Any, status: int, reason: str) -> dict[str, Any]:
    """Assert a canonical error body with that status and reason; returns the error."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["reason"] == reason, body
    return dict(body["error"])


def refused_events(a: Api) -> list[dict[str, Any]]:
    """Every `output.refused` payload so far."""
    page = a.ok("GET", "/audit/events?event_type=output.refused&limit=1000", "admin")
    return [e["payload"] for e in page["events"]]


def events(a: Api, event_type: str) -> list[dict[str, Any]]:
    """Payloads of one event type."""
    page = a.ok("GET", f"/audit/events?event_type={event_type}&limit=1000", "admin")
    return [e["payload"] for e in page["events"]]


def world(a: Api) -> dict[str, Any]:
    """Alice's active project with bob; a second checker; an outside researcher (dora)."""
    a.create_user("checker2", ["output_checker"])
    a.create_user("checker3", ["output_checker"])
    a.create_user("dora", ["researcher"], "2026-03-31")
    project = active_project(a, members=(a.ids["bob"],))
    a.bearers["alice_tok"] = token_for(a, "alice", project["id"])
    return project


def draft(a: Api, project: dict[str, Any], who: str = "alice_tok") -> int:
    """A draft with one passing CSV table."""
    body = {"project_id": project["id"], "title": "Admissions by region"}
    rid = int(a.ok("POST", "/outputs", who, 201, json=body)["id"])
    upload(a, who, rid, "admissions.csv", TABLE)
    return rid


def submitted(a: Api, project: dict[str, Any]) -> int:
    """A submitted request."""
    rid = draft(a, project)
    assert a.ok("POST", f"/outputs/{rid}/submit", "alice_tok")["state"] == "submitted"
    return rid


def test_wire_names_mirror_the_service_vocabulary() -> None:
    assert set(OutputStateName.__args__) == {s.value for s in RequestState}
    assert set(ItemKindName.__args__) == {k.value for k in ItemKind}
    assert set(DecisionName.__args__) == {d.value for d in ReviewDecision}
    assert set(CheckStatusName.__args__) == {c.value for c in CheckStatus}


def test_the_whole_story_from_a_notebook_token_to_a_verified_bundle(api: Api) -> None:
    a = api
    project = world(a)
    pid = project["id"]
    created = a.ok("POST", "/outputs", "alice_tok", 201, json={"project_id": pid, "title": "Beds"})
    rid = created["id"]
    assert created["state"] == "draft" and created["author_id"] == a.ids["alice"]

    # A table straight from a tre query, with its provenance.
    result = a.ok("POST", "/query", "alice_tok", json={"sql": BY_SEX, "epsilon": 4.0})
    view = a.ok(
        "POST",
        f"/outputs/{rid}/items/query-result",
        "alice_tok",
        201,
        json={
            "name": "by_sex",
            "result": {**result, "sql": BY_SEX, "later_field": [1, None]},
            "context": "Admissions by sex from the DP query; noisy counts.",
        },
    )
    (item,) = view["items"]
    assert item["name"] == "by_sex.json" and item["kind"] == "table"
    prov = item["provenance"]
    assert prov["query_id"] == result["query_id"] and prov["query"] == BY_SEX
    assert prov["mode"] == "dp" and prov["datasets"] == [{"name": "health", "version": 1}]
    assert item["check"]["status"] == "pass", item["check"]

    # A CSV table and a figure drawn from it, uploaded as files.
    upload(a, "alice_tok", rid, "admissions.csv", TABLE)
    figure = png()
    view = upload(
        a, "alice_tok", rid, "admissions.png", figure, kind="figure", underlying="admissions.csv"
    ).json()
    assert [i["name"] for i in view["items"]] == [
        "by_sex.json",
        "admissions.csv",
        "admissions.png",
    ]
    fig = view["items"][2]
    assert fig["check"]["status"] == "pass" and fig["sha256"] == hashlib.sha256(figure).hexdigest()

    # The author reads a file back, checksum verified.
    r = a.call("GET", f"/outputs/{rid}/items/admissions.png/content", "alice_tok")
    assert r.status_code == 200 and r.content == figure
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-sha256"] == fig["sha256"]
    assert "attachment" in r.headers["content-disposition"]

    # The author edits the context, submits; the token lists only its project's requests.
    a.ok(
        "PATCH",
        f"/outputs/{rid}/items/admissions.csv",
        "alice_tok",
        json={"context": "Admissions per region, 2024; people counted once."},
    )
    assert a.ok("POST", f"/outputs/{rid}/submit", "alice_tok")["state"] == "submitted"
    mine = a.ok("GET", "/outputs?mine=true", "alice_tok")
    assert [m["id"] for m in mine] == [rid]

    # Two checkers: queue, take, decide (blind to each other until both are in).
    queue = a.ok("GET", "/outputs/queue", "checker")
    assert [(q["request_id"], q["mine"]) for q in queue] == [(rid, False)]
    taken = a.ok("POST", f"/outputs/{rid}/reviews", "checker")
    assert taken["state"] == "under_review"
    assert a.ok("GET", "/outputs/queue", "checker")[0]["mine"] is True
    a.ok(
        "POST",
        f"/outputs/{rid}/decision",
        "checker",
        json={
            "decision": "approve",
            "comment": "first-reviewer-note",
            "item_comments": {"admissions.png": "fine"},
        },
    )
    seen = a.call("GET", f"/outputs/{rid}", "checker2")
    (hidden,) = seen.json()["reviews"]
    assert hidden["hidden"] is True and hidden["decided"] is True
    assert (
        hidden["decision"] is None and hidden["comment"] is None and hidden["item_comments"] == {}
    )
    assert "first-reviewer-note" not in seen.text and "approve" not in seen.text
    approved = a.ok("POST", f"/outputs/{rid}/decision", "checker2", json={"decision": "approve"})
    assert approved["state"] == "approved"
    assert [rv["decision"] for rv in approved["reviews"]] == ["approve", "approve"]

    # Release by an independent checker; the author downloads; every checksum verifies.
    released = a.ok("POST", f"/outputs/{rid}/release", "checker")
    assert released["state"] == "released" and released["bundle_sha256"]
    r = a.call("GET", f"/outputs/{rid}/bundle", "alice_tok")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    digest = hashlib.sha256(r.content).hexdigest()
    assert digest == released["bundle_sha256"] == r.headers["x-content-sha256"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        names = set(z.namelist())
        assert {"by_sex.json", "admissions.csv", "admissions.png"} <= names
        assert {"results.json", "SUMMARY.md", "checksums.sha256"} <= names
        listed = {}
        for line in z.read("checksums.sha256").decode().splitlines():
            checksum, name = line.split(maxsplit=1)
            listed[name.lstrip("*")] = checksum
        assert set(listed) == names - {"checksums.sha256"}
        for name, checksum in listed.items():
            assert hashlib.sha256(z.read(name)).hexdigest() == checksum, name
        assert z.read("admissions.png") == figure
        stored = json.loads(z.read("by_sex.json"))
        assert stored["query_id"] == result["query_id"] and stored["rows"] == result["rows"]
        assert stored["later_field"] == [1, None]  # fields the engine adds later ride along
        results = json.loads(z.read("results.json"))
        assert results["tre"]["request_id"] == rid, results["tre"]
        assert [d["decision"] for d in results["tre"]["reviews"]] == ["approve", "approve"]

    # A member downloads too; each download is audited.
    assert a.call("GET", f"/outputs/{rid}/bundle", "bob").content == r.content
    downloads = events(a, "output.downloaded")
    assert [(d["request_id"], d["user_id"]) for d in downloads] == [
        (rid, a.ids["alice"]),
        (rid, a.ids["bob"]),
    ]
    assert all(d["bundle_sha256"] == digest for d in downloads)
    assert a.ok("GET", "/audit/verify", "admin")["ok"] is True
    assert refused_events(a) == []


def test_reviews_stay_blind_until_both_are_in(api: Api) -> None:
    a = api
    project = world(a)
    rid = submitted(a, project)
    secret = "c1-private-reasoning"
    a.ok(
        "POST",
        f"/outputs/{rid}/decision",
        "checker",
        json={"decision": "return", "comment": secret},
    )

    for who in ("checker2", "alice_tok", "bob", "admin"):
        r = a.call("GET", f"/outputs/{rid}", who)
        assert r.status_code == 200, (who, r.text)
        (review,) = r.json()["reviews"]
        assert review["hidden"] is True and review["decision"] is None, who
        assert secret not in r.text, who
        listed = a.call("GET", "/outputs", who)
        assert secret not in listed.text, who
    own = a.ok("GET", f"/outputs/{rid}", "checker")["reviews"][0]
    assert own["hidden"] is False and own["decision"] == "return" and own["comment"] == secret

    # The second checker disagrees: both are in, so checkers see both; a third review is needed.
    view = a.ok("POST", f"/outputs/{rid}/decision", "checker2", json={"decision": "approve"})
    assert view["reviews_required"] == 3 and view["state"] == "under_review"
    third = a.ok("GET", f"/outputs/{rid}", "checker3")
    assert sorted(rv["decision"] for rv in third["reviews"]) == ["approve", "return"]
    # The author still waits for the outcome.
    author = a.call("GET", f"/outputs/{rid}", "alice_tok")
    assert all(rv["hidden"] for rv in author.json()["reviews"]) and secret not in author.text
    decided = a.ok("POST", f"/outputs/{rid}/decision", "checker3", json={"decision": "approve"})
    assert decided["state"] == "approved"
    assert all(not rv["hidden"] for rv in a.ok("GET", f"/outputs/{rid}", "alice_tok")["reviews"])


def test_the_author_cannot_review_or_release_their_own_request(api: Api) -> None:
    a = api
    a.create_user("checker2", ["output_checker"])
    # Mia is a researcher and an output checker, the lead of her own project.
    a.create_user("mia", ["researcher", "output_checker"], "2026-03-31")
    project = a.ok("POST", "/projects", "mia", 201, json=application())
    a.ok(
        "POST",
        f"/projects/{project['id']}/requests/health/approve",
        "cust",
        json={"reason": "meets the access policy"},
    )
    rid = a.ok("POST", "/outputs", "mia", 201, json={"project_id": project["id"], "title": "T"})[
        "id"
    ]
    upload(a, "mia", rid, "admissions.csv", TABLE)
    a.ok("POST", f"/outputs/{rid}/submit", "mia")

    e = refusal(a.call("POST", f"/outputs/{rid}/reviews", "mia"), 403, "forbidden")
    assert "their own output request" in e["message"], e
    refusal(
        a.call("POST", f"/outputs/{rid}/decision", "mia", json={"decision": "approve"}),
        403,
        "forbidden",
    )
    assert "mia" not in [q["title"] for q in a.ok("GET", "/outputs/queue", "mia")]
    assert a.ok("GET", "/outputs/queue", "mia") == []
    a.ok("POST", f"/outputs/{rid}/decision", "checker", json={"decision": "approve"})
    a.ok("POST", f"/outputs/{rid}/decision", "checker2", json={"decision": "approve"})
    refusal(a.call("POST", f"/outputs/{rid}/release", "mia"), 403, "forbidden")

    audited = [(p["action"], p["request_id"], p["user_id"], p["status"]) for p in refused_events(a)]
    mia = a.ids["mia"]
    assert audited == [
        ("review", rid, mia, 403),
        ("decide", rid, mia, 403),
        ("release", rid, mia, 403),
    ]


def test_second_reviews_early_releases_and_outsiders_are_refused_and_audited(api: Api) -> None:
    a = api
    project = world(a)
    rid = submitted(a, project)

    # A second review by the same person.
    a.ok("POST", f"/outputs/{rid}/reviews", "checker")
    refusal(a.call("POST", f"/outputs/{rid}/reviews", "checker"), 409, "second_review")
    a.ok("POST", f"/outputs/{rid}/decision", "checker", json={"decision": "approve"})
    refusal(
        a.call("POST", f"/outputs/{rid}/decision", "checker", json={"decision": "approve"}),
        409,
        "second_review",
    )
    # Release before two approvals.
    refusal(a.call("POST", f"/outputs/{rid}/release", "checker"), 409, "not_approved")
    # Download before release, by a member.
    refusal(a.call("GET", f"/outputs/{rid}/bundle", "alice_tok"), 409, "not_released")
    a.ok("POST", f"/outputs/{rid}/decision", "checker2", json={"decision": "approve"})
    a.ok("POST", f"/outputs/{rid}/release", "checker2")
    # Download by people who are not members: a researcher outside, a checker, an admin.
    for outsider in ("dora", "checker", "admin"):
        refusal(a.call("GET", f"/outputs/{rid}/bundle", outsider), 403, "forbidden")
    # An outsider cannot even see the request.
    refusal(a.call("GET", f"/outputs/{rid}", "dora"), 403, "not_visible")
    # Unknown request: the canonical 404.
    refusal(a.call("GET", "/outputs/999999", "alice_tok"), 404, "not_found")

    audited = [(p["action"], p["reason"], p["user_id"]) for p in refused_events(a)]
    ids = a.ids
    assert audited == [
        ("review", "second_review", ids["checker"]),
        ("decide", "second_review", ids["checker"]),
        ("release", "not_approved", ids["checker"]),
        ("download", "not_released", ids["alice"]),
        ("download", "forbidden", ids["dora"]),
        ("download", "forbidden", ids["checker"]),
        ("download", "forbidden", ids["admin"]),
        ("view", "not_visible", ids["dora"]),
        ("view", "not_found", ids["alice"]),
    ]
    assert len(events(a, "output.downloaded")) == 0


def test_project_tokens_reach_only_the_researchers_side_of_their_own_project(api: Api) -> None:
    a = api
    project = world(a)
    rid = submitted(a, project)
    # A second project of alice's, and a token for it.
    other = active_project(a)
    other_tok = token_for(a, "alice", other["id"])
    a.bearers["other_tok"] = other_tok

    refusal(a.call("GET", f"/outputs/{rid}", "other_tok"), 403, "wrong_project")
    refusal(a.call("POST", f"/outputs/{rid}/withdraw", "other_tok"), 403, "wrong_project")
    refusal(
        a.call("POST", "/outputs", "other_tok", json={"project_id": project["id"], "title": "x"}),
        403,
        "wrong_project",
    )
    refusal(
        a.call("GET", f"/outputs?project_id={project['id']}", "other_tok"), 403, "wrong_project"
    )
    assert a.ok("GET", "/outputs", "other_tok") == []
    # The checkers' side needs a console session, even for a checker's own token.
    a.create_user("mixed", ["researcher", "output_checker"], "2026-03-31")
    a.ok("POST", f"/projects/{other['id']}/members", "alice", json={"user_id": a.ids["mixed"]})
    a.bearers["mixed_tok"] = token_for(a, "mixed", other["id"])
    refusal(a.call("GET", "/outputs/queue", "mixed_tok"), 403, "session_required")
    refusal(a.call("POST", f"/outputs/{rid}/reviews", "mixed_tok"), 403, "session_required")
    refusal(
        a.call("POST", f"/outputs/{rid}/decision", "mixed_tok", json={"decision": "approve"}),
        403,
        "session_required",
    )
    refusal(a.call("POST", f"/outputs/{rid}/release", "mixed_tok"), 403, "session_required")
    # A researcher's session asking for the checkers' queue.
    refusal(a.call("GET", "/outputs/queue", "alice"), 403, "not_checker")
    # No credentials at all.
    refusal(a.call("GET", f"/outputs/{rid}"), 401, "unauthenticated")

    audited = [(p["action"], p["reason"], p["request_id"]) for p in refused_events(a)]
    assert audited == [
        ("view", "wrong_project", rid),
        ("withdraw", "wrong_project", rid),
        ("create", "wrong_project", None),
        ("list", "wrong_project", None),
        ("queue", "session_required", None),
        ("review", "session_required", rid),
        ("decide", "session_required", rid),
        ("release", "session_required", rid),
        ("queue", "not_checker", None),
    ]
    # Nothing changed: still submitted, no review taken.
    view = a.ok("GET", f"/outputs/{rid}", "alice_tok")
    assert view["state"] == "submitted" and view["reviews"] == []


def test_bad_input_is_refused_with_its_reason_and_leaves_nothing_behind(api: Api) -> None:
    a = api
    project = world(a)
    rid = draft(a, project)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"></svg>'
    refusal(
        upload(a, "alice_tok", rid, "plot.svg", svg, kind="figure", status=422),
        422,
        "file_type_refused",
    )
    ids = b"person_id,n\n1,20\n2,30\n"
    e = refusal(
        upload(a, "alice_tok", rid, "people.csv", ids, status=422), 422, "identifier_column"
    )
    assert "person_id" in e["message"]
    refusal(
        upload(a, "alice_tok", rid, "fig.png", png(), kind="figure", status=422),
        422,
        "underlying_table_required",
    )
    refusal(upload(a, "alice_tok", rid, "admissions.csv", TABLE, status=409), 409, "item_exists")
    refusal(upload(a, "alice_tok", rid, "x.csv", b"a,n\n1\n", status=422), 422, "bad_table")
    # Form fields the database could not store, and unknown kinds: 422 with field paths.
    e = refusal(
        upload(a, "alice_tok", rid, "t.csv", TABLE, context="bad\x00text", status=422),
        422,
        "invalid_input",
    )
    assert e["details"]["fields"][0]["path"] == "body" and "NUL" in e["message"]
    e = refusal(
        upload(a, "alice_tok", rid, "t.csv", TABLE, kind="video", status=422), 422, "invalid_input"
    )
    assert e["details"]["fields"][0]["path"] == "body.kind"
    # A query result that is not one.
    bad_result = {
        "name": "q",
        "context": "c",
        "result": {
            "query_id": "x",
            "mode": "dp",
            "columns": [{"name": "n", "role": "aggregate"}],
            "rows": [["NaN"]],
            "datasets": [{"name": "health", "version": "latest"}],
        },
    }
    e = refusal(
        a.call("POST", f"/outputs/{rid}/items/query-result", "alice_tok", json=bad_result),
        422,
        "invalid_input",
    )
    assert e["details"]["fields"][0]["path"].startswith("body.result.datasets.0.version")
    csv_named = {
        **bad_result,
        "name": "q.csv",
        "result": {**bad_result["result"], "datasets": [], "rows": [[5]]},
    }
    refusal(
        a.call("POST", f"/outputs/{rid}/items/query-result", "alice_tok", json=csv_named),
        422,
        "file_type_refused",
    )
    # Decisions: unknown, and return without a comment.
    a.ok("POST", f"/outputs/{rid}/submit", "alice_tok")
    e = refusal(
        a.call("POST", f"/outputs/{rid}/decision", "checker", json={"decision": "maybe"}),
        422,
        "invalid_input",
    )
    assert e["details"]["fields"][0]["path"] == "body.decision"
    refusal(
        a.call("POST", f"/outputs/{rid}/decision", "checker", json={"decision": "return"}),
        422,
        "comment_required",
    )
    # Editing during review resets it; a submitted request with a failing table needs an exception.
    refusal(a.call("DELETE", f"/outputs/{rid}/items/nope.csv", "alice_tok"), 404, "not_found")

    view = a.ok("GET", f"/outputs/{rid}", "alice_tok")
    assert [i["name"] for i in view["items"]] == ["admissions.csv"] and view["reviews"] == []
    reasons = [p["reason"] for p in refused_events(a)]
    assert reasons == [
        "file_type_refused",
        "identifier_column",
        "underlying_table_required",
        "item_exists",
        "bad_table",
        "file_type_refused",
        "comment_required",
        "not_found",
    ]
    assert not any(
        "\x00" in json.dumps(p) or "person_id,n" in json.dumps(p) for p in refused_events(a)
    )


def test_edits_reset_reviews_and_failing_tables_need_an_exception(api: Api) -> None:
    a = api
    project = world(a)
    rid = submitted(a, project)
    a.ok("POST", f"/outputs/{rid}/decision", "checker", json={"decision": "approve"})
    # A small cell fails the threshold: submit is refused until an exception is asked for.
    small = b"region,n\nnorth,25\neast,3\n"
    view = upload(a, "alice_tok", rid, "small.csv", small).json()
    assert view["state"] == "draft" and view["reviews"] == []
    assert view["items"][1]["check"]["status"] == "fail"
    assert view["items"][1]["check"]["cells"]["threshold"] == [[1, 1]]
    refusal(a.call("POST", f"/outputs/{rid}/submit", "alice_tok"), 409, "failing_items")
    a.ok(
        "PATCH",
        f"/outputs/{rid}/items/small.csv",
        "alice_tok",
        json={"exception": "The east count is a published national statistic."},
    )
    again = a.ok("POST", f"/outputs/{rid}/submit", "alice_tok")
    assert again["round"] == 2 and again["state"] == "submitted" and again["reviews"] == []
    # Removing the failing table, then withdrawing; a withdrawn request is final.
    a.ok("DELETE", f"/outputs/{rid}/items/small.csv", "alice_tok")
    assert a.ok("POST", f"/outputs/{rid}/withdraw", "alice_tok")["state"] == "withdrawn"
    refusal(a.call("POST", f"/outputs/{rid}/withdraw", "alice_tok"), 409, "not_withdrawable")
    # Only the author withdraws (bob is a member, not the author).
    rid2 = draft(a, project)
    refusal(a.call("POST", f"/outputs/{rid2}/withdraw", "bob"), 403, "not_author")
    assert "output.reviews_reset" in {
        e["event_type"] for e in a.ok("GET", "/audit/events?limit=1000", "admin")["events"]
    }


def test_admins_reassign_an_undecided_review(api: Api) -> None:
    a = api
    project = world(a)
    rid = submitted(a, project)
    a.ok("POST", f"/outputs/{rid}/reviews", "checker")
    body = {"from_user_id": a.ids["checker"], "to_user_id": a.ids["checker2"], "reason": "leave"}
    refusal(a.call("POST", f"/outputs/{rid}/reassign", "checker", json=body), 403, "forbidden")
    view = a.ok("POST", f"/outputs/{rid}/reassign", "admin", json=body)
    assert [rv["reviewer_id"] for rv in view["reviews"]] == [a.ids["checker2"]]
    to_member = {**body, "from_user_id": a.ids["checker2"], "to_user_id": a.ids["bob"]}
    refusal(
        a.call("POST", f"/outputs/{rid}/reassign", "admin", json=to_member), 409, "bad_reviewer"
    )
    assert [p["action"] for p in refused_events(a)] == ["reassign", "reassign"]
