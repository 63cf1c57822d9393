"""Dataset policies: the contract's example parses, defaults are filled in, every error names
the file and the key and says how to fix it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ingest_support import HEALTH_POLICY, write_policy
from tre.catalog.policy import (
    RULES,
    AgeBandRule,
    DatasetPolicy,
    PolicyError,
    load_policies,
    load_policy,
    parse_policy,
)

REPO = Path(__file__).resolve().parents[2]


def _policy(**column_changes: Any) -> dict[str, Any]:
    policy = copy.deepcopy(HEALTH_POLICY)
    for name, change in column_changes.items():
        if change is None:
            policy["columns"].pop(name)
        else:
            policy["columns"][name] = change
    return policy


def _error(policy: dict[str, Any], tmp_path: Path) -> PolicyError:
    path = write_policy(tmp_path, policy)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(path) in info.value.message or path.name in info.value.message
    assert info.value.hint
    return info.value


def test_the_example_policy_loads_with_documented_defaults(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, HEALTH_POLICY))
    assert isinstance(policy, DatasetPolicy)
    assert policy.pseudonym_column == "pid"
    cols = policy.columns
    assert cols["diagnosis_chapter"].effective_group_by == "public"
    assert cols["diagnosis_code"].effective_group_by == "threshold"
    assert cols["cost"].effective_group_by == "forbidden"  # floats default to forbidden
    assert cols["cost"].effective_scale == 100
    assert cols["cost"].effective_allow_quantiles is True  # bounded numeric
    assert cols["procedure_code"].effective_allow_quantiles is False
    assert cols["length_of_stay"].effective_group_by == "threshold"
    assert cols["date_of_birth"].output_type == "integer"  # year rule
    assert cols["postcode"].output_type == "category"
    assert cols["nhs_number"].is_dropped
    assert cols["cost"].nullable is False  # nullable defaults to false
    assert policy.output_name("date_of_birth") == "birth_year"
    assert policy.output_name("nhs_number") is None
    assert policy.output_name("region") == "region"


def test_policy_hash_ignores_yaml_formatting(tmp_path: Path) -> None:
    a = load_policy(write_policy(tmp_path / "a", HEALTH_POLICY))
    path = tmp_path / "b" / "health.yaml"
    path.parent.mkdir()
    path.write_text("# a comment\n" + yaml.safe_dump(HEALTH_POLICY, default_flow_style=True))
    assert load_policy(path).policy_hash() == a.policy_hash()
    changed = _policy(cost={"class": "attribute", "type": "float", "bounds": [0, 1]})
    assert parse_policy(changed, "x").policy_hash() != a.policy_hash()


def test_bounds_in_the_wrong_order_name_file_and_key(tmp_path: Path) -> None:
    err = _error(_policy(cost={"class": "attribute", "type": "float", "bounds": [10, 5]}), tmp_path)
    assert err.message.endswith(
        "health.yaml: columns.cost.bounds: lower bound 10 is above upper bound 5"
    )
    assert err.key == "columns.cost.bounds"


def test_unknown_generalisation_rule_lists_the_known_rules(tmp_path: Path) -> None:
    postcode = {
        "class": "quasi_identifier",
        "type": "string",
        "generalise": {"rule": "postcode_sector"},
    }
    err = _error(_policy(postcode=postcode), tmp_path)
    assert "columns.postcode.generalise.rule: unknown generalisation rule 'postcode_sector'" in (
        err.message
    )
    assert err.hint is not None
    for rule in RULES:
        assert rule in err.hint
    assert "postcode_district" in err.hint  # the close match is suggested


@pytest.mark.parametrize(
    ("column", "spec", "key", "words"),
    [
        (
            "cost",
            {"class": "attribute", "type": "float", "bouns": [0, 1]},
            "columns.cost.bouns",
            "unknown key",
        ),
        ("cost", {"class": "attribute", "type": "money"}, "columns.cost.type", "Input should be"),
        ("cost", {"class": "secret", "type": "float"}, "columns.cost.class", "Input should be"),
        (
            "cost",
            {"class": "attribute", "type": "float", "bounds": [1]},
            "columns.cost.bounds",
            "two numbers",
        ),
        (
            "cost",
            {"class": "attribute", "type": "float", "categories": ["a"]},
            "columns.cost.categories",
            "only category or string",
        ),
        (
            "cost",
            {"class": "attribute", "type": "float", "scale": 0},
            "columns.cost.scale",
            "greater than or equal to 1",
        ),
        (
            "diagnosis_code",
            {"class": "attribute", "type": "string", "scale": 10},
            "columns.diagnosis_code.scale",
            "float",
        ),
        (
            "diagnosis_code",
            {"class": "attribute", "type": "string", "group_by": "public"},
            "columns.diagnosis_code.group_by",
            "public `categories`",
        ),
        (
            "diagnosis_chapter",
            {"class": "attribute", "type": "category", "categories": ["I", "I"]},
            "columns.diagnosis_chapter.categories",
            "listed twice",
        ),
        (
            "postcode",
            {"class": "quasi_identifier", "type": "string"},
            "columns.postcode.generalise",
            "needs a generalisation rule",
        ),
        (
            "postcode",
            {"class": "quasi_identifier", "type": "string", "generalise": {"rule": "year"}},
            "columns.postcode.generalise.rule",
            "needs a column of type date",
        ),
        (
            "postcode",
            {
                "class": "quasi_identifier",
                "type": "string",
                "generalise": {"rule": "postcode_district", "width": 3},
            },
            "columns.postcode.generalise.width",
            "unknown key",
        ),
        (
            "date_of_birth",
            {
                "class": "quasi_identifier",
                "type": "date",
                "generalise": {"rule": "age_band", "reference_date": "2024-01-01", "width": 0},
            },
            "columns.date_of_birth.generalise.width",
            "greater than or equal to 1",
        ),
        (
            "date_of_birth",
            {
                "class": "quasi_identifier",
                "type": "date",
                "generalise": {"rule": "age_band", "width": 5},
            },
            "columns.date_of_birth.generalise.reference_date",
            "missing",
        ),
        (
            "date_of_birth",
            {
                "class": "quasi_identifier",
                "type": "date",
                "generalise": {
                    "rule": "age_band",
                    "reference_date": "2024-01-01",
                    "width": 5,
                    "top": 92,
                },
            },
            "columns.date_of_birth.generalise.top",
            "multiple of width",
        ),
        (
            "region",
            {
                "class": "quasi_identifier",
                "type": "category",
                "generalise": {"rule": "rare_to_other", "min_count": 0},
            },
            "columns.region.generalise.min_count",
            "greater than or equal to 1",
        ),
        (
            "nhs_number",
            {"class": "direct_identifier", "type": "string", "bounds": [0, 1]},
            "columns.nhs_number.bounds",
            "never released",
        ),
        (
            "cost",
            {"class": "attribute", "type": "float", "generalise": {"rule": "keep"}},
            "columns.cost.generalise",
            "only quasi_identifier",
        ),
        (
            "cost",
            {"class": "attribute", "type": "float", "output": "money"},
            "columns.cost.output",
            "person_identifier",
        ),
        (
            "region",
            {
                "class": "attribute",
                "type": "category",
                "categories": ["a"],
                "group_by": "everything",
            },
            "columns.region.group_by",
            "Input should be",
        ),
    ],
)
def test_column_errors_name_the_key(
    tmp_path: Path, column: str, spec: dict[str, Any], key: str, words: str
) -> None:
    err = _error(_policy(**{column: spec}), tmp_path)
    assert err.key == key, err.message
    assert f": {key}: " in err.message
    assert words in err.message


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"privacy_unit": "nhs_number"}, "privacy_unit", "must have class person_identifier"),
        ({"privacy_unit": "nobody"}, "privacy_unit", "not one of the policy's columns"),
        ({"contribution_limit": 0}, "contribution_limit", "greater than or equal to 1"),
        ({"name": "Health"}, "name", "should match pattern"),
        ({"title": None}, "title", "Input should be a valid string"),
        ({"colums": {}}, "colums", "unknown key"),
    ],
)
def test_top_level_errors_name_the_key(
    tmp_path: Path, change: dict[str, Any], key: str, words: str
) -> None:
    policy = copy.deepcopy(HEALTH_POLICY)
    policy.update(change)
    err = parse_error(policy)
    assert err.key == key, err.message
    assert words in err.message


def parse_error(policy: dict[str, Any]) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(policy, "policies/datasets/health.yaml")
    assert info.value.message.startswith("policies/datasets/health.yaml: ")
    return info.value


def test_missing_required_key_is_named() -> None:
    policy = copy.deepcopy(HEALTH_POLICY)
    del policy["key"]
    err = parse_error(policy)
    assert err.message == "policies/datasets/health.yaml: key: required key is missing"


def test_two_columns_cannot_publish_the_same_name() -> None:
    policy = _policy(
        postcode={
            "class": "quasi_identifier",
            "type": "string",
            "generalise": {"rule": "postcode_district", "output": "region"},
        }
    )
    err = parse_error(policy)
    assert err.key in ("columns.postcode", "columns.region")
    assert "also produced by" in err.message


def test_tre_prefix_is_reserved() -> None:
    policy = _policy(_tre_rank={"class": "attribute", "type": "integer"})
    err = parse_error(policy)
    assert err.key == "columns._tre_rank"
    assert "reserved" in err.message


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "health.yaml"
    path.write_text("name: health\ncolumns: [a, b\ntitle: x\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert "line 3" in info.value.message or "line 2" in info.value.message


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "health.yaml"
    text = yaml.safe_dump(HEALTH_POLICY, sort_keys=False)
    path.write_text(text + "contribution_limit: 99\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert "duplicate key 'contribution_limit'" in info.value.message


def test_file_name_must_match_dataset_name(tmp_path: Path) -> None:
    path = tmp_path / "hospital.yaml"
    path.write_text(yaml.safe_dump(HEALTH_POLICY))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.key == "name"


def test_missing_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nothing.yaml")
    assert "no such policy file" in info.value.message


def test_age_band_labels_form_a_public_list() -> None:
    rule = AgeBandRule(rule="age_band", reference_date="2024-03-31", width=10, top=30)
    assert rule.labels() == ["0-9", "10-19", "20-29", "30+"]
    policy = _policy(
        date_of_birth={
            "class": "quasi_identifier",
            "type": "date",
            "generalise": {
                "rule": "age_band",
                "reference_date": "2024-03-31",
                "width": 10,
                "top": 30,
                "output": "age_band",
            },
        }
    )
    col = parse_policy(policy, "x").columns["date_of_birth"]
    assert col.public_categories == ("0-9", "10-19", "20-29", "30+")
    assert col.effective_group_by == "public"


def test_shipped_policies_load() -> None:
    policies = load_policies(REPO / "policies")
    assert set(policies) >= {"health", "education", "benefits"}
    for policy in policies.values():
        assert policy.columns[policy.privacy_unit].column_class == "person_identifier"
