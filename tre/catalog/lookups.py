"""Public lookup tables from policy: `<policy_dir>/lookups/<name>.yaml`.

A lookup table is a small, public mapping the custodians publish (an ICD-10 chapter's title,
a region's broader area). Queries of any project may join one on its key column; its rows are
written inline in the policy file, so the values tre puts into the sandbox are tre's own
literals, never a file the researcher names. Validation: unique keys, no nulls, every value of
its column's type, at most `MAX_LOOKUP_ROWS` rows; errors name the file and the row.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tre.catalog.policy import PolicyError, _display, check_file_name, read_policy_yaml

log = logging.getLogger("tre.catalog.lookups")

MAX_LOOKUP_ROWS = 10_000
MAX_LOOKUP_TEXT = 200
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_HINT = "See docs/query.md, 'Lookup tables', for the format of policies/lookups/<name>.yaml."

LookupType = Literal["string", "integer", "float", "boolean"]
Value = str | int | float | bool


class _Column(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: LookupType
    description: str = ""


class _LookupFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = Field(min_length=1)
    key: str
    columns: dict[str, _Column] = Field(min_length=2)
    rows: list[list[Any]] = Field(min_length=1, max_length=MAX_LOOKUP_ROWS)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v) or v.startswith("_tre"):
            raise ValueError("use lower-case letters, digits and underscores (≤ 63 characters)")
        return v

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, _Column]) -> dict[str, _Column]:
        for name in v:
            if not _NAME.match(str(name)):
                raise ValueError(
                    f"column name {str(name)[:40]!r}: use lower-case letters, digits and underscores"
                )
        return v


@dataclass(frozen=True)
class LookupTable:
    """One validated public lookup table (frozen: equal tables compare equal)."""

    name: str
    description: str
    key: str
    columns: tuple[tuple[str, LookupType], ...]  # (name, type), the key first
    rows: tuple[tuple[Value, ...], ...]  # in `columns` order (the key first)

    def values(self, column: str) -> tuple[Value, ...]:
        """The distinct values of `column`, in row order (its public categories)."""
        i = [c for c, _ in self.columns].index(column)
        return tuple(dict.fromkeys(r[i] for r in self.rows))


def _check_value(value: Any, typ: LookupType) -> bool:
    if typ == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if typ == "integer":
        return isinstance(value, int)
    if typ == "float":
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, str) and 0 < len(value) <= MAX_LOOKUP_TEXT and "\x00" not in value


def parse_lookup(data: Any, shown: str) -> LookupTable:
    """Validate a parsed lookup file (`shown` names the file in errors)."""
    try:
        f = _LookupFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise PolicyError(shown, key, err["msg"], hint=_HINT) from None
    if f.key not in f.columns:
        raise PolicyError(
            shown, "key", f"the key column {f.key!r} is not one of the columns", hint=_HINT
        )
    names = list(f.columns)
    order = [f.key, *[n for n in names if n != f.key]]
    seen: dict[Value, int] = {}
    rows: list[tuple[Value, ...]] = []
    for i, row in enumerate(f.rows, start=1):
        if len(row) != len(names):
            raise PolicyError(
                shown,
                f"rows[{i}]",
                f"row {i} has {len(row)} values; the columns are {', '.join(names)}",
                hint=_HINT,
            )
        by_name = dict(zip(names, row, strict=True))
        for name in names:
            value, typ = by_name[name], f.columns[name].type
            if value is None:
                raise PolicyError(
                    shown, f"rows[{i}]", f"row {i}: {name} is empty (nulls are not allowed)"
                )
            if not _check_value(value, typ):
                raise PolicyError(
                    shown,
                    f"rows[{i}]",
                    f"row {i}: {name} is not a {typ}"
                    + (f" of 1 to {MAX_LOOKUP_TEXT} characters" if typ == "string" else ""),
                    hint="Quote text values that YAML reads as numbers or booleans (e.g. 'yes').",
                )
        k = by_name[f.key]
        if k in seen:
            raise PolicyError(
                shown,
                f"rows[{i}]",
                f"row {i}: key {f.key} repeats row {seen[k]} (keys must be unique)",
                hint="Each key maps to one row: a join on it never multiplies a person's rows.",
            )
        seen[k] = i
        rows.append(
            tuple(float(by_name[n]) if f.columns[n].type == "float" else by_name[n] for n in order)
        )
    return LookupTable(
        name=f.name,
        description=f.description,
        key=f.key,
        columns=tuple((n, f.columns[n].type) for n in order),
        rows=tuple(rows),
    )


def load_lookup(path: str | Path) -> LookupTable:
    """Read and validate one lookup file; its `name` must equal the file name."""
    p = Path(path)
    shown = _display(p)
    data = read_policy_yaml(p, shown, "lookup", "Write policies/lookups/<name>.yaml first.")
    table = parse_lookup(data, shown)
    check_file_name(p, shown, "lookup", table.name)
    return table


_CACHE: dict[str, tuple[tuple[tuple[str, int, int], ...], dict[str, LookupTable]]] = {}


def load_lookups(folder: str | Path, *, skip_invalid: bool = False) -> dict[str, LookupTable]:
    """Every lookup table in `folder` (`*.yaml`), by name; {} when the folder does not exist.

    Re-read only when a file changes (name, size or modification time), so a service may call
    this per query. `skip_invalid` (the query service): a file that fails validation is logged
    (file, row and problem; never a value) and left out, so one bad file does not stop every
    query; without it the first bad file raises `PolicyError`.
    """
    d = Path(folder)
    paths = sorted(d.glob("*.yaml")) if d.is_dir() else []
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    key = f"{d}|{skip_invalid}"
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return dict(hit[1])
    tables: dict[str, LookupTable] = {}
    for p in paths:
        try:
            tables[p.stem] = load_lookup(p)
        except PolicyError as exc:
            if not skip_invalid:
                raise
            log.error("lookup table left out: %s", exc)
    _CACHE[key] = (stamp, tables)
    return dict(tables)
