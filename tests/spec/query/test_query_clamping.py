"""Spec: bounded columns are clamped to their policy bounds in the view, and a missing value
stays missing. Exact aggregates (before noise) equal plain Python over the same bounded rows:
NULL is not counted by COUNT(x), not summed and not averaged, `x IS NULL` finds it; values
outside the bounds (and NaN, which DuckDB orders above every number) are clamped."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.query_support import FixtureCatalog, col, grant, publish
from tre.query.execute import Limits
from tre.query.service import QueryService, QuerySettings

LIMIT = 2
COLUMNS = (
    col("pid", "person_identifier", "string", group_by="forbidden"),
    col("sex", "quasi_identifier", "category", categories=("F", "M"), group_by="public"),
    col("score", "attribute", "float", bounds=(80, 120), group_by="forbidden", nullable=True),
    col("visits", "attribute", "integer", bounds=(0, 10), group_by="forbidden"),
    col("_tre_rank", "rank", "integer", group_by="forbidden"),
)
# (pid, sex, score, visits, rank): rank 3 is beyond the contribution limit and never counted.
ROWS = [
    ("p1", "F", None, 3, 1),
    ("p1", "F", 100.5, 50, 2),
    ("p1", "F", 90.0, 1, 3),
    ("p2", "M", 130.0, -4, 1),
    ("p2", "M", float("nan"), 2, 2),
    ("p3", "F", 60.0, 7, 1),
    ("p4", "M", None, 5, 1),
    ("p4", "M", 110.25, 0, 2),
]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    root = Path(tmp_path_factory.mktemp("clamp"))
    names = [c.name for c in COLUMNS]
    rows = [dict(zip(names, r, strict=True)) for r in ROWS]
    catalog = FixtureCatalog({"scores": publish(root, "scores", rows, COLUMNS, LIMIT)})
    service = QueryService(catalog, None, None, QuerySettings(limits=Limits(timeout_seconds=10)))
    yield service
    service.close()


G = grant("scores", columns={"scores": ("sex", "score", "visits")})


def _bounded() -> list[tuple[Any, ...]]:
    return [r for r in ROWS if r[4] <= LIMIT]


def _clamp(x: float | None, lo: float, hi: float) -> float | None:
    if x is None:
        return None
    if math.isnan(x):
        return hi
    return min(max(x, lo), hi)


def _exact(svc: QueryService, sql: str) -> tuple[tuple[Any, ...], ...]:
    p = svc.prepare(sql, G, rho=1.0)
    return svc.answer(p)[0]


def test_a_missing_value_stays_missing(svc: QueryService) -> None:
    ((n_null, n_value, total),) = _exact(
        svc, "SELECT COUNT(*), COUNT(score), SUM(score) FROM scores WHERE score IS NULL"
    )
    want_null = sum(1 for r in _bounded() if r[2] is None)
    assert want_null == 2
    assert (n_null, n_value, total) == (want_null, 0, None)


def test_sum_count_and_avg_skip_missing_values_and_clamp_the_rest(svc: QueryService) -> None:
    ((total, n, avg_total, avg_n),) = _exact(
        svc, "SELECT SUM(score), COUNT(score), AVG(score) FROM scores"
    )
    values = [_clamp(r[2], 80, 120) for r in _bounded() if r[2] is not None]
    assert n == avg_n == len(values) == 5
    # Fixed point: cents (the column's default scale for floats is 100).
    want = sum(round(v * 100) for v in values if v is not None)
    assert total == avg_total == want


def test_integers_are_clamped_in_the_view(svc: QueryService) -> None:
    got = sorted(_exact(svc, "SELECT sex, SUM(visits), COUNT(visits) FROM scores GROUP BY sex"))
    want: dict[str, list[int]] = {"F": [0, 0], "M": [0, 0]}
    for r in _bounded():
        want[r[1]][0] += int(_clamp(r[3], 0, 10) or 0)
        want[r[1]][1] += 1
    assert got == sorted((k, s, c) for k, (s, c) in want.items())


def test_a_filter_sees_clamped_values(svc: QueryService) -> None:
    ((n,),) = _exact(svc, "SELECT COUNT(*) FROM scores WHERE score >= 120")
    assert n == sum(
        1 for r in _bounded() if r[2] is not None and (_clamp(r[2], 80, 120) or 0) >= 120
    )
