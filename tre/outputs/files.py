"""Pre-review gates and storage of output files.

Gates (each refusal is an `InvalidInput` naming the file and where, never quoting a value):
the file type must be allowed for the item's kind (SVG refused, as ACRO does), the bytes must
look like that type (PNG/PDF signatures, UTF-8 text), the size and, for tables, the number of
rows must be within the limits, and no column may look like an identifier or a pseudonym — by
its name (pid, person_id, nhs_number, upn, nino, `*_id`, …) or by its values (long hexadecimal
strings, NHS numbers with a valid check digit, National Insurance numbers, unique pupil numbers).

Storage: `<data_root>/outputs/<request id>/objects/<sha256>`, content-addressed, folders 0700
and files 0600 so that nobody but the service account reads them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from tre.errors import InvalidInput, NotFound
from tre.outputs.types import ALLOWED_EXTENSIONS, ItemKind, OutputLimits, Provenance

# Column names that name a person or a record: refused whatever the values are.
IDENTIFIER_NAMES = frozenset(
    {
        "id",
        "pid",
        "person_id",
        "personid",
        "patient_id",
        "nhs_number",
        "nhs_no",
        "nhsnumber",
        "upn",
        "nino",
        "ni_number",
        "pseudonym",
        "pseudo_id",
    }
)
_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{16,}(?![0-9A-Za-z])")
_NHS = re.compile(r"(?<![0-9])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?![0-9])")
_NINO = re.compile(
    # Any two letters (wider than the allocated prefixes, so example numbers like QQ… count).
    r"(?<![A-Za-z0-9])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])",
    re.IGNORECASE,
)
_UPN = re.compile(r"(?<![A-Za-z0-9])[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z](?![A-Za-z0-9])")
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,150}$")

SIGNATURES = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}
BLOCKED = {".svg": "SVG figures can carry scripts and hidden data; export PNG or PDF"}


@dataclass(frozen=True)
class TableData:
    """A table read from an output file: column names and rows (values as read)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    provenance: Provenance | None = None  # when the file is a tre query result


def sha256_bytes(content: bytes) -> str:
    """The hex sha256 of `content`."""
    return hashlib.sha256(content).hexdigest()


def item_name(name: str) -> str:
    """A safe item (file) name: no folders, no hidden files, a known extension."""
    clean = PurePath(name).name
    if clean != name or not _NAME_OK.match(name) or ".." in name:
        raise InvalidInput(
            f"item name {name!r} is not a plain file name",
            reason="bad_item_name",
            hint="Use letters, digits, '.', '_', '-' and spaces, with an extension, e.g. table1.csv.",
        )
    return name


def extension(name: str, kind: ItemKind) -> str:
    """The file's extension, refused unless allowed for `kind`."""
    ext = PurePath(name).suffix.lower()
    if ext in BLOCKED:
        raise InvalidInput(
            f"{name}: {ext} files are not accepted",
            reason="file_type_refused",
            hint=BLOCKED[ext] + ".",
        )
    allowed = ALLOWED_EXTENSIONS[kind]
    if ext not in allowed:
        raise InvalidInput(
            f"{name}: a {kind.value} cannot be a {ext or 'file without extension'}",
            reason="file_type_refused",
            hint=f"A {kind.value} must be one of: {', '.join(sorted(allowed))}.",
        )
    return ext


def check_size(name: str, content: bytes, limits: OutputLimits) -> None:
    """Refuse empty files and files over the size limit."""
    if not content:
        raise InvalidInput(f"{name}: the file is empty", reason="empty_file")
    if len(content) > limits.max_file_bytes:
        raise InvalidInput(
            f"{name}: {len(content)} bytes is over the limit of {limits.max_file_bytes} bytes",
            reason="file_too_large",
            hint="Release a smaller, aggregated output; raw or row-level files cannot leave.",
        )


def check_signature(name: str, ext: str, content: bytes) -> None:
    """Refuse binary files whose bytes are not what their extension says."""
    sig = SIGNATURES.get(ext)
    if sig is not None and not content.startswith(sig):
        raise InvalidInput(
            f"{name}: the file is not a {ext[1:].upper()} file",
            reason="file_type_mismatch",
            hint="Export the figure again in the format its name says.",
        )


def decode_text(name: str, content: bytes) -> str:
    """UTF-8 text, or InvalidInput naming the byte offset."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{name}: not UTF-8 text (byte {exc.start})",
            reason="bad_text",
            hint="Save the file as UTF-8.",
        ) from None


# --- tables -------------------------------------------------------------------------------


def read_table(name: str, ext: str, content: bytes, limits: OutputLimits) -> TableData:
    """Read a CSV, Parquet or JSON table, refusing malformed and over-long tables."""
    if ext == ".csv":
        table = _read_csv(name, content)
    elif ext == ".parquet":
        table = _read_parquet(name, content)
    else:
        table = _read_json(name, content)
    if not table.columns:
        raise InvalidInput(f"{name}: the table has no columns", reason="bad_table")
    if len(set(table.columns)) != len(table.columns):
        raise InvalidInput(
            f"{name}: column names repeat", reason="bad_table", hint="Name every column once."
        )
    if len(table.rows) > limits.max_table_rows:
        raise InvalidInput(
            f"{name}: {len(table.rows)} rows is over the limit of {limits.max_table_rows}",
            reason="too_many_rows",
            hint="Output checkers review aggregated tables; aggregate further or split it.",
        )
    return table


def _read_csv(name: str, content: bytes) -> TableData:
    text = decode_text(name, content)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput(f"{name}: the CSV file has no header", reason="bad_table") from None
    rows: list[tuple[Any, ...]] = []
    for line_no, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise InvalidInput(
                f"{name}: line {line_no} has {len(row)} fields, the header has {len(header)}",
                reason="bad_table",
                hint="Every row of a CSV table needs one field per column.",
            )
        rows.append(tuple(_cell(v) for v in row))
    return TableData(tuple(h.strip() for h in header), tuple(rows))


def _cell(text: str) -> Any:
    """A CSV field as a number when it is one (counts are read as integers)."""
    s = text.strip()
    if s == "":
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return text


def _read_parquet(name: str, content: bytes) -> TableData:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(content))
    except (pa.ArrowException, OSError):
        raise InvalidInput(
            f"{name}: not a readable Parquet file", reason="bad_table", hint="Write it again."
        ) from None
    columns = tuple(table.column_names)
    data = [table.column(c).to_pylist() for c in columns]
    return TableData(columns, tuple(zip(*data, strict=True)) if data else ())


_JSON_HINT = (
    'Give a tre query result, {"columns": [names], "rows": [[...], ...]}, or a list of records '
    "whose values are strings, numbers, booleans or null."
)
_SCALARS = (str, int, float, bool, type(None))


def _bad_json(name: str, path: str, problem: str) -> InvalidInput:
    """A `bad_table` refusal naming the item and the JSON path (never the value found there)."""
    return InvalidInput(f"{name}: {path}: {problem}", reason="bad_table", hint=_JSON_HINT)


def _read_json(name: str, content: bytes) -> TableData:
    text = decode_text(name, content)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno})",
            reason="bad_table",
            hint=_JSON_HINT,
        ) from None
    except (ValueError, RecursionError):
        # Integers longer than Python's digit limit, or nesting deeper than the parser allows.
        raise InvalidInput(
            f"{name}: the JSON holds a number too long or nesting too deep to read",
            reason="bad_table",
            hint=_JSON_HINT,
        ) from None
    try:
        # Lone surrogates (from "\\ud800"-style escapes) are not text: nothing can store them.
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        raise InvalidInput(
            f"{name}: the JSON holds a \\u escape that is not a character (a lone surrogate)",
            reason="bad_table",
            hint="Write the file again as UTF-8 text.",
        ) from None
    if isinstance(doc, list):
        return _json_records(name, doc)
    if isinstance(doc, dict) and "columns" in doc:
        return _json_columns_rows(name, doc)
    raise _bad_json(name, "$", "not a table")


def _json_records(name: str, doc: list[Any]) -> TableData:
    """A list of records: the columns are the keys in order of first appearance."""
    columns: list[str] = []
    seen: set[str] = set()
    for i, record in enumerate(doc):
        if not isinstance(record, dict):
            raise _bad_json(name, f"$[{i}]", "a record must be an object")
        for key, value in record.items():
            if not isinstance(value, _SCALARS):
                raise _bad_json(
                    name,
                    f"$[{i}][{json.dumps(key)}]",
                    "a value must be a string, number, boolean or null",
                )
            if key not in seen:
                seen.add(key)
                columns.append(key)
    return TableData(tuple(columns), tuple(tuple(r.get(c) for c in columns) for r in doc))


def _json_columns_rows(name: str, doc: dict[str, Any]) -> TableData:
    """`{"columns": [...], "rows": [[...], ...]}`, a tre query result's shape."""
    raw_cols = doc["columns"]
    if not isinstance(raw_cols, list):
        raise _bad_json(name, "$.columns", "must be a list of column names")
    cols: list[str] = []
    for j, c in enumerate(raw_cols):
        if isinstance(c, dict):
            c = c.get("name")
            if not isinstance(c, str):
                raise _bad_json(name, f"$.columns[{j}].name", "a column needs a text name")
        elif not isinstance(c, str):
            raise _bad_json(name, f"$.columns[{j}]", 'a column is a name or {"name": …}')
        cols.append(c)
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise _bad_json(name, "$.rows", "'rows' must be a list of rows with one value per column")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(cols):
            raise _bad_json(
                name, f"$.rows[{i}]", "'rows' must be a list of rows with one value per column"
            )
        for j, value in enumerate(row):
            if not isinstance(value, _SCALARS):
                raise _bad_json(
                    name, f"$.rows[{i}][{j}]", "a value must be a string, number, boolean or null"
                )
    provenance = _query_provenance(name, doc) if "query_id" in doc else None
    return TableData(tuple(cols), tuple(tuple(r) for r in rows), provenance)


def _optional_text(name: str, doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad_json(name, f"$.{key}", "must be text or null")
    return value


def _query_provenance(name: str, doc: dict[str, Any]) -> Provenance:
    """The provenance a tre query result carries (`QueryResult.to_json`, plus its report)."""
    query_id = doc["query_id"]
    if not isinstance(query_id, str) or not query_id:
        raise _bad_json(name, "$.query_id", "must be the query's id (text)")
    datasets_raw = doc.get("datasets", [])
    if not isinstance(datasets_raw, list):
        raise _bad_json(name, "$.datasets", "must be a list of {name, version}")
    datasets: list[tuple[str, int]] = []
    for k, d in enumerate(datasets_raw):
        if not isinstance(d, dict):
            raise _bad_json(name, f"$.datasets[{k}]", "must be an object {name, version}")
        if not isinstance(d.get("name"), str):
            raise _bad_json(name, f"$.datasets[{k}].name", "a dataset needs a text name")
        version = d.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise _bad_json(name, f"$.datasets[{k}].version", "must be a whole number")
        datasets.append((d["name"], version))
    plan = doc.get("plan", [])
    if not isinstance(plan, list):
        raise _bad_json(name, "$.plan", "must be a list of text steps")
    for k, step in enumerate(plan):
        if not isinstance(step, str):
            raise _bad_json(name, f"$.plan[{k}]", "a plan step must be text")
    disclosure = doc.get("disclosure")
    if disclosure is not None and not isinstance(disclosure, dict):
        raise _bad_json(name, "$.disclosure", "must be the query's disclosure report or null")
    return Provenance(
        query_id=query_id,
        query=_optional_text(name, doc, "sql"),
        mode=_optional_text(name, doc, "mode"),
        datasets=tuple(datasets),
        plan=tuple(plan),
        disclosure=disclosure,
    )


# --- identifier gate ------------------------------------------------------------------------


def identifier_column_name(column: str) -> bool:
    """True when a column's name says it identifies people or records."""
    norm = re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")
    internal = column.strip().lower().startswith("_tre")  # tre's own per-person columns
    return norm in IDENTIFIER_NAMES or norm.endswith("_id") or internal


def nhs_number_valid(digits: str) -> bool:
    """True when ten digits carry a valid NHS number check digit (modulus 11)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def identifier_kind(text: str) -> str | None:
    """What identifier-like token `text` contains, if any (never returns the token)."""
    if _HEX.search(text):
        return "pseudonyms (long hexadecimal strings)"
    for m in _NHS.finditer(text):
        if nhs_number_valid("".join(m.groups())):
            return "NHS numbers"
    if _NINO.search(text):
        return "National Insurance numbers"
    if _UPN.search(text):
        return "unique pupil numbers"
    return None


def check_identifiers(name: str, table: TableData) -> None:
    """Refuse a table with an identifier-like column name or identifier-like values."""
    for j, column in enumerate(table.columns, start=1):
        if identifier_column_name(column):
            raise InvalidInput(
                f"{name}: column {j} ({column!r}) is named like an identifier",
                reason="identifier_column",
                hint="Outputs hold aggregates only: drop identifier and pseudonym columns.",
            )
    for i, row in enumerate(table.rows, start=1):
        for j, v in enumerate(row, start=1):
            if isinstance(v, bool) or v is None or isinstance(v, float):
                continue
            kind = identifier_kind(str(v))
            if kind is not None:
                raise InvalidInput(
                    f"{name}: column {j} ({table.columns[j - 1]!r}), row {i} holds a value "
                    f"that looks like {kind}",
                    reason="identifier_values",
                    hint="Outputs hold aggregates only: remove identifiers and pseudonyms.",
                )


def check_text_identifiers(name: str, text: str) -> None:
    """Refuse free text or a model summary quoting identifier-like tokens (line named)."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        kind = identifier_kind(line)
        if kind is not None:
            raise InvalidInput(
                f"{name}: line {line_no} holds text that looks like {kind}",
                reason="identifier_values",
                hint="Remove identifiers and pseudonyms from the text.",
            )


# --- storage ---------------------------------------------------------------------------------


class OutputStore:
    """Content-addressed files of output requests under `<data_root>/outputs/`."""

    def __init__(self, data_root: Path):
        self.root = data_root / "outputs"

    def request_dir(self, request_id: int) -> Path:
        """The folder of one request."""
        return self.root / str(request_id)

    def object_path(self, request_id: int, sha256: str) -> Path:
        """Where the bytes with this checksum are kept for this request."""
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a sha256 hex digest")
        return self.request_dir(request_id) / "objects" / sha256

    def bundle_path(self, request_id: int) -> Path:
        """Where the release bundle of a request is written."""
        return self.request_dir(request_id) / "release" / f"output-request-{request_id}.zip"

    def _private_dir(self, path: Path) -> None:
        for p in [
            *reversed(path.relative_to(self.root.parent).parents),
            path.relative_to(self.root.parent),
        ]:
            full = self.root.parent / p
            if full == self.root.parent:
                continue
            full.mkdir(mode=0o700, exist_ok=True)
            if full.is_relative_to(self.root):
                os.chmod(full, 0o700)  # mkdir's mode is masked by the umask

    def put(self, request_id: int, content: bytes) -> tuple[str, bool]:
        """Store `content`; returns (sha256, created) — created is False if it was there."""
        digest = sha256_bytes(content)
        path = self.object_path(request_id, digest)
        if path.exists():
            return digest, False
        self.write_private(path, content)
        return digest, True

    def write_private(self, path: Path, content: bytes) -> None:
        """Write a file readable only by its owner, atomically (temp file + rename)."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def read(self, request_id: int, sha256: str) -> bytes:
        """The stored bytes, verified against their checksum."""
        path = self.object_path(request_id, sha256)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"output file {sha256[:12]}… of request {request_id} is missing"
            ) from None
        if sha256_bytes(content) != sha256:
            raise InvalidInput(
                f"output file {sha256[:12]}… of request {request_id} does not match its checksum",
                reason="file_corrupted",
                hint="The stored file was changed on disk; ask an administrator.",
            )
        return content

    def discard(self, request_id: int, sha256s: Iterable[str]) -> None:
        """Remove objects (used to undo a failed add)."""
        for digest in sha256s:
            self.object_path(request_id, digest).unlink(missing_ok=True)

    def prune(self, request_id: int, keep: Sequence[str]) -> None:
        """Remove objects no item refers to any more."""
        folder = self.request_dir(request_id) / "objects"
        if not folder.is_dir():
            return
        wanted = set(keep)
        for path in folder.iterdir():
            if path.name not in wanted and not path.name.startswith("."):
                path.unlink(missing_ok=True)
