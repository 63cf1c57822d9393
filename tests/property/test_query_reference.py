"""Property: on random small populations and contribution limits, tre's DuckDB engine and
OpenDP's Polars Context agree, for every supported shape, on the bounded aggregates before
noise and on the privacy loss. Few examples: each runs every shape through both engines."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.query_support import CHAPTERS, HEALTH_COLUMNS, FixtureCatalog, publish, shapes
from tests.spec.query.test_reference_engine import assert_agree
from tre.query.service import QueryService

episode = st.fixed_dictionaries(
    {
        "diagnosis_chapter": st.sampled_from(CHAPTERS),
        "length_of_stay": st.integers(0, 40),  # above the policy bound 30: clamped
        "cost": st.floats(0, 6000).map(lambda x: round(x, 2)),
    }
)
person = st.tuples(st.sampled_from(("F", "M")), st.lists(episode, min_size=1, max_size=7))


def table(people: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    rows = []
    for p, (sex, eps) in enumerate(people):
        for r, e in enumerate(eps):
            rows.append(
                {
                    "pid": f"p{p:04d}",
                    "sex": sex,
                    "diagnosis_code": "J18.9",
                    "procedure_code": "W40.1",
                    "admission_date": dt.date(2020, 1, 1),
                    "_tre_rank": r + 1,
                    **e,
                }
            )
    return rows


@pytest.fixture(scope="module")
def worker_service() -> Iterator[dict[str, Any]]:
    holder: dict[str, Any] = {}
    yield holder
    if "svc" in holder:
        holder["svc"].close()


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(people=st.lists(person, min_size=1, max_size=25), limit=st.integers(1, 4))
def test_engines_agree_on_random_populations(
    worker_service: dict[str, Any], people: list[tuple[str, list[dict[str, Any]]]], limit: int
) -> None:
    rows = table(people)
    with tempfile.TemporaryDirectory() as d:
        dv = publish(Path(d), "health", rows, HEALTH_COLUMNS, limit)
        svc = worker_service.get("svc")
        if svc is None:
            svc = worker_service["svc"] = QueryService(FixtureCatalog({}), None, None, worker=None)
        svc.catalog = FixtureCatalog({"health": dv})
        data = pl.DataFrame(rows)
        for shape in shapes(limit):
            assert_agree(svc, data, shape)
