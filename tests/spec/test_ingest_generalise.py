"""Generalisation rules, as tables: raw value in, published value out (docs/datasets.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest

from tre.catalog.policy import RULES, RareToOtherRule
from tre.ingest.generalise import is_row_local, rare_to_other_sql, rule_sql

D = dt.date


def _apply(rule: dict[str, Any], sql_type: str, values: list[Any]) -> list[Any]:
    model = RULES[rule["rule"]].model_validate(rule)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (i INTEGER, v {sql_type})")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    rows = con.execute(f"SELECT {rule_sql('v', model)} FROM t ORDER BY i").fetchall()
    return [r[0] for r in rows]


SPEC: list[tuple[dict[str, Any], str, list[tuple[Any, Any]]]] = [
    (
        {"rule": "year"},
        "DATE",
        [(D(1987, 12, 31), 1987), (D(2000, 1, 1), 2000), (None, None)],
    ),
    (
        {"rule": "year_month"},
        "DATE",
        [(D(2021, 3, 9), "2021-03"), (D(1999, 12, 31), "1999-12"), (None, None)],
    ),
    (
        {"rule": "age_band", "reference_date": "2024-03-31", "width": 5},
        "DATE",
        [
            (D(2024, 3, 31), "0-4"),  # born on the reference date: age 0
            (D(2019, 4, 1), "0-4"),  # 4 years and 364 days
            (D(2019, 3, 31), "5-9"),  # fifth birthday on the reference date
            (D(1984, 6, 15), "35-39"),  # 39, birthday still to come
            (D(1900, 1, 1), "120-124"),
            (None, None),
        ],
    ),
    (
        {"rule": "age_band", "reference_date": "2024-03-31", "width": 10, "top": 80},
        "DATE",
        [(D(1950, 1, 1), "70-79"), (D(1944, 3, 31), "80+"), (D(1920, 1, 1), "80+")],
    ),
    (
        {"rule": "postcode_district"},
        "VARCHAR",
        [
            ("LS6 2AB", "LS6"),
            ("ls6 2ab", "LS6"),
            ("LS62AB", "LS6"),
            (" SW1A 1AA ", "SW1A"),
            ("M1 1AE", "M1"),
            ("B33 8TH", "B33"),
            (None, None),
        ],
    ),
    (
        {"rule": "postcode_area"},
        "VARCHAR",
        [("LS6 2AB", "LS"), ("M1 1AE", "M"), ("sw1a 1aa", "SW"), (None, None)],
    ),
    ({"rule": "keep"}, "VARCHAR", [("WBRI", "WBRI"), (None, None)]),
    ({"rule": "keep"}, "BIGINT", [(7, 7)]),
]


@pytest.mark.parametrize(("rule", "sql_type", "table"), SPEC, ids=lambda x: str(x)[:40])
def test_rule_maps_raw_values_to_published_values(
    rule: dict[str, Any], sql_type: str, table: list[tuple[Any, Any]]
) -> None:
    assert _apply(rule, sql_type, [raw for raw, _ in table]) == [out for _, out in table]


def test_rare_to_other_counts_people_not_rows() -> None:
    # ethnicity | people holding it → published
    #  WBRI     | 3 people          → WBRI
    #  GRTH     | 1 person, 5 rows  → other   (rows do not count, people do)
    #  ABAN     | 2 people          → other   (min_count 3)
    rows = [("p1", "WBRI"), ("p2", "WBRI"), ("p3", "WBRI")]
    rows += [("p4", "GRTH")] * 5 + [("p5", "ABAN"), ("p6", "ABAN"), ("p7", None)]
    con = duckdb.connect()
    con.execute("CREATE TABLE raw (i INTEGER, person VARCHAR, v VARCHAR)")
    con.executemany("INSERT INTO raw VALUES (?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])
    rule = RareToOtherRule(rule="rare_to_other", min_count=3, other="other")
    con.execute(
        "CREATE TABLE keep AS SELECT v FROM raw WHERE v IS NOT NULL GROUP BY v "
        "HAVING count(DISTINCT person) >= 3"
    )
    got = [
        r[0]
        for r in con.execute(
            f"SELECT {rare_to_other_sql('v', rule, 'keep')} FROM raw ORDER BY i"
        ).fetchall()
    ]
    assert got == ["WBRI"] * 3 + ["other"] * 7 + [None]


def test_every_registered_rule_has_sql() -> None:
    for name, model in RULES.items():
        assert is_row_local(model.model_construct()) or name == "rare_to_other"
