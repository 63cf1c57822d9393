"""Spec tables: write a table as text, get Cells; write expected verdicts as text, compare.

A contributions table lists, per cell, the values of its records:
    `45,45,10`   three records          `1*10`    ten records of value 1
    `5*9,None`   nine 5s and a missing  `-`       an empty cell
A count table holds integers (each becomes that many records of value 1).
A verdict table holds `ok` or the flagging rule ids joined by `+` (e.g. `threshold+zero`).
"""

from __future__ import annotations

from tre.disclosure import Cell, DisclosureReport


def _rows(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    lines = [line.split() for line in text.strip("\n").splitlines() if line.strip()]
    header, body = lines[0], lines[1:]
    rows = []
    for line in body:
        assert len(line) == len(header) + 1, f"row {line[0]!r} has {len(line) - 1} cells"
        rows.append((line[0], line[1:]))
    return header, rows


def _values(token: str) -> list[float | None]:
    if token == "-":
        return []
    out: list[float | None] = []
    for part in token.split(","):
        value, _, times = part.partition("*")
        item = None if value == "None" else float(value)
        out.extend([item] * (int(times) if times else 1))
    return out


def contributions(text: str) -> list[Cell]:
    """Cells from a grid of per-record values."""
    header, rows = _rows(text)
    return [
        Cell(r, c, _values(tok)) for r, toks in rows for c, tok in zip(header, toks, strict=True)
    ]


def counts(text: str) -> list[Cell]:
    """Cells from a grid of counts (each record has value 1)."""
    header, rows = _rows(text)
    return [
        Cell(r, c, [1.0] * int(tok))
        for r, toks in rows
        for c, tok in zip(header, toks, strict=True)
    ]


def verdicts(report: DisclosureReport) -> dict[tuple[object, object], str]:
    """The report as {(row, col): 'ok' | 'rule+rule'}."""
    return {(v.row_key, v.col_key): "+".join(v.rules) or "ok" for v in report.cells}


def expected(text: str) -> dict[tuple[object, object], str]:
    """An expected verdict grid as {(row, col): 'ok' | 'rule+rule'}."""
    header, rows = _rows(text)
    return {(r, c): tok for r, toks in rows for c, tok in zip(header, toks, strict=True)}
