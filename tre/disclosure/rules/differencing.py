"""Differencing: a published set nested in (or around) an earlier published set must not
differ from it by 1 .. threshold−1 records.

Sources: SDAP handbook (check outputs against earlier releases), ABS ("differences of less than
ten should not be able to be calculated"), OpenSAFELY (total-vs-subgroup worked example). ACRO
only asks for a manual review; tre checks automatically when the caller supplies the project's
earlier releases as sets of record ids (`Release`), and the cells' own `ids`.

What is compared: every cell of this table and, when margins are published, its row, column
and grand totals, against every set of every earlier release. When one set contains the other,
their difference is a group whose size anyone can compute; if it has 1..t−1 records the cell
fails (for a margin: every cell of that row or column). Overlapping sets that are not nested
do not isolate a group by themselves and are not flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tre.disclosure.model import Release
from tre.disclosure.rules.base import ALL, Context, Rule, always, fail


def _current_sets(ctx: Context, codes: dict[object, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Membership pairs (id code, set index) of this table's cells and published margins."""
    table = ctx.stats
    n_cells = table.n_cells
    rows, cols = table.shape
    per_cell = [
        np.fromiter((codes.setdefault(_plain(x), len(codes)) for x in ids), np.int64, len(ids))
        for ids in table.ids
    ]
    lengths = np.array([len(c) for c in per_cell])
    code = np.concatenate(per_cell) if per_cell else np.empty(0, np.int64)
    cell = np.repeat(np.arange(n_cells), lengths)
    codes_out = [code]
    sets_out = [cell]
    n_sets = n_cells
    if ctx.margins:
        codes_out += [code, code, code]
        sets_out += [
            n_cells + table.row_of[cell],
            n_cells + rows + table.col_of[cell],
            np.full(len(code), n_cells + rows + cols),
        ]
        n_sets += rows + cols + 1
    return np.concatenate(codes_out), np.concatenate(sets_out), n_sets


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _release_sets(
    releases: Sequence[Release], codes: dict[object, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Membership pairs of earlier sets restricted to ids seen in this table, and set sizes."""
    pair_codes: list[int] = []
    pair_sets: list[int] = []
    sizes: list[int] = []
    for release in releases:
        for released in release.sets:
            index = len(sizes)
            sizes.append(len(released.ids))
            for x in released.ids:
                c = codes.get(x)
                if c is not None:
                    pair_codes.append(c)
                    pair_sets.append(index)
    return (
        np.asarray(pair_codes, dtype=np.int64),
        np.asarray(pair_sets, dtype=np.int64),
        np.asarray(sizes, dtype=np.int64),
    )


def flag(ctx: Context) -> np.ndarray:
    """Cells whose published sets are a small difference away from an earlier published set."""
    table = ctx.stats
    out = np.zeros(table.n_cells, dtype=bool)
    if not ctx.releases:
        return out
    codes: dict[object, int] = {}
    cur_code, cur_set, n_cur = _current_sets(ctx, codes)
    # A record counted twice in one set (person-level ids) is still one member.
    key = np.unique(cur_set * max(len(codes), 1) + cur_code)
    cur_set, cur_code = key // max(len(codes), 1), key % max(len(codes), 1)
    cur_size = np.bincount(cur_set, minlength=n_cur)
    rel_code, rel_set, rel_size = _release_sets(ctx.releases, codes)
    if len(rel_code) == 0:
        return out
    rel_key = np.unique(rel_set * len(codes) + rel_code)
    rel_set, rel_code = rel_key // len(codes), rel_key % len(codes)
    order = np.argsort(rel_code, kind="stable")
    rel_code, rel_set = rel_code[order], rel_set[order]
    lo = np.searchsorted(rel_code, cur_code, side="left")
    hi = np.searchsorted(rel_code, cur_code, side="right")
    reps = hi - lo
    pair_cur = np.repeat(cur_set, reps)
    # Index of each expanded pair into rel arrays: lo + position within its run.
    run_start = np.repeat(np.cumsum(reps) - reps, reps)
    pair_rel = rel_set[np.repeat(lo, reps) + np.arange(len(pair_cur)) - run_start]
    n_rel = len(rel_size)
    pairs, inter = np.unique(pair_cur * n_rel + pair_rel, return_counts=True)
    a, b = pairs // n_rel, pairs % n_rel
    size_a, size_b = cur_size[a], rel_size[b]
    diff = np.where(inter == size_b, size_a - inter, -1)  # earlier set inside this one
    diff = np.where(inter == size_a, size_b - inter, diff)  # this set inside the earlier one
    bad = (diff > 0) & (diff < ctx.policy.differencing_threshold)
    flagged_sets = np.unique(a[bad])
    n_cells = table.n_cells
    rows, cols = table.shape
    for s in flagged_sets.tolist():
        if s < n_cells:
            out[s] = True
        elif s < n_cells + rows:
            out |= table.row_of == s - n_cells
        elif s < n_cells + rows + cols:
            out |= table.col_of == s - n_cells - rows
        else:
            out[:] = True
    return out


RULE = Rule(
    id="differencing",
    statistics=ALL,
    enabled=always,
    status=fail,
    parameters=lambda p: {"differencing.threshold": p.differencing_threshold},
    flag=flag,
)
