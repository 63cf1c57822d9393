"""Linear-programming audit of a suppression pattern: what an attacker can learn.

Given only what is published (cells and margins, None/NaN where suppressed) and that values
are ≥ lower, the attacker's tightest interval for a suppressed entry is [min, max] of that entry
over every table agreeing with the published numbers. An entry is recovered when the interval
is a single value.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import lil_matrix

from tre.errors import InternalError


def lp_intervals(
    published: np.ndarray, lower: float = 0.0, *, only: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per suppressed entry (NaN in the extended grid): the attacker's (min, max) bounds.

    `only` (a bool grid) limits the optimisation to some suppressed entries; the others stay NaN.
    """
    rows, cols = published.shape
    hidden = np.isnan(published)
    lo = np.full(published.shape, np.nan)
    hi = np.full(published.shape, np.nan)
    positions = list(zip(*np.nonzero(hidden), strict=True))
    if not positions:
        return lo, hi
    index = {p: k for k, p in enumerate(positions)}
    sr = np.ones(rows)
    sr[-1] = -1
    sc = np.ones(cols)
    sc[-1] = -1
    a_eq = lil_matrix((rows + cols, len(positions)))
    b_eq = np.zeros(rows + cols)
    known = np.where(hidden, 0.0, published)
    for i in range(rows):
        b_eq[i] = -(known[i, :] * sc).sum()
    for j in range(cols):
        b_eq[rows + j] = -(known[:, j] * sr).sum()
    for (i, j), k in index.items():
        a_eq[i, k] = sc[j]
        a_eq[rows + j, k] = sr[i]
    a_csr = a_eq.tocsr()
    bounds = (lower if np.isfinite(lower) else None, None)
    for (i, j), k in index.items():
        if only is not None and not only[i, j]:
            continue
        c = np.zeros(len(positions))
        for sign, out in ((1.0, lo), (-1.0, hi)):
            c[k] = sign
            res = linprog(c, A_eq=a_csr, b_eq=b_eq, bounds=bounds, method="highs")
            if res.status == 3:  # unbounded
                out[i, j] = -sign * np.inf
            elif res.status == 0:
                out[i, j] = sign * res.fun
            else:
                raise InternalError(f"linprog status {res.status} auditing a suppression pattern")
    return lo, hi


def recoverable(published: np.ndarray, lower: float = 0.0, *, tol: float = 1e-7) -> np.ndarray:
    """Suppressed entries whose attacker interval is a single value (bool grid)."""
    lo, hi = lp_intervals(published, lower)
    scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isnan(published), 0, published)))))
    hidden = np.isnan(published)
    return hidden & ((hi - lo) <= tol * scale)
