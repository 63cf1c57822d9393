"""Errors about a raw extract: they name file, line (or row) and column, never a value."""

from __future__ import annotations

from tre.errors import InvalidInput


class ExtractError(InvalidInput):
    """The extract does not fit its policy; nothing was published."""

    def __init__(
        self,
        file: str,
        problem: str,
        *,
        hint: str,
        line: int | None = None,
        column: str | None = None,
        unit: str = "line",
        count: int | None = None,
        reason: str = "invalid_extract",
    ):
        where = [file]
        if line is not None:
            where.append(f"{unit} {line}")
        if column is not None:
            where.append(f"column {column}")
        message = f"{', '.join(where)}: {problem}"
        if count is not None and count > 1:
            message += f" ({count} rows have this problem; this is the first)"
        details: dict[str, object] = {"file": file}
        if line is not None:
            details[unit] = line
        if column is not None:
            details["column"] = column
        if count is not None:
            details["count"] = count
        super().__init__(message, reason=reason, hint=hint, details=details)
        self.file = file
        self.line = line
        self.column = column
