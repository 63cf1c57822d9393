"""Spec: for each supported query shape, tre's exact bounded aggregates (before noise) equal a
plain-Python computation of the same question with the same bounding (≤ k rows per person by
`_tre_rank`, values clamped, floats fixed-point), and the released answer has the documented
form (all public keys, empty groups included; thresholded keys only above τ; 95% half-widths)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pyarrow.parquet as pq

from tests.query_support import CHAPTERS, FixtureCatalog, grant
from tre.query.service import QueryService

G = grant("health", "benefits")


def rows(cat: FixtureCatalog, name: str) -> list[dict[str, Any]]:
    dv = cat.get(name)
    limit = dv.contribution_limit
    return [r for r in pq.read_table(dv.files[0]).to_pylist() if r["_tre_rank"] <= limit]


def clamp(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def exact(service: QueryService, sql: str) -> list[tuple[Any, ...]]:
    p = service.prepare(sql, G, rho=1.0)
    return sorted(service.answer(p)[0], key=str)


def test_count_rows_and_people_by_public_key(
    service: QueryService, query_catalog: FixtureCatalog
) -> None:
    got = exact(service, "SELECT sex, COUNT(*), COUNT(DISTINCT pid) FROM health GROUP BY sex")
    want: dict[str, list[Any]] = defaultdict(lambda: [0, set()])
    for r in rows(query_catalog, "health"):
        want[r["sex"]][0] += 1
        want[r["sex"]][1].add(r["pid"])
    assert got == sorted(((k, v[0], len(v[1])) for k, v in want.items()), key=str)


def test_sum_of_a_float_is_exact_in_fixed_point(
    service: QueryService, query_catalog: FixtureCatalog
) -> None:
    got = exact(
        service, "SELECT diagnosis_chapter, SUM(cost) FROM health GROUP BY diagnosis_chapter"
    )
    want: dict[str, int] = defaultdict(int)
    for r in rows(query_catalog, "health"):
        want[r["diagnosis_chapter"]] += round(clamp(r["cost"], 0, 5000) * 100)
    assert got == sorted(want.items(), key=str)


def test_avg_is_a_bounded_sum_and_count(
    service: QueryService, query_catalog: FixtureCatalog
) -> None:
    got = exact(service, "SELECT AVG(length_of_stay) FROM health WHERE sex = 'F'")
    rs = [r for r in rows(query_catalog, "health") if r["sex"] == "F"]
    assert got == [(sum(clamp(r["length_of_stay"], 0, 30) for r in rs), len(rs))]


def test_binned_key_and_case_key(service: QueryService, query_catalog: FixtureCatalog) -> None:
    got = exact(
        service, "SELECT floor(cost / 1000) * 1000 AS band, COUNT(*) FROM health GROUP BY band"
    )
    want: dict[float, int] = defaultdict(int)
    for r in rows(query_catalog, "health"):
        want[math.floor(clamp(r["cost"], 0, 5000) / 1000) * 1000] += 1
    assert [(float(k), n) for k, n in got] == sorted(
        ((float(k), n) for k, n in want.items()), key=str
    )


def test_join_on_pseudonym_multiplies_rows_and_bound(
    service: QueryService, query_catalog: FixtureCatalog
) -> None:
    sql = "SELECT b.benefit_type, COUNT(*) FROM health h JOIN benefits b ON h.pid = b.pid GROUP BY b.benefit_type"
    p = service.prepare(sql, G, rho=1.0)
    assert p.query.bound == 5 * 2
    got = sorted(service.answer(p)[0], key=str)
    bens = defaultdict(list)
    for r in rows(query_catalog, "benefits"):
        bens[r["pid"]].append(r["benefit_type"])
    want: dict[str, int] = defaultdict(int)
    for r in rows(query_catalog, "health"):
        for t in bens.get(r["pid"], []):
            want[t] += 1
    assert got == sorted(want.items(), key=str)


def test_cte_derives_columns_before_aggregation(
    service: QueryService, query_catalog: FixtureCatalog
) -> None:
    sql = (
        "WITH x AS (SELECT pid, CASE WHEN length_of_stay > 7 THEN 'long' ELSE 'short' END AS stay "
        "FROM health WHERE diagnosis_chapter IN ('I', 'IX')) "
        "SELECT stay, COUNT(DISTINCT pid) FROM x GROUP BY stay"
    )
    got = exact(service, sql)
    want: dict[str, set[str]] = defaultdict(set)
    for r in rows(query_catalog, "health"):
        if r["diagnosis_chapter"] in ("I", "IX"):
            want["long" if clamp(r["length_of_stay"], 0, 30) > 7 else "short"].add(r["pid"])
    assert got == sorted(((k, len(v)) for k, v in want.items()), key=str)


def test_all_public_keys_are_released_including_empty_groups(service: QueryService) -> None:
    r = service.run(
        "SELECT diagnosis_chapter, COUNT(*) AS n FROM health WHERE diagnosis_chapter = 'I' "
        "GROUP BY diagnosis_chapter",
        G,
        rho=0.5,
    )
    assert [row[0] for row in r.rows] == list(CHAPTERS)
    assert all(h[1] is not None and h[1] > 0 for h in r.half_widths)


def test_having_on_keys_filters_public_keys(service: QueryService) -> None:
    r = service.run(
        "SELECT diagnosis_chapter AS c, COUNT(*) FROM health GROUP BY c HAVING c <> 'I'", G, rho=0.5
    )
    assert [row[0] for row in r.rows] == [c for c in CHAPTERS if c != "I"]


def test_keys_from_the_data_are_thresholded(service: QueryService) -> None:
    r = service.run(
        "SELECT diagnosis_code, COUNT(*) FROM health GROUP BY diagnosis_code", G, rho=0.5
    )
    assert r.cost.delta > 0
    assert {row[0] for row in r.rows} <= {"J18.9", "I21.0", "K35.8", "Z99.1"}
    assert any("τ" in line for line in r.plan)


def test_median_is_a_candidate_within_bounds(service: QueryService) -> None:
    r = service.run("SELECT sex, MEDIAN(length_of_stay) AS m FROM health GROUP BY sex", G, rho=1.0)
    assert all(0 <= row[1] <= 30 for row in r.rows)


def test_explain_spends_nothing_and_reports_accuracy(service: QueryService) -> None:
    e = service.explain("SELECT sex, COUNT(*) AS n FROM health GROUP BY sex", G, rho=0.1)
    assert e.groups == 2 and e.cost.rho <= 0.1 and e.half_widths[1] is not None
    assert e.cost.epsilon > 0
