"""JSON tables are read strictly: every malformed shape is a 422 `bad_table` naming the item
and the JSON path, never the value found there (it used to be a 500 for some shapes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tre.disclosure import load_preset
from tre.errors import InvalidInput, UserError
from tre.outputs import OutputLimits
from tre.outputs import files as f
from tre.outputs.checks import check_table_item
from tre.outputs.types import CheckResult

LIMITS = OutputLimits()
ACRO = load_preset("acro")
SECRET = "S3CR3T-VALUE"  # placed where the shape is wrong: must never be echoed

QUERY_RESULT: dict[str, Any] = {
    "query_id": "q1",
    "mode": "sdc",
    "sql": "SELECT region, COUNT(*) AS n FROM admissions GROUP BY region",
    "columns": [{"name": "region", "role": "key", "aggregate": None}, {"name": "n"}],
    "rows": [["north", 25], ["south", 14]],
    "plan": ["scan admissions@v1"],
    "datasets": [{"name": "admissions", "version": 1}],
    "disclosure": {"status": "pass"},
    "cost": {"rho": 0.0},
}


def result_with(**changes: Any) -> bytes:
    return json.dumps({**QUERY_RESULT, **changes}).encode()


def test_a_query_result_is_read_with_its_provenance() -> None:
    table = f.read_table("q.json", ".json", result_with(), LIMITS)
    assert table.columns == ("region", "n")
    assert table.provenance is not None
    assert table.provenance.datasets == (("admissions", 1),)
    assert table.provenance.mode == "sdc" and table.provenance.query_id == "q1"


@pytest.mark.parametrize(
    ("content", "path"),
    [
        (
            result_with(datasets=[{"name": "admissions", "version": SECRET}]),
            "$.datasets[0].version",
        ),
        (result_with(datasets=[{"name": "admissions", "version": 1.5}]), "$.datasets[0].version"),
        (result_with(datasets=[{"name": "admissions", "version": True}]), "$.datasets[0].version"),
        (result_with(datasets=[{"version": 1}]), "$.datasets[0].name"),
        (result_with(datasets=[{"name": 7, "version": 1}]), "$.datasets[0].name"),
        (result_with(datasets=[SECRET]), "$.datasets[0]"),
        (result_with(datasets={"name": SECRET}), "$.datasets"),
        (result_with(columns=[{"name": "region"}, {"label": SECRET}]), "$.columns[1].name"),
        (result_with(columns=[{"name": "region"}, {"name": None}]), "$.columns[1].name"),
        (result_with(columns=["region", 5]), "$.columns[1]"),
        (result_with(columns=SECRET), "$.columns"),
        (result_with(rows=SECRET), "$.rows"),
        (result_with(rows=[["north", 25], SECRET]), "$.rows[1]"),
        (result_with(rows=[["north", {"x": SECRET}]]), "$.rows[0][1]"),
        (result_with(query_id=12), "$.query_id"),
        (result_with(query_id=""), "$.query_id"),
        (result_with(plan=[SECRET, 3]), "$.plan[1]"),
        (result_with(plan=SECRET), "$.plan"),
        (result_with(mode=["dp"]), "$.mode"),
        (result_with(sql={"text": SECRET}), "$.sql"),
        (result_with(disclosure=[SECRET]), "$.disclosure"),
        (json.dumps([{"n": 1}, SECRET]).encode(), "$[1]"),
        (json.dumps([{"n": 1}, {"n": [SECRET]}]).encode(), '$[1]["n"]'),
        (json.dumps({"rows": [[SECRET]]}).encode(), "$"),
        (json.dumps(SECRET).encode(), "$"),
    ],
)
def test_malformed_json_tables_name_the_path_not_the_value(content: bytes, path: str) -> None:
    with pytest.raises(InvalidInput) as err:
        f.read_table("q.json", ".json", content, LIMITS)
    assert err.value.reason == "bad_table" and err.value.status == 422
    assert err.value.message.startswith(f"q.json: {path}: "), err.value.message
    assert SECRET not in str(err.value.body())


@pytest.mark.parametrize(
    "content",
    [
        b'{"columns": ["a"], "rows": [["\\ud800"]]}',  # a lone surrogate is not text
        b'{"columns": ["n"], "rows": [[' + b"9" * 5000 + b"]]}",  # over Python's digit limit
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser goes
    ],
)
def test_json_python_cannot_hold_is_refused(content: bytes) -> None:
    with pytest.raises(InvalidInput) as err:
        f.read_table("q.json", ".json", content, LIMITS)
    assert err.value.reason == "bad_table"


def test_a_huge_count_is_checked_not_overflowed() -> None:
    table = f.read_table("t.json", ".json", b'[{"g": "a", "n": 1' + b"0" * 400 + b"}]", LIMITS)
    assert check_table_item("t.json", table, ACRO).status.value == "pass"


COLUMN_NAMES = st.sampled_from(["region", "n", "count", "mean", "person_id", ""]) | st.text(
    max_size=6
)
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | COLUMN_NAMES
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(COLUMN_NAMES, inner, max_size=4),
    max_leaves=25,
)
# Shapes near the accepted ones, so the strict reader's every branch is reached, not just "$".
RECORDS = st.lists(st.dictionaries(COLUMN_NAMES, JSON, max_size=4), max_size=5)
COLUMNS = st.lists(COLUMN_NAMES | st.fixed_dictionaries({}, optional={"name": JSON}) | JSON)
RESULT_DOCS = st.fixed_dictionaries(
    {"columns": COLUMNS | JSON, "rows": st.lists(st.lists(SCALARS | JSON, max_size=3)) | JSON},
    optional={
        "query_id": st.text(max_size=8) | JSON,
        "mode": st.sampled_from(["dp", "sdc"]) | JSON,
        "sql": JSON,
        "plan": st.lists(st.text(max_size=5)) | JSON,
        "datasets": st.lists(
            st.fixed_dictionaries({}, optional={"name": JSON, "version": JSON}), max_size=3
        )
        | JSON,
        "disclosure": st.fixed_dictionaries({}, optional={"status": JSON}) | JSON,
    },
)
DOCUMENTS = JSON | RECORDS | RESULT_DOCS


@settings(max_examples=200, deadline=None)
@given(doc=DOCUMENTS)
def test_any_json_document_is_read_and_checked_or_refused(doc: Any) -> None:
    """What add_item does with a table's bytes: read, identifier gate, checks, stored JSON."""
    content = json.dumps(doc).encode()
    try:
        table = f.read_table("t.json", ".json", content, LIMITS)
        f.check_identifiers("t.json", table)
        check = check_table_item("t.json", table, load_preset("acro"), provenance=table.provenance)
    except UserError as exc:
        assert exc.status == 422
        return
    # What the service stores must serialise and read back.
    assert CheckResult.model_validate_json(check.model_dump_json()) == check
    if table.provenance is not None:
        assert type(table.provenance).model_validate_json(table.provenance.model_dump_json())
