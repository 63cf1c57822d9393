"""Invariants of the synthetic identifiers and row expansion, for any inputs."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tre.synth.identifiers import (
    NHS_SPACE,
    NINO_PREFIXES,
    nhs_numbers,
    ninos,
    permute_below,
    person_ids,
    upns,
)
from tre.synth.rows import expand

keys = st.integers(min_value=0, max_value=2**64 - 1)
# Distinct person indices anywhere in the supported range (100 million people).
indices = st.lists(
    st.integers(min_value=0, max_value=NHS_SPACE - 1), min_size=1, max_size=300, unique=True
).map(lambda xs: np.array(xs, dtype=np.int64))


@given(modulus=st.integers(min_value=2, max_value=5000), key=keys)
def test_permute_below_is_a_bijection(modulus: int, key: int) -> None:
    image = permute_below(np.arange(modulus), modulus, key)
    assert sorted(image.tolist()) == list(range(modulus))


def _nhs_valid(number: str) -> bool:
    digits = [int(c) for c in number]
    check = 11 - sum(d * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    return check != 10 and (0 if check == 11 else check) == digits[9]


@given(index=indices, key=keys)
def test_nhs_numbers_are_valid_and_distinct(index: np.ndarray, key: int) -> None:
    numbers = nhs_numbers(index, key).to_pylist()
    assert len(set(numbers)) == len(numbers)
    assert all(n[0] in "46" and _nhs_valid(n) for n in numbers)


@given(index=indices, key=keys)
def test_upns_have_valid_check_letters_and_are_distinct(index: np.ndarray, key: int) -> None:
    values = upns(index, key).to_pylist()
    assert len(set(values)) == len(values)
    for upn in values:
        total = sum(int(c) * w for c, w in zip(upn[1:], range(2, 14), strict=True))
        assert upn[0] == "ABCDEFGHJKLMNPQRTUVWXYZ"[total % 23]


@given(index=indices, key=keys)
def test_ninos_follow_the_allocation_rules_and_are_distinct(index: np.ndarray, key: int) -> None:
    values = ninos(index, key).to_pylist()
    assert len(set(values)) == len(values)
    for nino in values:
        assert re.fullmatch(r"[A-Z]{2}\d{6}[A-D]", nino)
        assert nino[:2] in NINO_PREFIXES
        assert nino[0] not in "DFIQUV" and nino[1] not in "DFIOQUV"


@given(index=indices, key=keys)
def test_person_ids_are_distinct_and_well_formed(index: np.ndarray, key: int) -> None:
    values = person_ids(index, key).to_pylist()
    assert len(set(values)) == len(values)
    assert all(re.fullmatch(r"P\d{9}", v) for v in values)


@settings(max_examples=50)
@given(counts=st.lists(st.integers(min_value=0, max_value=12), max_size=60))
def test_expand_gives_each_person_their_rows_in_order(counts: list[int]) -> None:
    person, within = expand(np.array(counts, dtype=np.int64))
    assert np.bincount(person, minlength=len(counts)).tolist() == counts
    expected = [k for c in counts for k in range(c)]
    assert within.tolist() == expected
    assert np.all(np.diff(person) >= 0)
