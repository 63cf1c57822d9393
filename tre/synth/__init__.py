"""Synthetic cross-government extracts (education, health, benefits) from one population.

`write_extracts` streams the raw extracts as custodians hold them (full of identifiers) to CSV
or Parquet; `generate_tables` builds a small sample in memory. Column contract: docs/datasets.md.
"""

from tre.synth.extracts import (
    DEFAULT_CHUNK_PEOPLE,
    MAX_PEOPLE,
    SynthResult,
    WrittenExtract,
    generate_tables,
    iter_blocks,
    write_extracts,
)
from tre.synth.schema import COLUMNS, DATASETS, arrow_schema
from tre.synth.writers import FORMATS, Format, extract_path

__all__ = [
    "COLUMNS",
    "DATASETS",
    "DEFAULT_CHUNK_PEOPLE",
    "FORMATS",
    "MAX_PEOPLE",
    "Format",
    "SynthResult",
    "WrittenExtract",
    "arrow_schema",
    "extract_path",
    "generate_tables",
    "iter_blocks",
    "write_extracts",
]
