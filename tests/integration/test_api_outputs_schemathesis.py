"""Generated requests against the output routes only (schemathesis): no 5xx, canonical errors.

The world has a released request, a submitted one and a draft with items, so generated ids
(hypothesis favours small integers) reach real requests and the service's own refusals, not
only the validators. Credentials rotate between the author's project token, a checker's
session, an admin's session and none.
"""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.api_support import Api, active_project, token_for
from tests.integration.test_api_outputs import TABLE, png, upload

pytest_plugins = ("tests.governance_fixtures", "tests.api_support")

EXAMPLES_PER_OPERATION = 25


def test_generated_output_requests_never_produce_a_server_error(api: Api) -> None:
    a = api
    a.create_user("checker2", ["output_checker"])
    project = active_project(a)
    a.bearers["tok"] = token_for(a, "alice", project["id"])
    rids = []
    for _ in range(3):
        body = {"project_id": project["id"], "title": "Admissions"}
        rid = a.ok("POST", "/outputs", "tok", 201, json=body)["id"]
        upload(a, "tok", rid, "admissions.csv", TABLE)
        upload(a, "tok", rid, "a.png", png(), kind="figure", underlying="admissions.csv")
        rids.append(rid)
    for rid in rids[:2]:
        a.ok("POST", f"/outputs/{rid}/submit", "tok")
    a.ok("POST", f"/outputs/{rids[0]}/decision", "checker", json={"decision": "approve"})
    a.ok("POST", f"/outputs/{rids[0]}/decision", "checker2", json={"decision": "approve"})
    a.ok("POST", f"/outputs/{rids[0]}/release", "checker")

    credentials = [a.headers("tok"), a.headers("checker"), a.headers("admin"), {}]
    schema = schemathesis.openapi.from_asgi("/openapi.json", a.client.app).include(
        path_regex="^/outputs"
    )
    failures: list[str] = []
    stats: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        turn = itertools.cycle(credentials)
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @given(case=cases, _=st.just(None))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case, _: None) -> None:
            response = case.call(headers=next(turn))  # noqa: B023 - called inside this turn
            stats[response.status_code] = stats.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} "
                    f"{response.text[:200]}"
                )
            elif response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"}, (case.method, case.formatted_path, body)

        check()
    assert operations == 16, operations
    # The generated requests reached the service: successes and each kind of refusal.
    for status in (200, 403, 404, 422):
        assert stats.get(status, 0) > 5, stats
    assert not failures, "\n".join(failures[:20])
