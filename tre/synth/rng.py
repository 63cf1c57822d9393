"""Deterministic random streams: one generator per (seed, stream, block of people).

People are generated in fixed blocks of `BLOCK_PEOPLE`; everything about the people of block b
comes from generators seeded by (seed, stream, b). So the output depends only on the seed and
the number of people, never on how many blocks are written at once (the chunk size), and the
first N people of a seed are the same whatever the total.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

# Large enough that numpy's per-call overhead is small, small enough that tests stay fast.
BLOCK_PEOPLE = 8192


class Stream(IntEnum):
    """Independent random streams, so that leaving a dataset out changes no other dataset."""

    WORLD = 0
    POPULATION = 1
    EDUCATION = 2
    HEALTH = 3
    BENEFITS = 4
    IDENTIFIERS = 5


def block_rng(seed: int, stream: Stream, block: int) -> np.random.Generator:
    """The generator for one stream of one block of people."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(stream), block])))


def world_rng(seed: int) -> np.random.Generator:
    """The generator for the seed's fixed geography (small areas, schools)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(Stream.WORLD)])))


def derived_key(seed: int, name: str) -> int:
    """A 64-bit key for one identifier scheme, derived from the seed."""
    tag = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "big")
    state = np.random.SeedSequence([seed, int(Stream.IDENTIFIERS), tag]).generate_state(
        1, np.uint64
    )
    return int(state[0])
