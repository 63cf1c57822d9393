"""Property: any JSON document uploaded as a table is either added or refused with a UserError
(never another exception), and a refusal leaves the request as it was (SQLite and PostgreSQL).

The same documents run through the reader and checks alone, many more of them, in
tests/unit/test_outputs_json_tables.py; here a few go through the whole service."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings

from tests.integration.test_outputs_workflow import NOW, Cast, cast, svc  # noqa: F401
from tests.unit.test_outputs_json_tables import DOCUMENTS, QUERY_RESULT
from tre.db import Database
from tre.errors import UserError
from tre.outputs import OutputService

pytest_plugins = ("tests.governance_fixtures",)


def test_any_json_document_adds_cleanly_or_is_a_user_error(
    db: Database,
    svc: OutputService,  # noqa: F811
    cast: Cast,  # noqa: F811
) -> None:
    rid = svc.create_request(cast.alice, cast.project.id, title="JSON tables", now=NOW).id
    outcomes = {"added": 0, "refused": 0}

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(doc=DOCUMENTS)
    @example(doc=QUERY_RESULT)  # one of each outcome whatever is drawn
    @example(doc={**QUERY_RESULT, "datasets": [{"name": "admissions", "version": "one"}]})
    def upload(doc: Any) -> None:
        before = svc.get_request(cast.alice, rid, now=NOW).items
        try:
            view = svc.add_item(
                cast.alice,
                rid,
                name="t.json",
                kind="table",
                content=json.dumps(doc).encode(),
                context="Whatever the file holds.",
                replace=True,
                now=NOW,
            )
        except UserError as exc:
            assert 400 <= exc.status < 500
            assert svc.get_request(cast.alice, rid, now=NOW).items == before
            outcomes["refused"] += 1
        else:
            assert [i.name for i in view.items] == ["t.json"]
            outcomes["added"] += 1

    upload()
    assert outcomes["added"] and outcomes["refused"]  # both sides of the property were reached
