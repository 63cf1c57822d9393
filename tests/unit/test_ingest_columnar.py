"""The in-memory ingest path's building blocks: sizes, path choice, class counting."""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tre.ingest.columnar import MEMORY_PER_EXTRACT_BYTE, extract_bytes, fits_in_memory, parse_size
from tre.ingest.report import combine_codes, distinct_pair_counts


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MB", 512_000_000),
        ("300KB", 300_000),
        ("4GB", 4_000_000_000),
        ("2GiB", 2 * 2**30),
        ("100", 100),
        ("1.5kB", 1500),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        parse_size("lots")


def test_path_choice_follows_the_extract_size(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_bytes(b"a,b\n" + b"1,2\n" * 1000)
    size = csv.stat().st_size
    assert fits_in_memory(csv, "csv", str(int(size * MEMORY_PER_EXTRACT_BYTE) + 1))
    assert not fits_in_memory(csv, "csv", str(int(size * MEMORY_PER_EXTRACT_BYTE) - 1))
    assert not fits_in_memory(csv, "csv", None)
    gz = tmp_path / "x.csv.gz"
    gz.write_bytes(gzip.compress(csv.read_bytes()))
    assert extract_bytes(gz, "csv") >= size  # the uncompressed size, not the file's


def test_distinct_people_per_code_and_per_combination() -> None:
    rng = np.random.default_rng(3)
    person = rng.integers(0, 500, 20_000)
    a = rng.integers(0, 7, 20_000)
    b = rng.integers(0, 300, 20_000)
    want: dict[tuple[int, int], set[int]] = defaultdict(set)
    for p, x, y in zip(person.tolist(), a.tolist(), b.tolist(), strict=True):
        want[(x, y)].add(p)
    combo, span = combine_codes([(a, 7), (b, 300)], room=64 - 9)
    got = distinct_pair_counts(person, combo, span)
    assert sorted(got[got > 0].tolist()) == sorted(len(s) for s in want.values())
    per_a = distinct_pair_counts(person, a, 7)
    assert per_a.tolist() == [
        len({p for (x, _), s in want.items() if x == v for p in s}) for v in range(7)
    ]
    # Sparse codes with little room: they are renumbered densely, with the same counts.
    sparse = np.array([0, 1_000, 50_000, 900_000, 1_000_000])[a % 5]
    want_sparse: dict[tuple[int, int], set[int]] = defaultdict(set)
    for p, x, y in zip(person.tolist(), sparse.tolist(), b.tolist(), strict=True):
        want_sparse[(x, y)].add(p)
    dense, dense_span = combine_codes([(sparse, 2**20), (b, 300)], room=20)
    assert dense_span < 2**20
    again = distinct_pair_counts(person, dense, dense_span)
    assert sorted(again[again > 0].tolist()) == sorted(len(s) for s in want_sparse.values())


def test_packed_and_general_class_sizes_agree() -> None:
    """The report's one-word path (codes packed beside the person, one sort) and its general
    path (codes combined and renumbered, one count per column) give the same classes."""
    from tre.ingest.report import _classes, _packed_class_sizes

    rng = np.random.default_rng(8)
    person = rng.integers(0, 2_000, 30_000)
    quasi = [
        ("a", rng.integers(0, 3, 30_000), 3),
        ("b", rng.integers(0, 40, 30_000), 40),
        ("c", rng.integers(0, 500, 30_000) % 17, 500),
    ]
    packed = _packed_class_sizes(person, quasi)
    combo, span = combine_codes([(c, k) for _, c, k in quasi], room=20)
    general = [
        _classes(("a", "b", "c"), distinct_pair_counts(person, combo, span)),
        *(_classes((n,), distinct_pair_counts(person, c, k)) for n, c, k in quasi),
    ]
    assert packed == general
    want: dict[tuple[int, ...], set[int]] = defaultdict(set)
    for p, *codes in zip(person.tolist(), *(q[1].tolist() for q in quasi), strict=True):
        want[tuple(codes)].add(p)
    sizes = sorted(len(s) for s in want.values())
    assert (packed[0].classes, packed[0].k) == (len(sizes), sizes[0])
    assert packed[0].people_in_classes_below_5 == sum(n for n in sizes if n < 5)
