"""`manifest.json`: what one published dataset version holds, and how to check it.

Written by ingest next to the Parquet files; read by the catalog. It holds metadata and
aggregate figures only: schema, column classes, row counts, checksums, the policy and its
hash, the key's fingerprint (never the key). The ingest report in it is for the custodian
(it contains the largest number of rows one person has); the catalog's public exports leave it out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tre.catalog.policy import ColumnClass, GroupBy

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestColumn(_Frozen):
    """One published column: its class and type from the policy, its query-side metadata."""

    name: str
    source: str | None = Field(description="The raw column it came from (None for _tre_rank).")
    column_class: ColumnClass | Literal["rank"]
    type: str
    physical_type: str
    nullable: bool
    description: str | None = None
    generalisation: str | None = None
    bounds: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    group_by: GroupBy
    allow_quantiles: bool
    scale: int | None = None


class ManifestFile(_Frozen):
    """One Parquet file of the version."""

    path: str
    sha256: str
    bytes: int
    rows: int
    # The smallest and largest `_tre_rank` in the file (None in manifests written before
    # tre recorded them). Ingest writes rows within the contribution limit and rows beyond it
    # to separate files, so a bounded query can skip the latter and needs no per-row filter.
    min_rank: int | None = None
    max_rank: int | None = None


class SourceInfo(_Frozen):
    """The raw extract a version came from (its name and checksum, no content)."""

    file_name: str
    format: Literal["csv", "parquet"]
    sha256: str
    bytes: int
    rows: int


class KeyRef(_Frozen):
    """Which custodian key made the pseudonyms (the fingerprint, never the key)."""

    name: str
    fingerprint: str


class ClassSizes(_Frozen):
    """k-anonymity of one combination of generalised quasi-identifiers."""

    columns: tuple[str, ...]
    k: int = Field(description="People in the smallest equivalence class.")
    classes: int = Field(description="Distinct combinations of the columns' values.")
    classes_below_5: int
    classes_below_10: int
    people_in_classes_below_5: int = Field(
        description="Memberships of people in classes of fewer than 5 people (a person whose "
        "rows carry several combinations counts once per class)."
    )
    people_in_classes_below_10: int


class RowsPerPerson(_Frozen):
    """The distribution of rows per person."""

    people: int
    rows: int
    mean: float
    p50: int
    p90: int
    p95: int
    p99: int
    max: int
    histogram: tuple[tuple[str, int], ...] = Field(description="(rows-per-person bin, people).")


class IngestReport(_Frozen):
    """What the custodian needs to judge disclosure risk and choose a contribution limit."""

    combination: ClassSizes | None
    per_column: tuple[ClassSizes, ...]
    rows_per_person: RowsPerPerson
    contribution_limit: int
    rows_kept_at_limit: float = Field(description="Share of rows within the policy's limit.")
    suggested_contribution_limit: int
    rows_kept_at_suggestion: float
    suggestion_rule: str


class Manifest(_Frozen):
    """The manifest of one immutable dataset version."""

    format: int = MANIFEST_FORMAT
    dataset: str
    version: int
    title: str
    tre_version: str
    created_at: dt.datetime
    policy_hash: str
    policy: dict[str, Any]
    key: KeyRef
    source: SourceInfo
    row_count: int
    person_count: int
    pseudonym_column: str
    rank_column: str
    contribution_limit: int
    columns: tuple[ManifestColumn, ...]
    files: tuple[ManifestFile, ...]
    report: IngestReport

    def to_json(self) -> str:
        """Canonical JSON text of the manifest."""
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Read `manifest.json` from a version folder (or the file itself)."""
        p = path / MANIFEST_NAME if path.is_dir() else path
        return cls.model_validate_json(p.read_bytes())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
