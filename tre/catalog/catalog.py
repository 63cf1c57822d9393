"""The catalogue: which datasets and versions are published, their columns, and their checks.

Layout (written by `tre.ingest`): `<datasets_dir>/<name>/v<N>/part-*.parquet` + `manifest.json`.
A folder counts as a version only when it is named `v<N>` and holds a manifest; staging
folders of unfinished ingests (`.staging-*`) are invisible here.

This is the typed API the query layer builds on: `Catalog.get(name)` returns a
`DatasetVersion` with the files, columns (class, type, bounds, categories, group_by, scale),
the contribution limit and the pseudonym and rank columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from tre.catalog.manifest import MANIFEST_NAME, Manifest, ManifestColumn, sha256_file
from tre.catalog.policy import DatasetPolicy
from tre.errors import InternalError, NotFound

VERSION_RE = re.compile(r"^v([1-9][0-9]*)$")
STAGING_PREFIX = ".staging-"
LOCK_NAME = ".lock"
_DATASET_RE = re.compile(r"^[a-z][a-z0-9_]*$")

ColumnInfo = ManifestColumn


def version_dir_name(version: int) -> str:
    """The folder name of a version (`v3`)."""
    return f"v{version}"


def published_versions(dataset_dir: Path) -> dict[int, Path]:
    """Version number → folder, for every published version of one dataset."""
    out: dict[int, Path] = {}
    if not dataset_dir.is_dir():
        return out
    for child in dataset_dir.iterdir():
        m = VERSION_RE.match(child.name)
        if m and (child / MANIFEST_NAME).is_file():
            out[int(m.group(1))] = child
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable published version of a dataset, as the query layer sees it."""

    name: str
    version: int
    path: Path
    files: tuple[Path, ...]
    columns: tuple[ColumnInfo, ...]
    row_count: int
    person_count: int
    contribution_limit: int
    pseudonym_column: str
    rank_column: str
    policy_hash: str
    manifest: Manifest

    @property
    def policy(self) -> DatasetPolicy:
        """The dataset policy this version was ingested under."""
        return DatasetPolicy.model_validate(self.manifest.policy)

    @property
    def title(self) -> str:
        """The dataset's human title."""
        return self.manifest.title

    def column(self, name: str) -> ColumnInfo:
        """One published column by name; NotFound if the version has no such column."""
        for col in self.columns:
            if col.name == name:
                return col
        raise NotFound(
            f"dataset {self.name} v{self.version} has no column {name!r}",
            hint=f"Columns: {', '.join(c.name for c in self.columns)}.",
        )

    @property
    def column_names(self) -> tuple[str, ...]:
        """Published column names, in file order."""
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class Verification:
    """The result of checking a version's files against its manifest."""

    name: str
    version: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every file exists and matches its checksum."""
        return not self.problems


class Catalog:
    """Read-only view of the published datasets under one folder."""

    def __init__(self, datasets_dir: Path):
        self.datasets_dir = Path(datasets_dir)
        self._cache: dict[tuple[str, int], DatasetVersion] = {}

    def datasets(self) -> list[str]:
        """Names of datasets with at least one published version, sorted."""
        if not self.datasets_dir.is_dir():
            return []
        return sorted(
            d.name
            for d in self.datasets_dir.iterdir()
            if _DATASET_RE.match(d.name) and published_versions(d)
        )

    def versions(self, name: str) -> list[int]:
        """Published version numbers of a dataset, ascending (empty if none)."""
        return list(published_versions(self._dataset_dir(name)))

    def latest(self, name: str) -> int:
        """The newest published version number; NotFound if none."""
        versions = self.versions(name)
        if not versions:
            raise NotFound(
                f"no published dataset named {name!r}",
                hint="List datasets with `tre catalog`; custodians publish with `tre ingest`.",
            )
        return versions[-1]

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        """One version (default: the latest) with its files, columns and manifest."""
        v = self.latest(name) if version is None else version
        cached = self._cache.get((name, v))
        if cached is not None:
            return cached
        folder = published_versions(self._dataset_dir(name)).get(v)
        if folder is None:
            raise NotFound(
                f"dataset {name!r} has no version {v}",
                hint=f"Published versions: {', '.join(map(str, self.versions(name))) or 'none'}.",
            )
        try:
            manifest = Manifest.read(folder)
        except (ValidationError, ValueError, OSError) as exc:
            raise InternalError(f"unreadable manifest in {folder}: {type(exc).__name__}") from exc
        dv = DatasetVersion(
            name=name,
            version=v,
            path=folder,
            files=tuple(folder / f.path for f in manifest.files),
            columns=manifest.columns,
            row_count=manifest.row_count,
            person_count=manifest.person_count,
            contribution_limit=manifest.contribution_limit,
            pseudonym_column=manifest.pseudonym_column,
            rank_column=manifest.rank_column,
            policy_hash=manifest.policy_hash,
            manifest=manifest,
        )
        self._cache[(name, v)] = dv
        return dv

    def all_latest(self) -> list[DatasetVersion]:
        """The latest version of every dataset."""
        return [self.get(n) for n in self.datasets()]

    def verify(self, name: str, version: int | None = None) -> Verification:
        """Check every file of a version against its manifest (exists, size, sha256, no extras)."""
        dv = self.get(name, version)
        problems: list[str] = []
        listed = {f.path for f in dv.manifest.files}
        for f in dv.manifest.files:
            p = dv.path / f.path
            if not p.is_file():
                problems.append(f"{f.path}: missing")
                continue
            if p.stat().st_size != f.bytes:
                problems.append(f"{f.path}: size differs from the manifest")
            elif sha256_file(p) != f.sha256:
                problems.append(f"{f.path}: sha256 differs from the manifest")
        for p in sorted(dv.path.iterdir()):
            if p.name != MANIFEST_NAME and p.name not in listed:
                problems.append(f"{p.name}: not listed in the manifest")
        return Verification(name=name, version=dv.version, problems=tuple(problems))

    def _dataset_dir(self, name: str) -> Path:
        if not _DATASET_RE.match(name):
            raise NotFound(f"no published dataset named {name!r}")
        return self.datasets_dir / name
