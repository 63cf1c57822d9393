"""Pre-review gates: file types, signatures, sizes, rows, table shapes and identifiers.

Every refusal names the file and where, and never the offending value.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tre.errors import InvalidInput
from tre.outputs import ItemKind, OutputLimits
from tre.outputs import files as f

LIMITS = OutputLimits(max_file_bytes=1000, max_table_rows=5)


@pytest.mark.parametrize(
    ("name", "kind", "ok"),
    [
        ("t.csv", ItemKind.TABLE, True),
        ("t.CSV", ItemKind.TABLE, True),
        ("t.parquet", ItemKind.TABLE, True),
        ("t.json", ItemKind.TABLE, True),
        ("t.xlsx", ItemKind.TABLE, False),
        ("t.png", ItemKind.TABLE, False),
        ("fig.png", ItemKind.FIGURE, True),
        ("fig.pdf", ItemKind.FIGURE, True),
        ("fig.svg", ItemKind.FIGURE, False),
        ("fig.gif", ItemKind.FIGURE, False),
        ("m.txt", ItemKind.MODEL, True),
        ("m.pkl", ItemKind.MODEL, False),
        ("notes.md", ItemKind.TEXT, True),
        ("notes", ItemKind.TEXT, False),
    ],
)
def test_file_types(name: str, kind: ItemKind, ok: bool) -> None:
    if ok:
        assert f.extension(name, kind) == "." + name.rsplit(".", 1)[1].lower()
    else:
        with pytest.raises(InvalidInput) as err:
            f.extension(name, kind)
        assert err.value.reason == "file_type_refused" and name in err.value.message


def test_svg_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidInput, match="svg") as err:
        f.extension("fig.svg", ItemKind.FIGURE)
    assert err.value.hint and "PNG or PDF" in err.value.hint


@pytest.mark.parametrize("name", ["../t.csv", "a/t.csv", ".hidden.csv", "", "t\n.csv"])
def test_item_names_are_plain(name: str) -> None:
    with pytest.raises(InvalidInput):
        f.item_name(name)


def test_size_and_signature() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        f.check_size("t.csv", b"", LIMITS)
    with pytest.raises(InvalidInput, match="1001 bytes") as err:
        f.check_size("t.csv", b"x" * 1001, LIMITS)
    assert err.value.reason == "file_too_large"
    f.check_size("t.csv", b"x" * 1000, LIMITS)
    with pytest.raises(InvalidInput, match="not a PDF"):
        f.check_signature("f.pdf", ".pdf", b"\x89PNG\r\n\x1a\n")
    f.check_signature("f.pdf", ".pdf", b"%PDF-1.7\n")


def test_tables_in_every_format_read_the_same() -> None:
    csv = b"region,n\nnorth,25\nsouth,\n"
    records = json.dumps([{"region": "north", "n": 25}, {"region": "south", "n": None}]).encode()
    rows = json.dumps({"columns": ["region", "n"], "rows": [["north", 25], ["south", None]]})
    buf = io.BytesIO()
    pq.write_table(pa.table({"region": ["north", "south"], "n": [25, None]}), buf)
    expected = (("region", "n"), (("north", 25), ("south", None)))
    for name, ext, content in [
        ("t.csv", ".csv", csv),
        ("t.json", ".json", records),
        ("t.json", ".json", rows.encode()),
        ("t.parquet", ".parquet", buf.getvalue()),
    ]:
        table = f.read_table(name, ext, content, LIMITS)
        assert (table.columns, table.rows) == expected, name


@pytest.mark.parametrize(
    ("ext", "content", "message"),
    [
        (".csv", b"a,n\nx,1,2\n", "line 2 has 3 fields"),
        (".csv", b"", "no header"),
        (".csv", b"a,a\n1,2\n", "repeat"),
        (".csv", b"a,n\n\xff\xfe,1\n", "not UTF-8"),
        (".csv", b"a,n\n" + b"x,10\n" * 6, "6 rows is over the limit of 5"),
        (".json", b"{", "not valid JSON"),
        (".json", b'{"columns": ["a"], "rows": [[1, 2]]}', "one value per column"),
        (".json", b"42", "not a table"),
        (".parquet", b"PAR1 nope", "not a readable Parquet"),
    ],
)
def test_malformed_tables(ext: str, content: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        f.read_table("t" + ext, ext, content, LIMITS)


@pytest.mark.parametrize(
    ("column", "refused"),
    [
        ("pid", True),
        ("person_id", True),
        ("Person ID", True),
        ("nhs_number", True),
        ("NHS No", True),
        ("upn", True),
        ("nino", True),
        ("household_id", True),
        ("_tre_rank", True),
        ("region", False),
        ("n", False),
        ("idle_minutes", False),
        ("mean_cost", False),
    ],
)
def test_identifier_column_names(column: str, refused: bool) -> None:
    assert f.identifier_column_name(column) is refused


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("9f86d081884c7d65", "pseudonyms"),
        ("ref 9F86D081884C7D659A2FEAA0C55AD015 here", "pseudonyms"),
        ("943 476 5919", "NHS numbers"),
        ("9434765919", "NHS numbers"),
        ("943-476-5919", "NHS numbers"),
        ("AB123456C", "National Insurance"),
        ("ab 12 34 56 c", "National Insurance"),
        ("A12345678901B", "unique pupil"),
        ("9434765918", None),  # wrong NHS check digit
        ("1234567890", None),  # fails the modulus-11 check
        ("9f86d081884c7d6", None),  # 15 hex digits: too short for a pseudonym
        ("north", None),
        ("2024-01-01", None),
        ("12.5", None),
    ],
)
def test_identifier_values(text: str, kind: str | None) -> None:
    found = f.identifier_kind(text)
    assert (found is None) if kind is None else (found is not None and kind in found)


def test_identifier_refusals_name_the_place_never_the_value() -> None:
    table = f.TableData(("region", "n", "ref"), (("north", 25, "x"), ("south", 14, "9434765919")))
    with pytest.raises(InvalidInput) as err:
        f.check_identifiers("t.csv", table)
    assert "column 3 ('ref'), row 2" in err.value.message and "NHS" in err.value.message
    assert "9434765919" not in str(err.value)
    with pytest.raises(InvalidInput) as err:
        f.check_text_identifiers("m.txt", "fine\nalso fine\npatient 9f86d081884c7d659a2f\n")
    assert "line 3" in err.value.message and "9f86d081" not in str(err.value)


def test_counts_as_numbers_are_not_mistaken_for_identifiers() -> None:
    table = f.TableData(("region", "n", "mean"), (("north", 25, 12.5), ("south", 1234567890, 0.1)))
    f.check_identifiers("t.csv", table)


def test_stored_files_are_verified(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    store = f.OutputStore(root)
    digest, created = store.put(7, b"hello")
    assert created and store.put(7, b"hello") == (digest, False)
    assert store.read(7, digest) == b"hello"
    store.object_path(7, digest).write_bytes(b"tampered")
    with pytest.raises(InvalidInput, match="does not match its checksum"):
        store.read(7, digest)
