"""Output requests end to end on SQLite and PostgreSQL: the full story, the two-person rule,
blind reviews, resets, third reviews, every refusal (and its audit event), the bundle."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.governance_support import T0, World, active_project, later, seed
from tre import governance as g
from tre.audit import read_events, verify
from tre.config import Settings
from tre.db import Database
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound, UserError
from tre.governance import Actor
from tre.outputs import (
    ItemKind,
    ItemUpdate,
    OutputLimits,
    OutputService,
    RequestState,
    ReviewDecision,
)
from tre.outputs.models import OutputItem

pytest_plugins = ("tests.governance_fixtures",)  # the `db` fixture on SQLite and PG

NOW = later(days=1)
TABLE = b"region,n\nnorth,25\nsouth,14\nwest,10\n"
SMALL_CELL = b"region,n\nnorth,25\neast,3\n"


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@dataclass
class Cast:
    """The people of an output story."""

    w: World
    project: g.ProjectView
    alice: Actor  # lead, author
    bob: Actor  # member
    dora: Actor  # researcher outside the project
    c1: Actor
    c2: Actor
    c3: Actor
    member_checker: Actor  # an output checker who is a member of the project


@pytest.fixture
def cast(db: Database) -> Cast:
    w = seed(db)
    with db.transaction() as s:

        def user(name: str, roles: list[str], accredited: bool = False) -> Actor:
            until = later(days=300).date() if accredited else None
            return g.create_user(
                s,
                w.admin,
                username=name,
                display_name=name.title(),
                roles=roles,
                accredited_until=until,
                now=T0,
            ).as_actor()

        c2 = user("checker2", ["output_checker"])
        c3 = user("checker3", ["output_checker"])
        dora = user("dora", ["researcher"], accredited=True)
        mc = user("mixed", ["researcher", "output_checker"], accredited=True)
    project = active_project(db, w, members=(w.bob.user_id, mc.user_id))
    return Cast(w, project, w.alice, w.bob, dora, w.checker, c2, c3, mc)


@pytest.fixture
def svc(db: Database, settings: Settings) -> OutputService:
    return OutputService(db, settings)


def draft(svc: OutputService, cast: Cast, table: bytes = TABLE) -> int:
    view = svc.create_request(cast.alice, cast.project.id, title="Admissions by region", now=NOW)
    svc.add_item(
        cast.alice,
        view.id,
        name="admissions.csv",
        kind="table",
        content=table,
        context="Admissions per region, 2024; counts of people.",
        now=NOW,
    )
    return view.id


def submitted(svc: OutputService, cast: Cast) -> int:
    rid = draft(svc, cast)
    svc.submit(cast.alice, rid, now=NOW)
    return rid


def refusals(db: Database) -> list[dict[str, object]]:
    with db.read() as s:
        return [e.payload for e in read_events(s, limit=1000, event_type="output.refused")]


def event_types(db: Database) -> list[str]:
    with db.read() as s:
        return [
            e.event_type for e in read_events(s, limit=1000) if e.event_type.startswith("output.")
        ]


def test_the_full_story(db: Database, svc: OutputService, cast: Cast, settings: Settings) -> None:
    rid = draft(svc, cast)
    svc.add_item(
        cast.alice,
        rid,
        name="admissions.png",
        kind=ItemKind.FIGURE,
        content=png(),
        context="Bar chart of admissions.csv.",
        underlying="admissions.csv",
        now=NOW,
    )
    svc.add_item(
        cast.alice,
        rid,
        name="model.txt",
        kind="model",
        content=b"OLS: admissions ~ deprivation\ncoef 0.42 (se 0.05)\n",
        context="Linear model of admissions on deprivation decile.",
        n_obs=500,
        rank=3,
        now=NOW,
    )
    svc.add_item(
        cast.alice,
        rid,
        name="methods.md",
        kind="text",
        content=b"# Methods\nCounts of people admitted at least once.\n",
        context="Methods note.",
        now=NOW,
    )
    view = svc.submit(cast.alice, rid, now=NOW)
    assert view.state is RequestState.SUBMITTED and view.round == 1
    statuses = {i.name: i.check.status.value for i in view.items}
    assert statuses == {
        "admissions.csv": "pass",
        "admissions.png": "pass",
        "model.txt": "pass",
        "methods.md": "review",
    }
    assert any("counts only" in n for n in view.items[0].check.notes)

    queue = svc.queue(cast.c1, now=NOW)
    assert [q.request_id for q in queue] == [rid]
    assert svc.take_review(cast.c1, rid, now=NOW).state is RequestState.UNDER_REVIEW
    _, content = svc.item_content(cast.c1, rid, "admissions.csv", now=NOW)
    assert content == TABLE
    svc.decide_review(cast.c1, rid, "approve", comment="Counts ≥ 10.", now=NOW)
    view = svc.decide_review(
        cast.c2,
        rid,
        ReviewDecision.APPROVE,
        item_comments={"methods.md": "Fine to release."},
        now=NOW,
    )
    assert view.state is RequestState.APPROVED
    assert svc.queue(cast.c3, now=NOW) == []

    released = svc.release(cast.c3, rid, now=later(days=2))
    assert released.state is RequestState.RELEASED and released.bundle_sha256

    dl = svc.download(cast.bob, rid, now=later(days=2))
    data = dl.path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == dl.sha256 == released.bundle_sha256
    assert stat.S_IMODE(dl.path.stat().st_mode) == 0o600
    assert stat.S_IMODE((settings.data_root / "outputs" / str(rid)).stat().st_mode) == 0o700

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert names == {
            "admissions.csv",
            "admissions.png",
            "model.txt",
            "methods.md",
            "results.json",
            "SUMMARY.md",
            "checksums.sha256",
        }
        sums = dict(
            reversed(line.split("  ", 1))
            for line in zf.read("checksums.sha256").decode().splitlines()
        )
        assert set(sums) == names - {"checksums.sha256"}
        for name, digest in sums.items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest, name
        assert zf.read("admissions.csv") == TABLE
        results = json.loads(zf.read("results.json"))
        summary = zf.read("SUMMARY.md").decode()

    assert results["tool"]["acro_compatible"] == "1.0.2"
    table = results["results"]["output_0"]
    assert table["status"] == "pass" and table["type"] == "table"
    assert table["files"][0]["name"] == "admissions.csv"
    assert table["files"][0]["sdc"]["summary"] == {"threshold": 0, "zero": 0}
    assert table["outcome"] == {"n": {"0": "ok", "1": "ok", "2": "ok"}}
    assert table["comments"] == ["Admissions per region, 2024; counts of people."]
    assert results["results"]["output_2"]["type"] == "regression"
    assert (
        results["results"]["output_3"]["comments"][-1]
        == "Output Checker (checker2): Fine to release."
    )
    reviews = results["tre"]["reviews"]
    assert [(r["reviewer"], r["decision"]) for r in reviews] == [
        ("checker", "approve"),
        ("checker2", "approve"),
    ]
    assert results["tre"]["released_by"] == "checker3"
    assert "checker2 | approve" in summary and "admissions.png" in summary

    assert event_types(db) == [
        "output.created",
        "output.item_added",
        "output.item_added",
        "output.item_added",
        "output.item_added",
        "output.submitted",
        "output.review_taken",
        "output.review_decided",
        "output.review_taken",
        "output.review_decided",
        "output.decided",
        "output.released",
        "output.downloaded",
    ]
    with db.read() as s:
        assert verify(s).ok


def test_a_checker_cannot_review_their_own_request_nor_their_projects(
    db: Database, svc: OutputService, cast: Cast
) -> None:
    # The author is also an output checker here.
    view = svc.create_request(cast.member_checker, cast.project.id, title="Mine", now=NOW)
    svc.add_item(
        cast.member_checker,
        view.id,
        name="t.csv",
        kind="table",
        content=TABLE,
        context="c",
        now=NOW,
    )
    svc.submit(cast.member_checker, view.id, now=NOW)
    with pytest.raises(Forbidden, match="nobody reviews their own"):
        svc.take_review(cast.member_checker, view.id, now=NOW)
    with pytest.raises(Forbidden, match="nobody reviews their own"):
        svc.decide_review(cast.member_checker, view.id, "approve", now=NOW)
    rid = submitted(svc, cast)  # alice's; member_checker is a member of the project
    with pytest.raises(Forbidden, match="own project"):
        svc.take_review(cast.member_checker, rid, now=NOW)
    with pytest.raises(Forbidden, match="only output checkers"):
        svc.take_review(cast.dora, rid, now=NOW)
    assert svc.queue(cast.member_checker, now=NOW) == []
    with pytest.raises(Forbidden, match="only output checkers have a review queue"):
        svc.queue(cast.alice, now=NOW)
    refused = refusals(db)
    assert [(r["action"], r["status"]) for r in refused] == [
        ("review", 403),
        ("decide", 403),
        ("review", 403),
        ("review", 403),
        ("queue", 403),
    ]
    assert (
        refused[0]["request_id"] == view.id and refused[0]["user_id"] == cast.member_checker.user_id
    )


def test_a_second_review_by_the_same_person_is_refused(
    db: Database, svc: OutputService, cast: Cast
) -> None:
    rid = submitted(svc, cast)
    svc.take_review(cast.c1, rid, now=NOW)
    with pytest.raises(Conflict, match="second review") as err:
        svc.take_review(cast.c1, rid, now=NOW)
    assert err.value.status == 409
    svc.decide_review(cast.c1, rid, "approve", now=NOW)
    with pytest.raises(Conflict, match="already decided"):
        svc.decide_review(cast.c1, rid, "reject", comment="changed my mind", now=NOW)
    assert [r["reason"] for r in refusals(db)] == ["second_review", "second_review"]
    svc.take_review(cast.c2, rid, now=NOW)
    with pytest.raises(Conflict, match="already has its 2 reviewers"):
        svc.take_review(cast.c3, rid, now=NOW)


def test_release_needs_two_approvals_and_an_independent_checker(
    db: Database, svc: OutputService, cast: Cast
) -> None:
    rid = submitted(svc, cast)
    with pytest.raises(Conflict, match="0 approval"):
        svc.release(cast.c3, rid, now=NOW)
    svc.decide_review(cast.c1, rid, "approve", now=NOW)
    with pytest.raises(Conflict, match="1 approval") as err:
        svc.release(cast.c3, rid, now=NOW)
    assert err.value.reason == "not_approved"
    svc.decide_review(cast.c2, rid, "approve", now=NOW)
    with pytest.raises(Forbidden):
        svc.release(cast.alice, rid, now=NOW)  # the author never releases
    with pytest.raises(Forbidden, match="own project"):
        svc.release(cast.member_checker, rid, now=NOW)
    with pytest.raises(Conflict, match="only released"):
        svc.download(cast.alice, rid, now=NOW)
    svc.release(cast.c1, rid, now=NOW)  # a reviewer may release
    with pytest.raises(Conflict, match="released with 2"):
        svc.release(cast.c2, rid, now=NOW)
    assert [r["reason"] for r in refusals(db)] == [
        "not_approved",
        "not_approved",
        "forbidden",
        "forbidden",
        "not_released",
        "not_approved",
    ]


def test_only_members_download_and_every_download_is_audited(
    db: Database, svc: OutputService, cast: Cast
) -> None:
    rid = submitted(svc, cast)
    svc.decide_review(cast.c1, rid, "approve", now=NOW)
    svc.decide_review(cast.c2, rid, "approve", now=NOW)
    svc.release(cast.c3, rid, now=NOW)
    for outsider in (cast.dora, cast.c1, cast.w.admin):
        with pytest.raises(Forbidden, match="only members of project") as err:
            svc.download(outsider, rid, now=NOW)
        assert err.value.status == 403
    svc.download(cast.alice, rid, now=NOW)
    svc.download(cast.bob, rid, now=NOW)
    with db.read() as s:
        downloads = [e.payload["user_id"] for e in read_events(s, event_type="output.downloaded")]
    assert downloads == [cast.alice.user_id, cast.bob.user_id]
    assert [(r["action"], r["user_id"]) for r in refusals(db)] == [
        ("download", cast.dora.user_id),
        ("download", cast.c1.user_id),
        ("download", cast.w.admin.user_id),
    ]
    # A removed member loses access.
    with db.transaction() as s:
        g.remove_member(s, cast.alice, cast.project.id, cast.bob.user_id, reason="left", now=NOW)
    with pytest.raises(Forbidden):
        svc.download(cast.bob, rid, now=NOW)


def test_reviews_are_blind_until_both_are_in(svc: OutputService, cast: Cast) -> None:
    rid = submitted(svc, cast)
    svc.decide_review(cast.c1, rid, "approve", comment="ok by me", now=NOW)
    svc.take_review(cast.c2, rid, now=NOW)

    c2_view = svc.get_request(cast.c2, rid, now=NOW)
    other = next(r for r in c2_view.reviews if r.reviewer_id == cast.c1.user_id)
    assert other.hidden and other.decision is None and other.comment is None
    c1_view = svc.get_request(cast.c1, rid, now=NOW)
    mine = next(r for r in c1_view.reviews if r.reviewer_id == cast.c1.user_id)
    assert not mine.hidden and mine.decision is ReviewDecision.APPROVE
    for insider in (cast.alice, cast.bob):
        assert all(r.hidden for r in svc.get_request(insider, rid, now=NOW).reviews)
    assert "ok by me" not in svc.get_request(cast.c2, rid, now=NOW).model_dump_json()

    svc.decide_review(cast.c2, rid, "approve", now=NOW)
    for person in (cast.alice, cast.c1, cast.c2, cast.c3):
        view = svc.get_request(person, rid, now=NOW)
        assert [r.decision for r in view.reviews] == [ReviewDecision.APPROVE] * 2


def test_outsiders_and_checkers_of_drafts_see_nothing(
    db: Database, svc: OutputService, cast: Cast
) -> None:
    rid = draft(svc, cast)
    with pytest.raises(Forbidden, match="neither a member"):
        svc.get_request(cast.dora, rid, now=NOW)
    with pytest.raises(Forbidden):
        svc.get_request(cast.c1, rid, now=NOW)  # never-submitted drafts are the author's
    with pytest.raises(Forbidden):
        svc.item_content(cast.dora, rid, "admissions.csv", now=NOW)
    assert svc.list_requests(cast.dora, now=NOW) == []
    assert [v.id for v in svc.list_requests(cast.bob, now=NOW)] == [rid]
    with pytest.raises(NotFound):
        svc.get_request(cast.alice, 999, now=NOW)


def test_editing_resets_reviews(db: Database, svc: OutputService, cast: Cast) -> None:
    rid = submitted(svc, cast)
    svc.decide_review(cast.c1, rid, "approve", now=NOW)
    view = svc.update_item(
        cast.alice, rid, "admissions.csv", ItemUpdate(context="Better words."), now=NOW
    )
    assert view.state is RequestState.DRAFT and view.reviews == ()
    with pytest.raises(Conflict, match="not waiting for review"):
        svc.decide_review(cast.c2, rid, "approve", now=NOW)
    view = svc.submit(cast.alice, rid, now=NOW)
    assert view.round == 2 and view.reviews == ()
    # The first approval does not count: two fresh approvals are needed; c1 may review again.
    svc.decide_review(cast.c2, rid, "approve", now=NOW)
    assert svc.get_request(cast.alice, rid, now=NOW).state is RequestState.UNDER_REVIEW
    with pytest.raises(Conflict, match="1 approval"):
        svc.release(cast.c3, rid, now=NOW)
    assert svc.decide_review(cast.c1, rid, "approve", now=NOW).state is RequestState.APPROVED
    with db.read() as s:
        resets = [e.payload for e in read_events(s, event_type="output.reviews_reset")]
    assert resets == [
        {"request_id": rid, "round": 1, "reviews": 1, "previous_state": "under_review"}
    ]


def test_returned_requests_are_edited_and_resubmitted(svc: OutputService, cast: Cast) -> None:
    rid = submitted(svc, cast)
    with pytest.raises(InvalidInput, match="needs a comment"):
        svc.decide_review(cast.c1, rid, "return", now=NOW)
    svc.decide_review(cast.c1, rid, "return", comment="Round to 5.", now=NOW)
    view = svc.decide_review(cast.c2, rid, "return", comment="Add the total.", now=NOW)
    assert view.state is RequestState.RETURNED
    author_view = svc.get_request(cast.alice, rid, now=NOW)
    assert sorted(r.comment or "" for r in author_view.reviews) == ["Add the total.", "Round to 5."]
    view = svc.add_item(
        cast.alice,
        rid,
        name="admissions.csv",
        kind="table",
        content=b"region,n\nnorth,25\nsouth,15\nwest,10\ntotal,50\n",
        context="Rounded to 5, with the total.",
        replace=True,
        now=NOW,
    )
    assert view.state is RequestState.RETURNED  # comments stay visible while editing
    assert svc.submit(cast.alice, rid, now=NOW).round == 2


def test_a_disagreement_goes_to_a_third_reviewer(
    db: Database, svc: OutputService, cast: Cast
) -> None:
    rid = submitted(svc, cast)
    svc.decide_review(cast.c1, rid, "approve", now=NOW)
    view = svc.decide_review(cast.c2, rid, "reject", comment="Too detailed.", now=NOW)
    assert view.state is RequestState.UNDER_REVIEW and view.reviews_required == 3
    assert [q.request_id for q in svc.queue(cast.c3, now=NOW)] == [rid]
    # Both are in: the checkers (and the arbiter) see both; the author still waits.
    c3_view = svc.get_request(cast.c3, rid, now=NOW)
    assert [r.decision for r in c3_view.reviews] == [ReviewDecision.APPROVE, ReviewDecision.REJECT]
    assert all(r.hidden for r in svc.get_request(cast.alice, rid, now=NOW).reviews)
    with pytest.raises(Conflict):
        svc.release(cast.c3, rid, now=NOW)
    view = svc.decide_review(cast.c3, rid, "approve", now=NOW)
    assert view.state is RequestState.APPROVED
    svc.release(cast.c3, rid, now=NOW)
    with db.read() as s:
        third = [e.payload for e in read_events(s, event_type="output.third_review_needed")]
    assert third == [{"request_id": rid, "round": 1, "decisions": ["approve", "reject"]}]


def test_withdrawal_is_the_authors_alone(db: Database, svc: OutputService, cast: Cast) -> None:
    rid = submitted(svc, cast)
    with pytest.raises(Forbidden, match="only the author"):
        svc.withdraw(cast.bob, rid, now=NOW)
    with pytest.raises(Forbidden, match="only the author"):
        svc.add_item(cast.bob, rid, name="x.csv", kind="table", content=TABLE, context="c", now=NOW)
    assert svc.withdraw(cast.alice, rid, now=NOW).state is RequestState.WITHDRAWN
    with pytest.raises(Conflict, match="withdrawn"):
        svc.submit(cast.alice, rid, now=NOW)
    with pytest.raises(Conflict, match="not waiting for review"):
        svc.take_review(cast.c1, rid, now=NOW)
    with pytest.raises(Conflict, match="cannot be withdrawn"):
        svc.withdraw(cast.alice, rid, now=NOW)


def test_failing_items_need_an_exception_which_never_changes_their_status(
    svc: OutputService, cast: Cast
) -> None:
    rid = draft(svc, cast, table=SMALL_CELL)
    view = svc.get_request(cast.alice, rid, now=NOW)
    check = view.items[0].check
    assert check.status.value == "fail"
    assert check.cells == {"threshold": [[1, 1]]}  # row 1 (east), column 1 (n)
    with pytest.raises(Conflict, match="without an exception"):
        svc.submit(cast.alice, rid, now=NOW)
    svc.update_item(
        cast.alice,
        rid,
        "admissions.csv",
        ItemUpdate(exception="The small cell is a published national figure."),
        now=NOW,
    )
    view = svc.submit(cast.alice, rid, now=NOW)
    assert view.items[0].check.status.value == "fail"
    assert view.items[0].exception is not None


def test_gate_refusals_leave_nothing_behind_and_are_audited(
    db: Database, settings: Settings, cast: Cast
) -> None:
    svc = OutputService(db, settings, OutputLimits(max_file_bytes=200, max_table_rows=3))
    rid = svc.create_request(cast.alice, cast.project.id, title="t", now=NOW).id
    hexes = b"region,n,ref\nnorth,25,9f86d081884c7d659a2feaa0c55ad015\n"
    cases: list[tuple[str, str, bytes, str]] = [
        ("figure.svg", "figure", b"<svg/>", "file_type_refused"),
        ("data.xlsx", "table", b"PK", "file_type_refused"),
        ("big.csv", "table", b"a,n\n" + b"x,10\n" * 60, "file_too_large"),
        ("long.csv", "table", b"a,n\n" + b"x,10\n" * 4, "too_many_rows"),
        ("ids.csv", "table", b"person_id,n\n1,10\n", "identifier_column"),
        ("refs.csv", "table", hexes, "identifier_values"),
        ("nhs.csv", "table", b"who,n\n943 476 5919,12\n", "identifier_values"),
        ("nino.txt", "text", b"See QQ123456C\n", "identifier_values"),
        ("fake.png", "figure", b"GIF89a", "file_type_mismatch"),
        ("../x.csv", "table", TABLE, "bad_item_name"),
        ("results.json", "table", b"[]", "bad_item_name"),
    ]
    for name, kind, content, reason in cases:
        with pytest.raises(UserError) as err:
            svc.add_item(
                cast.alice, rid, name=name, kind=kind, content=content, context="c", now=NOW
            )
        assert err.value.reason == reason, name
        assert "9f86d081" not in str(err.value) and "943 476" not in str(err.value)
        assert "QQ123456C" not in str(err.value)
    with pytest.raises(InvalidInput, match="underlying table"):
        svc.add_item(
            cast.alice, rid, name="f.png", kind="figure", content=png(), context="c", now=NOW
        )
    with db.read() as s:
        assert s.execute(sa.select(sa.func.count()).select_from(OutputItem)).scalar() == 0
    objects = settings.data_root / "outputs" / str(rid) / "objects"
    assert not objects.exists() or list(objects.iterdir()) == []
    assert [r["reason"] for r in refusals(db)] == [c[3] for c in cases] + [
        "underlying_table_required"
    ]
    for r in refusals(db):
        assert "9f86d081" not in json.dumps(r)


def test_a_table_from_a_tre_query_keeps_its_provenance_and_report(
    svc: OutputService, cast: Cast
) -> None:
    result = {
        "query_id": "q-123",
        "mode": "sdc",
        "sql": "SELECT region, COUNT(*) AS n FROM health GROUP BY region",
        "cached": False,
        "columns": [
            {"name": "region", "role": "key", "aggregate": None},
            {"name": "n", "role": "aggregate", "aggregate": "rows"},
        ],
        "rows": [["north", 25], ["south", 14]],
        "half_widths_95": [[None, 0], [None, 0]],
        "cost": {"rho": 0, "delta": 0, "epsilon": 0, "epsilon_delta": 0},
        "plan": ["exact counts"],
        "datasets": [{"name": "health", "version": 3}],
        "disclosure": {"status": "review", "summary": {"negative": 1}},
    }
    view = svc.create_request(cast.alice, cast.project.id, title="q", now=NOW)
    view = svc.add_item(
        cast.alice,
        view.id,
        name="by_region.json",
        kind="table",
        content=json.dumps(result).encode(),
        context="From the query engine.",
        now=NOW,
    )
    item = view.items[0]
    assert item.provenance is not None
    assert item.provenance.query_id == "q-123" and item.provenance.mode == "sdc"
    assert item.provenance.datasets == (("health", 3),)
    assert item.check.status.value == "review"  # the carried report's review wins over pass
    assert any("rides along" in n for n in item.check.notes)


def test_admins_reassign_undecided_reviews(db: Database, svc: OutputService, cast: Cast) -> None:
    rid = submitted(svc, cast)
    svc.take_review(cast.c1, rid, now=NOW)
    svc.decide_review(cast.c2, rid, "approve", now=NOW)
    kwargs = {"from_user_id": cast.c1.user_id, "reason": "on leave", "now": NOW}
    with pytest.raises(Forbidden, match="only an admin"):
        svc.reassign(cast.c3, rid, to_user_id=cast.c3.user_id, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="own project"):
        svc.reassign(cast.w.admin, rid, to_user_id=cast.member_checker.user_id, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="already reviews"):
        svc.reassign(cast.w.admin, rid, to_user_id=cast.c2.user_id, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="already decided"):
        svc.reassign(
            cast.w.admin,
            rid,
            from_user_id=cast.c2.user_id,
            to_user_id=cast.c3.user_id,
            reason="x",
            now=NOW,
        )
    view = svc.reassign(cast.w.admin, rid, to_user_id=cast.c3.user_id, **kwargs)  # type: ignore[arg-type]
    assert {r.reviewer_id for r in view.reviews} == {cast.c2.user_id, cast.c3.user_id}
    with pytest.raises(Conflict, match="already has its 2 reviewers"):
        svc.decide_review(cast.c1, rid, "approve", now=NOW)  # c1's review moved away
    assert svc.decide_review(cast.c3, rid, "approve", now=NOW).state is RequestState.APPROVED


def test_replacing_a_table_rechecks_its_figures(svc: OutputService, cast: Cast) -> None:
    rid = draft(svc, cast)
    svc.add_item(
        cast.alice,
        rid,
        name="fig.png",
        kind="figure",
        content=png(),
        context="Chart.",
        underlying="admissions.csv",
        now=NOW,
    )
    view = svc.add_item(
        cast.alice,
        rid,
        name="admissions.csv",
        kind="table",
        content=SMALL_CELL,
        context="Now with a small cell.",
        replace=True,
        now=NOW,
    )
    assert {i.name: i.check.status.value for i in view.items} == {
        "admissions.csv": "fail",
        "fig.png": "fail",
    }
    with pytest.raises(Conflict, match=r"underlying table of fig\.png"):
        svc.remove_item(cast.alice, rid, "admissions.csv", now=NOW)


def test_files_are_private_and_content_addressed(
    svc: OutputService, cast: Cast, settings: Settings
) -> None:
    rid = draft(svc, cast)
    path = settings.data_root / "outputs" / str(rid) / "objects" / hashlib.sha256(TABLE).hexdigest()
    assert path.read_bytes() == TABLE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    svc.remove_item(cast.alice, rid, "admissions.csv", now=NOW)
    assert not path.exists()


def test_concurrent_checkers_never_take_more_than_the_round_needs(
    svc: OutputService, cast: Cast
) -> None:
    import threading

    rid = submitted(svc, cast)
    results: list[str] = []
    start = threading.Barrier(3)

    def take(checker: Actor) -> None:
        start.wait()
        try:
            svc.take_review(checker, rid, now=NOW)
            results.append("taken")
        except Conflict as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=take, args=(c,)) for c in (cast.c1, cast.c2, cast.c3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["reviews_full", "taken", "taken"]
    assert len(svc.get_request(cast.w.admin, rid, now=NOW).reviews) == 2
