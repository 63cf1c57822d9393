"""A differentially private query result is released on its noise (SQLite and PostgreSQL).

The DP provenance lifts the count-based SDC rules only when tre's query engine recorded that
query as answered in DP mode for the request's project (`query.answered` in the audit log);
a file that merely says `"mode": "dp"` is checked — and refused — as record counts.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.integration.test_outputs_workflow import NOW, Cast, cast, svc  # noqa: F401
from tre.audit import record
from tre.db import Database
from tre.errors import InvalidInput
from tre.outputs import OutputService
from tre.outputs.checks import DP_SKIPPED_NOTE
from tre.query.audit import QueryAnswered
from tre.query.service import Cost, QueryResult, ResultColumn

pytest_plugins = ("tests.governance_fixtures",)

SQL = "SELECT region, COUNT(*) AS n FROM admissions GROUP BY region"


def dp_result(query_id: str, mode: str = "dp") -> bytes:
    """A DP count table as the query engine writes it: noisy counts, one of them negative."""
    result = QueryResult(
        query_id=query_id,
        columns=(ResultColumn("region", "key"), ResultColumn("n", "aggregate", "count")),
        rows=(("north", 412), ("south", -37), ("east", 3)),
        half_widths=((None, 179.0), (None, 179.0), (None, 179.0)),
        cost=Cost(rho=0.5, delta=0.0, epsilon=1.0, epsilon_delta=1.0),
        plan=("scan admissions@v1", "count by region + Gaussian noise"),
        datasets=(("admissions", 1),),
        mode=mode,
    )
    return json.dumps({**result.to_json(), "sql": SQL}).encode()


def answered(db: Database, people: Cast, query_id: str, *, project_id: int, mode: str) -> None:
    """What the query engine records when it answers a query."""
    with db.transaction() as s:
        record(
            s,
            QueryAnswered(
                query_id=query_id,
                project_id=project_id,
                user_id=people.alice.user_id,
                query_text=SQL,
                query_digest="0" * 64,
                mode=mode,
                datasets=("admissions@v1",),
                rho=Decimal("0.5"),
                delta=Decimal("0"),
                cached=False,
            ),
            actor=f"user:{people.alice.user_id}",
            now=NOW,
        )


def add(
    service: OutputService, people: Cast, rid: int, content: bytes, name: str = "dp.json"
) -> None:
    service.add_item(
        people.alice,
        rid,
        name=name,
        kind="table",
        content=content,
        context="Noisy admissions per region (DP, ε=1).",
        now=NOW,
    )


def test_a_dp_count_table_with_a_negative_count_is_accepted_and_passes(
    db: Database,
    svc: OutputService,  # noqa: F811
    cast: Cast,  # noqa: F811
) -> None:
    answered(db, cast, "a1b2c3", project_id=cast.project.id, mode="dp")
    rid = svc.create_request(cast.alice, cast.project.id, title="DP", now=NOW).id
    add(svc, cast, rid, dp_result("a1b2c3"))
    [item] = svc.get_request(cast.alice, rid, now=NOW).items
    assert item.check.status.value == "pass"
    assert item.check.notes[0] == (
        "differentially private: protected by noise, cost ρ=0.5; counts are not record counts"
    )
    assert DP_SKIPPED_NOTE in item.check.notes
    assert item.provenance is not None and item.provenance.mode == "dp"
    svc.submit(cast.alice, rid, now=NOW)  # nothing fails: it can go to review


@pytest.mark.parametrize(
    "recorded",
    [
        None,  # no such query was ever answered: the file's word only
        ("other-project", "dp"),  # answered, but for another project
        ("this-project", "sdc"),  # answered for this project, but not in DP mode
    ],
)
def test_dp_provenance_the_audit_log_does_not_back_is_checked_as_record_counts(
    db: Database,
    svc: OutputService,  # noqa: F811
    cast: Cast,  # noqa: F811
    recorded: tuple[str, str] | None,
) -> None:
    if recorded is not None:
        where, mode = recorded
        project_id = cast.project.id if where == "this-project" else cast.project.id + 1000
        answered(db, cast, "a1b2c3", project_id=project_id, mode=mode)
    rid = svc.create_request(cast.alice, cast.project.id, title="DP", now=NOW).id
    with pytest.raises(InvalidInput) as err:
        add(svc, cast, rid, dp_result("a1b2c3"))
    assert err.value.reason == "bad_count" and "row 2" in err.value.message
    assert "differentially private" in (err.value.hint or "")
    assert svc.get_request(cast.alice, rid, now=NOW).items == ()


def test_a_table_without_dp_provenance_keeps_the_count_checks(
    db: Database,
    svc: OutputService,  # noqa: F811
    cast: Cast,  # noqa: F811
) -> None:
    answered(db, cast, "a1b2c3", project_id=cast.project.id, mode="dp")
    rid = svc.create_request(cast.alice, cast.project.id, title="SDC", now=NOW).id
    with pytest.raises(InvalidInput) as err:
        add(svc, cast, rid, b"region,n\nnorth,412\nsouth,-37\n", name="t.csv")
    assert err.value.reason == "bad_count"
    add(svc, cast, rid, b"region,n\nnorth,412\neast,3\n", name="t.csv")
    [item] = svc.get_request(cast.alice, rid, now=NOW).items
    assert item.check.status.value == "fail" and item.check.cells["threshold"] == [[1, 1]]
