"""The dataset policies describe exactly the extracts `tre synth` writes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tre.catalog.policy import DatasetPolicy, load_policy
from tre.synth import COLUMNS, DATASETS, codes, generate_tables, places

REPO = Path(__file__).resolve().parents[2]
IDENTIFIERS = {
    "education": {"upn", "pupil_name"},
    "health": {"nhs_number", "patient_name"},
    "benefits": {"nino", "claimant_name"},
}
# The generator's reference lists, which the public category lists must equal.
REFERENCE = {
    "sex": codes.SEXES,
    "ethnicity": (*codes.ETHNICITY_CODES, "other"),
    "local_authority": places.LA_CODES,
    "region": places.REGIONS,
    "academic_year": codes.ACADEMIC_YEARS,
    "sen_status": codes.SEN_STATUSES,
    "admission_method": codes.ADMISSION_METHODS,
    "diagnosis_chapter": codes.CHAPTER_NUMERALS,
    "tax_year": codes.TAX_YEARS,
    "benefit_type": codes.BENEFIT_TYPES,
    "employment_status": codes.EMPLOYMENT_STATUSES,
}


@pytest.fixture(scope="module")
def policies() -> dict[str, DatasetPolicy]:
    return {name: load_policy(REPO / "policies" / "datasets" / f"{name}.yaml") for name in DATASETS}


@pytest.fixture(scope="module")
def sample() -> dict[str, pa.Table]:
    return generate_tables(20_000, seed=8)


def test_every_raw_column_is_classified_with_the_contract_type(
    policies: dict[str, DatasetPolicy], sample: dict[str, pa.Table]
) -> None:
    for name, policy in policies.items():
        assert list(sample[name].column_names) == [c.name for c in COLUMNS[name]]
        assert set(policy.columns) == set(sample[name].column_names), name
        for column in COLUMNS[name]:
            rule = policy.columns[column.name]
            assert rule.type == column.type, (name, column.name)
            assert rule.nullable == column.nullable, (name, column.name)


def test_identifiers_and_linkage_settings(policies: dict[str, DatasetPolicy]) -> None:
    for name, policy in policies.items():
        assert policy.key == "spine"  # one custodian key, so the pseudonyms link across datasets
        assert policy.privacy_unit == "person_id"
        assert policy.pseudonym_column == "pid"
        dropped = {c for c, rule in policy.columns.items() if rule.is_dropped}
        assert dropped == IDENTIFIERS[name]
        assert policy.columns["date_of_birth"].generalise.rule == "year"  # type: ignore[union-attr]
        assert policy.columns["postcode"].generalise.rule == "postcode_district"  # type: ignore[union-attr]
    education, health = policies["education"], policies["health"]
    assert education.columns["ethnicity"].generalise.rule == "rare_to_other"  # type: ignore[union-attr]
    for column in ("admission_date", "discharge_date"):
        assert health.columns[column].generalise.rule == "year_month"  # type: ignore[union-attr]


def test_public_category_lists_are_the_generator_lists_and_hold_every_value(
    policies: dict[str, DatasetPolicy], sample: dict[str, pa.Table]
) -> None:
    listed = 0
    for name, policy in policies.items():
        for column, rule in policy.columns.items():
            if rule.categories is None:
                continue
            listed += 1
            assert rule.categories == tuple(REFERENCE[column]), (name, column)
            values = set(pc.unique(sample[name].column(column)).to_pylist())
            assert values <= set(rule.categories), (name, column, values - set(rule.categories))
    assert listed >= 12


def test_numeric_bounds_fit_the_data(
    policies: dict[str, DatasetPolicy], sample: dict[str, pa.Table]
) -> None:
    for name, policy in policies.items():
        for column, rule in policy.columns.items():
            if rule.bounds is None:
                continue
            lo, hi = rule.bounds
            values = sample[name].column(column).drop_null()
            if rule.type == "date":  # bounds of the generalised year
                values = pc.year(values)
            v = np.asarray(values.to_numpy(zero_copy_only=False), dtype=float)
            inside = np.mean((v >= lo) & (v <= hi))
            # Hard ranges hold always; skewed money and stays clip only their outliers.
            skewed = column in ("cost", "annual_earnings", "length_of_stay")
            assert inside >= (0.99 if skewed else 1.0), column
            assert v.min() >= lo, column


def test_contribution_limits_fit_rows_per_person(
    policies: dict[str, DatasetPolicy], sample: dict[str, pa.Table]
) -> None:
    kept = {}
    for name, policy in policies.items():
        per_person = np.array(list(Counter(sample[name].column("person_id").to_pylist()).values()))
        k = policy.contribution_limit
        kept[name] = np.minimum(per_person, k).sum() / per_person.sum()
    assert kept["education"] == 1.0  # nobody has more rows than academic years
    assert kept["benefits"] > 0.99
    assert 0.9 < kept["health"] < 1.0  # the long tail is cut, most rows are kept
