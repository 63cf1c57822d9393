"""Checks of names against the published catalogue (governance does not import tre.catalog)."""

from __future__ import annotations

from collections.abc import Sequence

from tre.catalog.catalog import Catalog, DatasetVersion
from tre.errors import InvalidInput, NotFound

# Columns no project can be given: identifiers and the per-person rank ingest adds.
UNGRANTABLE_CLASSES = frozenset({"person_identifier", "direct_identifier", "rank"})


def published(
    catalog: Catalog, name: str, *, field: str, version: int | None = None
) -> DatasetVersion:
    """The published dataset (version), or 422 naming the request field that named it."""
    try:
        return catalog.get(name, version)
    except NotFound as exc:
        raise InvalidInput(
            exc.message,
            reason="not_in_catalogue",
            hint=exc.hint or "List the catalogue with GET /datasets.",
            details={"fields": [{"path": field, "message": exc.message, "type": "catalogue"}]},
        ) from None


def check_columns(dv: DatasetVersion, columns: Sequence[str], *, field: str) -> None:
    """Every column is published in `dv` and may be granted, or 422 with the field path."""
    by_name = {c.name: c for c in dv.columns}
    problems = []
    for i, col in enumerate(columns):
        info = by_name.get(col)
        if info is None:
            problems.append(
                {
                    "path": f"{field}.{i}",
                    "message": f"{dv.name} v{dv.version} has no column {col!r}",
                    "type": "catalogue",
                }
            )
        elif info.column_class in UNGRANTABLE_CLASSES:
            problems.append(
                {
                    "path": f"{field}.{i}",
                    "message": f"{dv.name}.{col} is a {info.column_class} column and is never "
                    "granted",
                    "type": "catalogue",
                }
            )
    if problems:
        grantable = [c.name for c in dv.columns if c.column_class not in UNGRANTABLE_CLASSES]
        raise InvalidInput(
            problems[0]["message"],
            reason="bad_columns",
            hint=f"Columns of {dv.name} that can be asked for: {', '.join(grantable)}.",
            details={"fields": problems},
        )
