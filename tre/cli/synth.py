"""The synth command: write synthetic raw extracts (`tre synth`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tre.synth import DATASETS, DEFAULT_CHUNK_PEOPLE, FORMATS, SynthResult, write_extracts
from tre.synth.extracts import check_datasets


def _parse_datasets(values: list[str] | None) -> tuple[str, ...]:
    if not values:
        return DATASETS
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return check_datasets(names)


def _summary(result: SynthResult, seconds: float) -> Table:
    table = Table(title=f"{result.people:,} people, seed {result.seed}, {seconds:.1f} s")
    table.add_column("dataset")
    table.add_column("rows", justify="right")
    table.add_column("file")
    for extract in result.extracts:
        table.add_row(extract.dataset, f"{extract.rows:,}", str(extract.path))
    return table


def synth(
    out: Path = typer.Option(
        ..., "--out", help="Folder to write <dataset>.csv|parquet into (created if missing)."
    ),
    people: int | None = typer.Option(
        None, "--people", min=1, help="How many people the synthetic population has."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Random seed: the same seed and size give identical files."
    ),
    fmt: str = typer.Option(
        "csv", "--format", help=f"File format: {' or '.join(FORMATS)}.", show_default=True
    ),
    datasets: list[str] | None = typer.Option(
        None,
        "--datasets",
        help=f"Extracts to write, repeated or comma-separated (default: {','.join(DATASETS)}).",
    ),
    health_rows: int | None = typer.Option(
        None,
        "--health-rows",
        min=1,
        help="Instead of --people: grow the population until the health extract has exactly "
        "this many rows (for benchmarks); the other extracts cover the same people.",
    ),
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK_PEOPLE,
        "--chunk-size",
        min=1,
        help="People generated and written at a time; bounds memory, does not change the output.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite extracts that already exist."),
) -> None:
    """Write synthetic raw extracts (education, health, benefits) of one population."""
    names = _parse_datasets(datasets)
    console = Console(stderr=True)
    by_rows = health_rows is not None
    total = health_rows if by_rows else people
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]synth[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("health rows" if by_rows else "people", total=total)

        def on_progress(done: int, rows: Mapping[str, int]) -> None:
            progress.update(task, completed=rows["health"] if by_rows else done)

        result = write_extracts(
            out,
            people=people,
            seed=seed,
            datasets=names,
            fmt=fmt,  # type: ignore[arg-type]  # checked by write_extracts
            chunk_size=chunk_size,
            health_rows=health_rows,
            force=force,
            on_progress=on_progress,
        )
    Console().print(_summary(result, time.perf_counter() - started))


_HELP = (
    "Write synthetic raw extracts (education, health, benefits) of one population.\n\n"
    "The extracts look as custodians hold them: names, dates of birth, postcodes and "
    "identifiers (UPN, NHS number, NINO), plus a shared person_id standing for the linkage "
    "spine. Output is deterministic for --seed and --people. Each file is written under a "
    "temporary name and renamed when complete; existing files are kept unless --force.\n\n"
    "Example: tre synth --people 100000 --seed 1 --out extracts --format parquet"
)


def register(app: typer.Typer) -> None:
    """Add the synth command to the CLI."""
    app.command("synth", help=_HELP)(synth)
