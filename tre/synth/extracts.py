"""Generate the raw extracts block by block and write them (the engine behind `tre synth`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from tre.errors import Conflict, InvalidInput
from tre.synth.benefits import generate_benefits
from tre.synth.education import generate_education
from tre.synth.health import generate_health
from tre.synth.population import People, generate_people
from tre.synth.rng import BLOCK_PEOPLE
from tre.synth.rows import BlockRows
from tre.synth.schema import DATASETS, arrow_schema
from tre.synth.world import build_world
from tre.synth.writers import FORMATS, ExtractWriter, Format, extract_path

# Identifier spaces bound the population: NHS numbers keep 8 free digits.
MAX_PEOPLE = 100_000_000
# People per write: ~130k people make ~1M rows in all (~150 MB of Arrow data in flight).
DEFAULT_CHUNK_PEOPLE = 131_072

GENERATORS: dict[str, Callable[[People], BlockRows]] = {
    "education": generate_education,
    "health": generate_health,
    "benefits": generate_benefits,
}

ProgressCallback = Callable[[int, Mapping[str, int]], None]


@dataclass(frozen=True)
class WrittenExtract:
    """One extract that was written: its dataset, file and number of rows."""

    dataset: str
    path: Path
    rows: int


@dataclass(frozen=True)
class SynthResult:
    """What `write_extracts` wrote."""

    people: int
    seed: int
    fmt: Format
    extracts: tuple[WrittenExtract, ...]

    def __getitem__(self, dataset: str) -> WrittenExtract:
        for extract in self.extracts:
            if extract.dataset == dataset:
                return extract
        raise KeyError(dataset)


def check_datasets(datasets: Sequence[str]) -> tuple[str, ...]:
    """The requested datasets in canonical order; unknown names are an error."""
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown or not datasets:
        raise InvalidInput(
            f"unknown dataset {unknown[0]!r}" if unknown else "no dataset requested",
            hint=f"Choose from: {', '.join(DATASETS)}.",
        )
    return tuple(d for d in DATASETS if d in datasets)


def _check_size(people: int | None, health_rows: int | None, datasets: Sequence[str]) -> None:
    if (people is None) == (health_rows is None):
        raise InvalidInput(
            "give either the number of people or the number of health rows",
            hint="Use --people N, or --health-rows N to grow the population until the health "
            "extract has N rows.",
        )
    if people is not None and not 1 <= people <= MAX_PEOPLE:
        raise InvalidInput(
            f"people must be between 1 and {MAX_PEOPLE:,}, not {people:,}",
            hint="Choose a population size in that range.",
        )
    if health_rows is not None:
        if health_rows < 1:
            raise InvalidInput("health rows must be at least 1", hint="Use --health-rows 1000.")
        if "health" not in datasets:
            raise InvalidInput(
                "--health-rows needs the health dataset",
                hint="Add health to --datasets, or use --people instead.",
            )


def _check_seed(seed: int) -> None:
    if not 0 <= seed < 2**63:
        raise InvalidInput(
            f"seed must be a non-negative integer below 2**63, not {seed}", hint="Use --seed 42."
        )


def iter_blocks(
    seed: int,
    datasets: Sequence[str],
    people: int | None = None,
    health_rows: int | None = None,
) -> Iterator[tuple[int, dict[str, pa.Table]]]:
    """Each block's rows per dataset, with the number of people generated so far.

    With `health_rows`, blocks continue until the health extract has exactly that many rows;
    the other extracts then cover the same people.
    """
    datasets = check_datasets(datasets)
    _check_size(people, health_rows, datasets)
    _check_seed(seed)
    world = build_world(seed)
    done_people = 0
    health_left = health_rows
    block = 0
    while people is None or done_people < people:
        block_people = generate_people(world, block)
        keep = BLOCK_PEOPLE if people is None else min(BLOCK_PEOPLE, people - done_people)
        tables: dict[str, pa.Table] = {}
        finished = False
        if health_left is not None:
            rows = generate_health(block_people)
            if rows.table.num_rows >= health_left:
                tables["health"], keep = rows.first_rows(health_left)
                finished = True
            else:
                tables["health"] = rows.table
            health_left -= tables["health"].num_rows
        for name in datasets:
            if name not in tables:
                tables[name] = GENERATORS[name](block_people).first_people(keep)
        done_people += keep
        yield done_people, tables
        if finished:
            return
        block += 1
        if done_people >= MAX_PEOPLE:
            raise InvalidInput(
                f"the health extract did not reach {health_rows:,} rows within "
                f"{MAX_PEOPLE:,} people",
                hint="Ask for fewer health rows.",
            )


def generate_tables(
    people: int, seed: int = 0, datasets: Sequence[str] = DATASETS
) -> dict[str, pa.Table]:
    """The extracts of a small population, in memory (for tests and examples)."""
    parts: dict[str, list[pa.Table]] = {d: [] for d in check_datasets(datasets)}
    for _, tables in iter_blocks(seed, datasets, people=people):
        for name, table in tables.items():
            parts[name].append(table)
    return {
        name: pa.concat_tables(chunks).combine_chunks()
        if chunks
        else arrow_schema(name).empty_table()
        for name, chunks in parts.items()
    }


def _prepare_out_dir(out_dir: Path, targets: Sequence[Path], force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(
            f"{out_dir} exists and is not a folder", hint="Choose another --out folder."
        )
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise Conflict(
            f"{', '.join(str(p) for p in existing)} already exist"
            if len(existing) > 1
            else f"{existing[0]} already exists",
            reason="file_exists",
            hint="Pass --force to overwrite, or choose another --out folder.",
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def write_extracts(
    out_dir: Path | str,
    people: int | None = None,
    seed: int = 0,
    datasets: Sequence[str] = DATASETS,
    fmt: Format = "csv",
    chunk_size: int = DEFAULT_CHUNK_PEOPLE,
    *,
    health_rows: int | None = None,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
) -> SynthResult:
    """Write the raw extracts of one synthetic population to `<out_dir>/<dataset>.<fmt>`.

    Deterministic for (seed, people): the chunk size only sets how many people are written at a
    time (and so memory use and Parquet row-group size). Each file appears under its final name
    only once complete; existing files are refused unless `force`.
    """
    names = check_datasets(datasets)
    _check_size(people, health_rows, names)
    _check_seed(seed)
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}", hint=f"Choose from: {', '.join(FORMATS)}.")
    if chunk_size < 1:
        raise InvalidInput("chunk size must be at least 1 person", hint="Use the default.")
    out = Path(out_dir)
    targets = {name: extract_path(out, name, fmt) for name in names}
    _prepare_out_dir(out, list(targets.values()), force)
    blocks_per_chunk = max(1, -(-chunk_size // BLOCK_PEOPLE))

    with contextlib.ExitStack() as stack:
        writers: dict[str, ExtractWriter] = {}
        for name in names:
            writers[name] = ExtractWriter(targets[name], arrow_schema(name), fmt)
            stack.callback(writers[name].abort)
        pending: dict[str, list[pa.Table]] = {name: [] for name in names}

        def flush() -> None:
            for name, chunks in pending.items():
                if chunks:
                    writers[name].write(pa.concat_tables(chunks))
                    chunks.clear()

        done = 0
        for i, (done, tables) in enumerate(iter_blocks(seed, names, people, health_rows), 1):
            for name, table in tables.items():
                pending[name].append(table)
            if i % blocks_per_chunk == 0:
                flush()
            if on_progress is not None:
                rows = {n: writers[n].rows + sum(t.num_rows for t in pending[n]) for n in names}
                on_progress(done, rows)
        flush()
        for writer in writers.values():
            writer.commit()
        stack.pop_all()
    return SynthResult(
        people=done,
        seed=seed,
        fmt=fmt,
        extracts=tuple(WrittenExtract(n, targets[n], writers[n].rows) for n in names),
    )
