"""Secondary (complementary) suppression for 2-D additive tables with published margins.

Method: for every primary-suppressed entry (i, j) of the extended grid, suppress the three other
corners of a rectangle (i, j), (i, j'), (i', j), (i', j') — the cheapest one (by the value it
hides, already suppressed corners being free) whose corners leave room to move the entry by at
least its required protection up and down.

Why this is an exact argument: adding +d to (i, j), with the signs the margins dictate on the
other three corners, changes no published number (each line of the grid gains and loses d), so
every d in [−down, +up] gives another non-negative table consistent with everything published.
The attacker's linear-programming interval for the entry therefore contains
[x − down, x + up], and the other corners (the complements) move with it, so none of them is
unique either. Such a rectangle is a certificate; `verify_certificates` re-checks them all,
and anything uncertified is settled by linear programming (`tre.disclosure.audit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class Pattern:
    """A suppression pattern over the extended grid, with a certificate per suppressed entry."""

    suppressed: np.ndarray  # bool, (R+1, C+1)
    primary: np.ndarray  # bool, (R+1, C+1)
    certificates: dict[tuple[int, int], Rect]


def _signs(size: int) -> np.ndarray:
    """+1 for cells, −1 for the total at the end of a line."""
    out = np.ones(size)
    out[-1] = -1.0
    return out


def rectangle_range(grid: np.ndarray, rect: Rect, lower: float) -> tuple[float, float]:
    """How far entry (i, j) can move up and down along the rectangle, keeping entries ≥ lower."""
    i, j, i2, j2 = rect
    if not np.isfinite(lower):
        return np.inf, np.inf
    sr, sc = _signs(grid.shape[0]), _signs(grid.shape[1])
    d_a = -sc[j] * sc[j2]
    d_b = -sr[i] * sr[i2]
    corners = (
        (grid[i, j2] - lower, d_a),
        (grid[i2, j] - lower, d_b),
        (grid[i2, j2] - lower, d_a * d_b),
    )
    up = min([v for v, d in corners if d < 0], default=np.inf)
    down = min([grid[i, j] - lower] + [v for v, d in corners if d > 0])
    return float(up), float(down)


def required(
    values: np.ndarray, level: float, step: float, lower: float
) -> tuple[np.ndarray, np.ndarray]:
    """Required upward and downward protection of entries with these values."""
    up = np.maximum(level * np.abs(values), step)
    down = np.minimum(up, values - lower) if np.isfinite(lower) else up
    return up, down


def choose_complements(
    grid: np.ndarray,
    primary: np.ndarray,
    *,
    level: float,
    step: float,
    lower: float,
    cost: np.ndarray,
) -> Pattern:
    """Suppress complements until every primary entry has a protecting rectangle."""
    rows, cols = grid.shape
    sr, sc = _signs(rows), _signs(cols)
    suppressed = primary.copy()
    certs: dict[tuple[int, int], Rect] = {}
    inf = np.inf
    room = grid - lower if np.isfinite(lower) else np.full(grid.shape, inf)
    price = np.where(suppressed, 0.0, cost)  # kept up to date: suppressed corners are free
    # The corner signs depend only on whether the primary sits in the margin row/column, so
    # the far corner's limits are computed once per case.
    far: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
    pi, pj = np.nonzero(primary)
    order = np.argsort(-grid[pi, pj], kind="stable")
    need_up, need_down = required(grid[pi, pj], level, step, lower)
    for t in order.tolist():
        i, j = int(pi[t]), int(pj[t])
        d_a = -sc[j] * sc  # sign of (i, j') per j'
        d_b = -sr[i] * sr  # sign of (i', j) per i'
        case = (float(sr[i]), float(sc[j]))
        if case not in far:
            d_d = np.outer(d_b, d_a)
            far[case] = (np.where(d_d < 0, room, inf), np.where(d_d > 0, room, inf))
        far_neg, far_pos = far[case]
        v_a, v_b = room[i, :], room[:, j]
        # Upward, every corner moving down (sign < 0) limits d; downward, those moving up.
        up = np.minimum(
            np.minimum.outer(np.where(d_b < 0, v_b, inf), np.where(d_a < 0, v_a, inf)), far_neg
        )
        down = np.minimum(
            np.minimum.outer(np.where(d_b > 0, v_b, inf), np.where(d_a > 0, v_a, inf)), far_pos
        )
        ok = (up >= need_up[t]) & (down >= need_down[t])
        ok[i, :] = False
        ok[:, j] = False
        total = np.add.outer(price[:, j], price[i, :]) + price
        total[~ok] = inf
        flat = int(np.argmin(total))
        if not np.isfinite(total.flat[flat]):
            continue  # left uncertified: the LP check decides and widens the pattern
        i2, j2 = divmod(flat, cols)
        certs[(i, j)] = (i, j, i2, j2)
        for corner, as_rect in (
            ((i, j2), (i, j2, i2, j)),
            ((i2, j), (i2, j, i, j2)),
            ((i2, j2), (i2, j2, i, j)),
        ):
            suppressed[corner] = True
            price[corner] = 0.0
            certs.setdefault(corner, as_rect)
    return Pattern(suppressed, primary, certs)


def verify_certificates(
    grid: np.ndarray, pattern: Pattern, *, level: float, step: float, lower: float
) -> np.ndarray:
    """Suppressed entries whose certificate is missing or too weak (bool grid)."""
    bad = np.zeros(grid.shape, dtype=bool)
    for i, j in zip(*np.nonzero(pattern.suppressed), strict=True):
        key = (int(i), int(j))
        rect = pattern.certificates.get(key)
        if rect is None:
            bad[key] = True
            continue
        _, _, i2, j2 = rect
        corners = ((i, j2), (i2, j), (i2, j2))
        if i2 == i or j2 == j or not all(pattern.suppressed[c] for c in corners):
            bad[key] = True
            continue
        up, down = rectangle_range(grid, rect, lower)
        if pattern.primary[key]:
            need_up, need_down = required(np.array([grid[key]]), level, step, lower)
            bad[key] = not (up >= need_up[0] and down >= need_down[0])
        else:
            bad[key] = not (up > 0 or down > 0)
    return bad
