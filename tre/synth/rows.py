"""Helpers for turning people into rows: expansion, inverse-CDF sampling, block results."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True, eq=False)
class BlockRows:
    """One block's rows of one extract; `person` (non-decreasing) is each row's person."""

    table: pa.Table
    person: np.ndarray

    def first_people(self, k: int) -> pa.Table:
        """The rows of the block's first `k` people."""
        stop = int(np.searchsorted(self.person, k, side="left"))
        return self.table.slice(0, stop)

    def first_rows(self, k: int) -> tuple[pa.Table, int]:
        """The first `k` rows and how many of the block's people they touch."""
        k = min(k, self.table.num_rows)
        people = int(self.person[k - 1]) + 1 if k else 0
        return self.table.slice(0, k), people


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For per-person row counts: each row's person and its position among that person's rows."""
    counts = np.asarray(counts, dtype=np.int64)
    person = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    within = np.arange(len(person), dtype=np.int64) - starts[person]
    return person, within


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def pick_rows(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling with one cumulative distribution per row: (n, k) cdf, (n,) u."""
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)


def cumulative(weights: np.ndarray) -> np.ndarray:
    """Row-normalised cumulative distributions of non-negative weights (last column is 1)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum(axis=-1, keepdims=True)
    cdf = np.cumsum(w, axis=-1) / np.where(total > 0, total, 1.0)
    cdf[..., -1] = 1.0
    return cdf
