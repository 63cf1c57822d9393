"""For any seed and size, the extracts are reproducible and the first people never change."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tre.synth import generate_tables
from tre.synth.rng import BLOCK_PEOPLE


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    people=st.integers(min_value=1, max_value=BLOCK_PEOPLE + 50),
    more=st.integers(min_value=1, max_value=BLOCK_PEOPLE),
)
def test_same_seed_same_rows_and_more_people_only_append(seed: int, people: int, more: int) -> None:
    small = generate_tables(people, seed=seed, datasets=["health", "benefits"])
    again = generate_tables(people, seed=seed, datasets=["health", "benefits"])
    large = generate_tables(people + more, seed=seed, datasets=["health", "benefits"])
    for name, table in small.items():
        assert table.equals(again[name])
        assert large[name].slice(0, table.num_rows).equals(table)
        people_small = set(table.column("person_id").to_pylist())
        people_large = set(large[name].column("person_id").to_pylist())
        assert people_small <= people_large
        assert len(people_small) <= people
