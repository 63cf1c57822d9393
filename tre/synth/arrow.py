"""Building Arrow string columns from numpy without a Python loop per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def fixed_width_strings(chars: np.ndarray) -> pa.StringArray:
    """A string array from an (n, width) uint8 matrix of ASCII characters, one row per value."""
    chars = np.ascontiguousarray(chars, dtype=np.uint8)
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    array = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)]
    )
    assert isinstance(array, pa.StringArray)
    return array


def labels(values: Sequence[str]) -> pa.StringArray:
    """A small dictionary of labels to `take` from."""
    array = pa.array(list(values), type=pa.string())
    assert isinstance(array, pa.StringArray)
    return array


def take(dictionary: pa.Array, index: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """`dictionary[index]` as a plain Arrow array; null where `valid` is False."""
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pc.take(dictionary, pa.array(np.asarray(index, dtype=np.int32), mask=mask))


def join(*parts: pa.Array, sep: str = "") -> pa.Array:
    """Element-wise concatenation of string arrays with a separator."""
    return pc.binary_join_element_wise(*parts, sep)


def dates(days: np.ndarray) -> pa.Array:
    """A date32 array from numpy datetime64[D] values."""
    return pa.array(np.asarray(days, dtype="datetime64[D]"), type=pa.date32())


def floats(values: np.ndarray, present: np.ndarray | None = None) -> pa.Array:
    """A float64 array; where `present` is False the value is null."""
    v = np.asarray(values, dtype=np.float64)
    if present is None:
        return pa.array(v, type=pa.float64())
    return pa.array(v, type=pa.float64(), mask=~np.asarray(present, dtype=bool))
