"""Property-based run over the OpenAPI spec (schemathesis): no request produces a 5xx.

Every operation gets generated requests (valid and invalid bodies, paths and queries) sent
with an admin session (the deepest reach), a researcher's project token and no credentials,
on SQLite and PostgreSQL, over a world with an active project. Deterministic (derandomized)
and bounded so that it runs in well under a minute.
"""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.api_support import Api, active_project, token_for

pytest_plugins = ("tests.governance_fixtures", "tests.api_support")

EXAMPLES_PER_OPERATION = 14


def test_no_request_produces_a_server_error(api: Api) -> None:
    a = api
    project = active_project(a)
    token = token_for(a, "alice", project["id"])
    credentials = [a.headers("admin"), {"Authorization": f"Bearer {token}"}, {}]
    schema = schemathesis.openapi.from_asgi("/openapi.json", a.client.app)
    failures: list[str] = []
    checked = 0
    stats: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
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
            nonlocal checked
            response = case.call(headers=next(turn))  # noqa: B023 - called inside this turn
            checked += 1
            stats[response.status_code] = stats.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} "
                    f"{response.text[:200]}"
                )
            else:
                body = response.json() if response.content else None
                if response.status_code >= 400:
                    assert set(body) == {"error"}, (case.method, case.formatted_path, body)

        check()
    assert checked > 300
    # The run reached the routes' logic, not only the validators: successes and refusals.
    assert stats.get(200, 0) > 10 and stats.get(422, 0) > 10 and stats.get(403, 0) > 10, stats
    assert not failures, "\n".join(failures[:20])
