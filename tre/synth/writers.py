"""Stream an extract to CSV or Parquet under a temporary name, renamed into place at the end.

A run that fails or is killed never leaves a partial file under the final name: until `commit`
the data lives in a hidden `.<name>.<random>.partial` file beside it (deleted by `abort`; a
SIGKILL can leave one behind, never the final name). Raw extracts identify people, so files keep
the owner-only mode (0600) the temporary file is created with.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

Format = Literal["csv", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "parquet")

# Values never contain commas, quotes or newlines, so nothing needs quoting ("none" would raise
# if one ever did). Dates are written as ISO dates, booleans as true/false, nulls as empty.
_CSV_OPTIONS = pa_csv.WriteOptions(include_header=True, quoting_style="none", quoting_header="none")


def extract_path(out_dir: Path, dataset: str, fmt: Format) -> Path:
    """Where the extract of `dataset` goes: `<out_dir>/<dataset>.<fmt>`."""
    return Path(out_dir) / f"{dataset}.{fmt}"


class ExtractWriter:
    """Writes one extract chunk by chunk to a temporary file; `commit` renames it into place."""

    def __init__(self, final: Path, schema: pa.Schema, fmt: Format):
        self.final = final
        self.rows = 0
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".partial")
        self.tmp = Path(tmp)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._writer: pa_csv.CSVWriter | pq.ParquetWriter
        try:
            if fmt == "csv":
                self._writer = pa_csv.CSVWriter(self._file, schema, write_options=_CSV_OPTIONS)
            else:
                self._writer = pq.ParquetWriter(self._file, schema, compression="zstd")
        except BaseException:
            self.abort()
            raise

    def write(self, table: pa.Table) -> None:
        """Append rows."""
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def commit(self) -> None:
        """Finish the file, flush it to disk and rename it to its final name."""
        self._writer.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            if hasattr(self, "_writer"):
                self._writer.close()
        except Exception:  # noqa: S110 - the file is being thrown away
            pass
        self._file.close()
        self.tmp.unlink(missing_ok=True)
