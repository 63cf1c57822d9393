"""The synthetic extracts follow docs/datasets.md and carry the effects and risks they promise."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tre.synth import COLUMNS, DATASETS, arrow_schema, generate_tables
from tre.synth.population import generate_people
from tre.synth.rng import BLOCK_PEOPLE
from tre.synth.world import build_world

REPO = Path(__file__).resolve().parents[2]
PEOPLE = 12_000
SEED = 5


@pytest.fixture(scope="module")
def sample() -> dict[str, pa.Table]:
    return generate_tables(PEOPLE, seed=SEED)


@pytest.fixture(scope="module")
def rows(sample: dict[str, pa.Table]) -> dict[str, list[dict]]:
    return {name: table.to_pylist() for name, table in sample.items()}


@pytest.fixture(scope="module")
def deciles() -> dict[str, int]:
    """Every person's deprivation decile, by person_id (the extracts do not carry it)."""
    world = build_world(SEED)
    out: dict[str, int] = {}
    for block in range(-(-PEOPLE // BLOCK_PEOPLE)):
        people = generate_people(world, block)
        keep = min(BLOCK_PEOPLE, PEOPLE - block * BLOCK_PEOPLE)
        ids = people.person_id.to_pylist()[:keep]
        out.update(zip(ids, people.decile[:keep].tolist(), strict=True))
    return out


def _contract() -> dict[str, list[tuple[str, str, bool]]]:
    """(column, type, nullable) per dataset, read from the tables in docs/datasets.md."""
    text = (REPO / "docs" / "datasets.md").read_text(encoding="utf-8")
    out: dict[str, list[tuple[str, str, bool]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^### (\w+)", line)
        if heading:
            current = heading.group(1)
            out[current] = []
            continue
        if line.startswith("## "):
            current = None
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if current and line.startswith("|") and cells[0] not in ("column", "---"):
            out[current].append((cells[0], cells[1].split()[0].rstrip(","), "nullable" in cells[1]))
    return out


def test_columns_names_order_and_types_follow_docs_datasets_md(
    sample: dict[str, pa.Table],
) -> None:
    contract = _contract()
    assert set(contract) == set(DATASETS)
    for name in DATASETS:
        ours = [(c.name, c.type, c.nullable) for c in COLUMNS[name]]
        assert ours == contract[name], name
        assert sample[name].schema == arrow_schema(name)
        for column in COLUMNS[name]:
            if not column.nullable:
                assert sample[name].column(column.name).null_count == 0, column.name


def test_every_extract_has_rows_and_people_of_the_right_ages(
    rows: dict[str, list[dict]],
) -> None:
    assert all(rows[name] for name in DATASETS)
    for row in rows["education"]:
        start = int(row["academic_year"][:4])
        born = row["date_of_birth"]
        age_on_31_august = start - born.year - ((born.month, born.day) > (8, 31))
        # Year 1 pupils are 5 at the start of the year, year 11 pupils 15.
        assert age_on_31_august == row["year_group"] + 4
    for row in rows["benefits"]:
        tax_year_start = dt.date(int(row["tax_year"][:4]), 4, 6)
        assert (tax_year_start - row["date_of_birth"]).days >= 16 * 365


def test_key_stage_scores_only_in_their_year_and_within_range(
    rows: dict[str, list[dict]],
) -> None:
    ks2 = [r["ks2_scaled_score"] for r in rows["education"] if r["ks2_scaled_score"] is not None]
    ks4 = [r["ks4_attainment8"] for r in rows["education"] if r["ks4_attainment8"] is not None]
    assert ks2 and ks4
    for row in rows["education"]:
        if row["ks2_scaled_score"] is not None:
            assert row["year_group"] == 6 and 80 <= row["ks2_scaled_score"] <= 120
        if row["ks4_attainment8"] is not None:
            assert row["year_group"] == 11 and 0 <= row["ks4_attainment8"] <= 90


def test_episodes_are_ordered_consistent_and_after_birth(rows: dict[str, list[dict]]) -> None:
    window = (dt.date(2018, 4, 1), dt.date(2024, 3, 31))
    for row in rows["health"]:
        assert row["discharge_date"] >= row["admission_date"] >= row["date_of_birth"]
        assert window[0] <= row["admission_date"] <= window[1]
        assert (row["discharge_date"] - row["admission_date"]).days == row["length_of_stay"]
        assert row["cost"] > 0
        if row["admission_method"] == "maternity":
            assert row["sex"] == "F" and row["diagnosis_chapter"] == "XV"
    last: dict[str, dt.date] = {}
    for row in rows["health"]:
        assert row["admission_date"] >= last.get(row["person_id"], dt.date.min)
        last[row["person_id"]] = row["admission_date"]


def test_identifier_formats(rows: dict[str, list[dict]]) -> None:
    postcode = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]? [0-9][ABD-HJLNP-UW-Z]{2}$")
    for name in DATASETS:
        for row in rows[name]:
            assert re.fullmatch(r"P\d{9}", row["person_id"])
            assert postcode.fullmatch(row["postcode"]), row["postcode"]
    for row in rows["education"]:
        assert re.fullmatch(r"[A-Z]\d{12}", row["upn"])
        assert re.fullmatch(r"\d{6}", row["school_id"])
    for row in rows["health"]:
        assert re.fullmatch(r"[467]\d{9}", row["nhs_number"])
    for row in rows["benefits"]:
        assert re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", row["nino"])


def _nhs_valid(number: str) -> bool:
    digits = [int(c) for c in number]
    check = 11 - sum(d * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == digits[9]


def _upn_valid(upn: str) -> bool:
    total = sum(int(c) * w for c, w in zip(upn[1:], range(2, 14), strict=True))
    return "ABCDEFGHJKLMNPQRTUVWXYZ"[total % 23] == upn[0]


def test_check_characters_are_valid(rows: dict[str, list[dict]]) -> None:
    assert all(_nhs_valid(r["nhs_number"]) for r in rows["health"])
    assert all(_upn_valid(r["upn"]) for r in rows["education"])
    assert not _nhs_valid("4010232137") or not _nhs_valid("4010232138")  # the check bites


def test_linkage_one_person_one_identity_across_extracts(rows: dict[str, list[dict]]) -> None:
    identity: dict[str, tuple] = {}
    identifiers: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    spans = Counter()
    for name, field in (("education", "upn"), ("health", "nhs_number"), ("benefits", "nino")):
        seen = set()
        for row in rows[name]:
            pid = row["person_id"]
            who = (row["date_of_birth"], row["sex"], row["postcode"], row[_name_column(name)])
            assert identity.setdefault(pid, who) == who
            identifiers[field][row[field]].add(pid)
            identifiers[f"{field}_of"][pid].add(row[field])
            seen.add(pid)
        spans.update(seen)
    for field, owners in identifiers.items():
        assert all(len(v) == 1 for v in owners.values()), field  # one-to-one
    # Many people appear in more than one extract, so approved projects can link them.
    assert sum(1 for n in spans.values() if n >= 2) > PEOPLE // 10
    assert any(n == 3 for n in spans.values())


def _name_column(dataset: str) -> str:
    return {"education": "pupil_name", "health": "patient_name", "benefits": "claimant_name"}[
        dataset
    ]


def test_fsm_pupils_score_lower_and_deprived_areas_have_more_fsm(
    rows: dict[str, list[dict]], deciles: dict[str, int]
) -> None:
    ks4 = {True: [], False: []}
    fsm_by_decile = defaultdict(list)
    for row in rows["education"]:
        if row["ks4_attainment8"] is not None:
            ks4[row["fsm_eligible"]].append(row["ks4_attainment8"])
        fsm_by_decile[deciles[row["person_id"]]].append(row["fsm_eligible"])
    assert np.mean(ks4[True]) < np.mean(ks4[False]) - 5
    assert np.mean(fsm_by_decile[1] + fsm_by_decile[2]) > 3 * np.mean(
        fsm_by_decile[9] + fsm_by_decile[10]
    )


def test_more_deprived_people_have_more_admissions_and_lower_attainment(
    rows: dict[str, list[dict]], deciles: dict[str, int]
) -> None:
    episodes = Counter(r["person_id"] for r in rows["health"])
    most = [episodes[p] for p, d in deciles.items() if d <= 3]
    least = [episodes[p] for p, d in deciles.items() if d >= 8]
    assert np.mean(most) > 1.25 * np.mean(least)
    a8 = defaultdict(list)
    for row in rows["education"]:
        if row["ks4_attainment8"] is not None:
            a8[deciles[row["person_id"]] <= 3].append(row["ks4_attainment8"])
    assert np.mean(a8[True]) < np.mean(a8[False]) - 3


def test_episode_counts_are_skewed_with_outliers(
    rows: dict[str, list[dict]], deciles: dict[str, int]
) -> None:
    episodes = Counter(r["person_id"] for r in rows["health"])
    counts = np.array([episodes[p] for p in deciles])
    assert np.mean(counts <= 1) > 0.6  # most people have 0 or 1 episodes
    assert counts.max() >= 30  # a long tail
    stays = np.array([r["length_of_stay"] for r in rows["health"]])
    costs = np.array([r["cost"] for r in rows["health"]])
    assert np.median(stays) <= 2 and stays.max() > 365
    assert costs.max() > 20 * np.median(costs)


def test_rare_categories_and_small_areas_exist(rows: dict[str, list[dict]]) -> None:
    ethnicity = Counter(r["ethnicity"] for r in rows["education"])
    pupils = {r["person_id"]: r["ethnicity"] for r in rows["education"]}
    assert 0 < Counter(pupils.values())["GRTH"] < 0.01 * len(pupils)
    assert ethnicity.most_common(1)[0][0] == "WBRI"
    la = Counter(r["local_authority"] for r in rows["education"])
    assert min(la.values()) < 0.002 * sum(la.values())  # tiny authorities
    homes = {r["person_id"]: r["postcode"] for r in rows["benefits"]}
    districts = Counter(postcode.split()[0] for postcode in homes.values())
    assert sum(1 for n in districts.values() if n < 5) >= 5  # districts with a handful of adults
    # Full postcodes nearly identify people: most adults share theirs with nobody.
    shared = Counter(homes.values())
    assert np.mean([shared[p] == 1 for p in homes.values()]) > 0.5


def test_earnings_and_benefits_follow_status(rows: dict[str, list[dict]]) -> None:
    for row in rows["benefits"]:
        if row["benefit_type"] == "none":
            assert row["weekly_benefit_amount"] == 0
        else:
            assert row["weekly_benefit_amount"] > 0
        if row["benefit_type"] == "pension_credit":
            assert row["employment_status"] == "retired"
        if row["benefit_type"] == "jsa":
            assert row["employment_status"] == "unemployed"
    employed = [
        r["annual_earnings"] for r in rows["benefits"] if r["employment_status"] == "employed"
    ]
    assert 15_000 < np.median(employed) < 45_000
    assert max(employed) > 10 * np.median(employed)  # very high earners
