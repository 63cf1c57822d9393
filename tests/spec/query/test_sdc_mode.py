"""SDC mode, as tables in and tables out: exact aggregates of the bounded data, failing cells
withheld with the rule that fired, complements withheld so that nothing hidden can be
recovered — even with the margins the researcher can ask for in further SDC queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.query_support import CHAPTERS, HEALTH_COLUMNS, FixtureCatalog, grant, publish
from tre.disclosure import recoverable
from tre.query.execute import Limits, Worker
from tre.query.service import QueryService, QuerySettings
from tre.wire.grant import Mode

G = grant("health", modes=(Mode.DP, Mode.SDC))
SEXES = ("F", "M")
# People per (sex, chapter) and each person's cost; one row each unless said otherwise.
SMALL = ("F", "I")  # 4 people, 12 rows: fails the threshold (10 people)
DOMINATED = ("M", "II")  # one person holds 96 % of the total: fails (n,k) and p%


def _rows() -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[float]]]:
    rows: list[dict[str, Any]] = []
    truth: dict[tuple[str, str], list[float]] = {}
    p = 0
    for s in SEXES:
        for c in CHAPTERS:
            if (s, c) == SMALL:
                costs = [102.0, 201.0, 300.0, 402.0]
            elif (s, c) == DOMINATED:
                costs = [4902.0] + [12.0] * 19
            else:
                costs = [99.0 + 9 * i for i in range(20)]  # thirds are exact cents
            truth[(s, c)] = costs
            for cost in costs:
                # Three rows per person (cost split in thirds): contributors are people.
                for rank in (1, 2, 3):
                    rows.append(
                        {
                            "pid": f"p{p:05d}",
                            "sex": s,
                            "diagnosis_chapter": c,
                            "diagnosis_code": "J18.9",
                            "procedure_code": None,
                            "length_of_stay": 3,
                            "cost": cost / 3,
                            "admission_date": dt.date(2020, 1, 1),
                            "_tre_rank": rank,
                        }
                    )
                p += 1
    return rows, truth


ROWS, TRUTH = _rows()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    root = Path(tmp_path_factory.mktemp("sdc"))
    catalog = FixtureCatalog({"health": publish(root, "health", ROWS, HEALTH_COLUMNS, 5)})
    svc = QueryService(
        catalog, None, None, QuerySettings(), worker=Worker(Limits(timeout_seconds=10))
    )
    yield svc
    svc.close()


def _table(service: QueryService, sql: str) -> dict[tuple[Any, ...], tuple[Any, Any]]:
    r = service.run(sql, G, mode=Mode.SDC).to_json()
    nkeys = sum(c["role"] == "key" for c in r["columns"])
    return {
        tuple(row[:nkeys]): (row[nkeys], w[nkeys])
        for row, w in zip(r["rows"], r["withheld"], strict=True)
    }


def test_primary_cells_are_withheld_with_their_rule(service: QueryService) -> None:
    t = _table(
        service,
        "SELECT sex, diagnosis_chapter, SUM(cost) AS s FROM health GROUP BY sex, diagnosis_chapter",
    )
    assert set(t) == {(s, c) for s in SEXES for c in CHAPTERS}  # the whole public grid
    assert t[SMALL] == (None, "threshold")
    value, why = t[DOMINATED]
    assert value is None and why is not None and "nk" in why.split(", ")
    for key, (value, why) in t.items():
        if why is None:  # published cells are exact
            assert value == pytest.approx(sum(TRUTH[key]), abs=1e-9)
        else:
            assert value is None
    # Complements: a row or column with a withheld cell has at least two.
    for s in SEXES:
        assert sum(t[(s, c)][1] is not None for c in CHAPTERS) != 1
    for c in CHAPTERS:
        assert sum(t[(s, c)][1] is not None for s in SEXES) != 1
    assert any(why == "secondary" for _, why in t.values())


def test_nothing_withheld_is_recoverable_from_the_margins_a_researcher_can_ask_for(
    service: QueryService,
) -> None:
    cells = _table(
        service,
        "SELECT sex, diagnosis_chapter, SUM(cost) FROM health GROUP BY sex, diagnosis_chapter",
    )
    by_sex = _table(service, "SELECT sex, SUM(cost) FROM health GROUP BY sex")
    by_chapter = _table(service, "SELECT diagnosis_chapter, SUM(cost) FROM health GROUP BY 1")
    total = _table(service, "SELECT SUM(cost) FROM health")
    grid = np.full((len(SEXES) + 1, len(CHAPTERS) + 1), np.nan)
    for i, s in enumerate(SEXES):
        for j, c in enumerate(CHAPTERS):
            v = cells[(s, c)][0]
            grid[i, j] = np.nan if v is None else v
        v = by_sex[(s,)][0]
        grid[i, -1] = np.nan if v is None else v
    for j, c in enumerate(CHAPTERS):
        v = by_chapter[(c,)][0]
        grid[-1, j] = np.nan if v is None else v
    v = total[()][0]
    grid[-1, -1] = np.nan if v is None else v
    assert np.isnan(grid).sum() >= 4
    assert not recoverable(grid).any()


def test_counts_check_people_and_publish_rows(service: QueryService) -> None:
    t = _table(
        service,
        "SELECT sex, diagnosis_chapter, COUNT(*) AS n, COUNT(DISTINCT pid) AS people "
        "FROM health GROUP BY sex, diagnosis_chapter",
    )
    r = service.run(
        "SELECT sex, diagnosis_chapter, COUNT(*) AS n, COUNT(DISTINCT pid) AS people "
        "FROM health GROUP BY sex, diagnosis_chapter",
        G,
        mode=Mode.SDC,
    )
    rows = {(row[0], row[1]): row for row in r.rows}
    withheld = {(row[0], row[1]): w for row, w in zip(r.rows, r.withheld, strict=True)}
    # 4 people with 12 rows: the threshold counts people, so the cell is withheld in both columns.
    assert rows[SMALL][2:] == (None, None) and withheld[SMALL][2] == "threshold"
    published = [k for k in rows if withheld[k][2] is None]
    assert published
    for k in published:
        assert rows[k][2] == 3 * len(TRUTH[k]) and rows[k][3] == len(TRUTH[k])
    assert t  # the same query again is served (and cached) identically
    assert (
        service.run(
            "SELECT sex, diagnosis_chapter, COUNT(*) AS n, COUNT(DISTINCT pid) AS people "
            "FROM health GROUP BY sex, diagnosis_chapter",
            G,
            mode=Mode.SDC,
        ).rows
        == r.rows
    )


def test_average_is_exact_and_withheld_with_its_sum(service: QueryService) -> None:
    r = service.run(
        "SELECT sex, AVG(cost) AS a FROM health WHERE diagnosis_chapter = 'X' GROUP BY sex",
        G,
        mode=Mode.SDC,
    )
    got = {row[0]: row[1] for row in r.rows}
    for s in SEXES:
        costs = TRUTH[(s, "X")]
        assert got[s] == pytest.approx(sum(costs) / (3 * len(costs)), abs=0.01)  # per row
    assert r.cost.rho == 0 and r.mode == "sdc" and r.disclosure is not None
    assert r.disclosure["policy"] == "acro"


def test_refused_shapes_in_sdc_mode(service: QueryService) -> None:
    from tre.query.errors import QueryRefused

    for sql in (
        "SELECT sex, MEDIAN(cost) FROM health GROUP BY sex",
        "SELECT diagnosis_code, COUNT(*) FROM health GROUP BY diagnosis_code",
        "SELECT sex, diagnosis_chapter, length_of_stay, COUNT(*) FROM health GROUP BY 1, 2, 3",
    ):
        with pytest.raises(QueryRefused) as info:
            service.run(sql, G, mode=Mode.SDC)
        assert info.value.reason == "sdc_not_supported"


def test_binned_keys_joins_and_ctes_in_sdc_mode(service: QueryService) -> None:
    # All stays are 3 days: bins 10, 20, 30 are empty (zeros are disclosive under acro), and
    # the total would give them away unless bin 0 is withheld too.
    t = _table(
        service,
        "SELECT floor(length_of_stay / 10) * 10 AS los, COUNT(*) FROM health GROUP BY los",
    )
    assert set(t) == {(0,), (10,), (20,), (30,)}
    assert all(t[(b,)] == (None, "threshold") for b in (10, 20, 30))
    assert t[(0,)] == (None, "secondary")
    t = _table(
        service,
        "WITH x AS (SELECT pid, sex, CASE WHEN cost > 100 THEN 'high' ELSE 'low' END AS band "
        "FROM health) SELECT sex, band, COUNT(DISTINCT pid) AS people FROM x GROUP BY 1, 2",
    )
    assert len(t) == 4
    for (sex, band), (value, why) in t.items():
        if why is None:
            want = sum(
                sum(1 for x in TRUTH[(sex, c)] if (x / 3 > 100) == (band == "high"))
                for c in CHAPTERS
            )
            assert value == want
