"""Custodian commands: keys (`tre keys`), ingest (`tre ingest`) and the catalogue (`tre catalog`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from tre.catalog.catalog import Catalog, DatasetVersion
from tre.catalog.dcat import dcat_catalog
from tre.catalog.keys import KeyStore
from tre.catalog.manifest import IngestReport
from tre.catalog.policy import load_policies, load_policy
from tre.config import Settings, load_settings
from tre.errors import InvalidInput

keys_app = typer.Typer(
    help="Custodian keys for pseudonyms: create one (32 random bytes, mode 0600), list them."
)
catalog_app = typer.Typer(
    help="The catalogue of published datasets: list, show one, verify checksums, export DCAT-AP.",
    invoke_without_command=True,
)
out = Console()


def _settings() -> Settings:
    return load_settings()


def _key_store(settings: Settings) -> KeyStore:
    return KeyStore(settings.key_dir, settings.data_root)


# --- keys ----------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="Key name, e.g. `spine` (a policy's `key:`)."),
) -> None:
    """Create a new custodian key; never overwrites an existing one."""
    info = _key_store(_settings()).create(name)
    out.print(f"created key [bold]{info.name}[/] (fingerprint {info.fingerprint}) in {info.path}")
    out.print("Back it up securely: without it, new extracts cannot be linked to old ones.")


@keys_app.command("list")
def keys_list() -> None:
    """List key names and fingerprints (never the keys)."""
    settings = _settings()
    infos = _key_store(settings).list()
    if not infos:
        out.print(f"no keys in {settings.key_dir} (create one with `tre keys create NAME`)")
        return
    table = Table("name", "fingerprint", "file")
    for info in infos:
        table.add_row(info.name, info.fingerprint, str(info.path))
    out.print(table)


# --- ingest --------------------------------------------------------------------------------


def ingest_command(
    dataset: str = typer.Argument(
        ..., help="Dataset name; its policy is <policy_dir>/datasets/<name>.yaml."
    ),
    extract: Path = typer.Argument(..., help="Raw extract: CSV with a header, or Parquet."),
    policy: Path | None = typer.Option(
        None, "--policy", help="Policy file (default: <policy_dir>/datasets/<dataset>.yaml)."
    ),
    memory_limit: str = typer.Option(
        "2500MB", "--memory-limit", help="DuckDB memory limit; beyond it, work spills to disk."
    ),
    in_memory_limit: str = typer.Option(
        "4GB",
        "--in-memory-limit",
        help="Extracts whose estimated peak (about 3 bytes per extract byte) fits this size are "
        "ingested in memory (several times faster); larger ones, or all with 'none', go "
        "through DuckDB's sort, which spills to disk.",
    ),
    threads: int | None = typer.Option(None, "--threads", min=1, help="DuckDB threads."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Validate, pseudonymise and publish a raw extract as the dataset's next version."""
    from tre.ingest.pipeline import IngestOptions, ingest

    in_memory: str | None = None if in_memory_limit.strip().lower() == "none" else in_memory_limit

    settings = _settings()
    policy_path = policy or settings.policy_dir / "datasets" / f"{dataset}.yaml"
    pol = load_policy(policy_path)
    if pol.name != dataset:
        raise InvalidInput(
            f"{policy_path} describes dataset {pol.name!r}, not {dataset!r}",
            hint="Give the policy of this dataset with --policy.",
        )
    result = ingest(
        extract,
        policy_path,
        datasets_dir=settings.datasets_dir,
        key_store=_key_store(settings),
        options=IngestOptions(
            memory_limit=memory_limit,
            in_memory_limit=in_memory,
            threads=threads,
            progress=progress,
        ),
        console=Console(stderr=True),
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "dataset": result.dataset,
                    "version": result.version,
                    "published": result.published,
                    "path": str(result.path),
                    "rows": result.manifest.row_count,
                    "report": result.report.model_dump(mode="json"),
                }
            )
        )
        return
    if result.published:
        out.print(
            f"published [bold]{result.dataset} v{result.version}[/]: "
            f"{result.manifest.row_count:,} rows, {result.manifest.person_count:,} people, "
            f"{len(result.manifest.files)} file(s) in {result.path}"
        )
    else:
        out.print(
            f"already published as [bold]{result.dataset} v{result.version}[/] "
            "(same extract, policy, key and tre version); nothing new was published"
        )
    print_report(result.report, out)


def print_report(report: IngestReport, console: Console) -> None:
    """Render the ingest report: k-anonymity, rows per person, a suggested limit."""
    if report.combination is None:
        console.print("k-anonymity: the policy has no quasi-identifiers")
    else:
        table = Table(title="k-anonymity of the generalised quasi-identifiers (people per class)")
        for col in ("columns", "k", "classes", "< 5", "< 10", "people in < 5", "people in < 10"):
            table.add_column(col, justify="left" if col == "columns" else "right")
        for cs in (report.combination, *report.per_column):
            label = " + ".join(cs.columns) if cs is report.combination else cs.columns[0]
            table.add_row(
                label,
                str(cs.k),
                f"{cs.classes:,}",
                f"{cs.classes_below_5:,}",
                f"{cs.classes_below_10:,}",
                f"{cs.people_in_classes_below_5:,}",
                f"{cs.people_in_classes_below_10:,}",
            )
        console.print(table)
    rpp = report.rows_per_person
    console.print(
        f"rows per person: {rpp.people:,} people, {rpp.rows:,} rows, mean {rpp.mean:.2f}, "
        f"median {rpp.p50}, p90 {rpp.p90}, p95 {rpp.p95}, p99 {rpp.p99}, max {rpp.max}"
    )
    hist = Table("rows per person", "people")
    for label, people in rpp.histogram:
        hist.add_row(label, f"{people:,}")
    console.print(hist)
    console.print(
        f"contribution limit in the policy: {report.contribution_limit} "
        f"(keeps {report.rows_kept_at_limit:.1%} of rows); suggested: "
        f"[bold]{report.suggested_contribution_limit}[/] (keeps "
        f"{report.rows_kept_at_suggestion:.1%}; {report.suggestion_rule})"
    )


# --- catalogue -----------------------------------------------------------------------------


@catalog_app.callback()
def catalog_list(ctx: typer.Context) -> None:
    """List datasets: published versions, rows, people, contribution limit, policy."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    catalog = Catalog(settings.datasets_dir)
    published = set(catalog.datasets())
    try:
        policies = load_policies(settings.policy_dir)
    except FileNotFoundError:
        policies = {}
    table = Table("dataset", "title", "versions", "rows", "people", "limit", "policy")
    for name in sorted(published | set(policies)):
        if name in published:
            dv = catalog.get(name)
            current = policies.get(name)
            status = (
                "current"
                if current and current.policy_hash() == dv.policy_hash
                else ("changed since ingest" if current else "no policy file")
            )
            table.add_row(
                name,
                dv.title,
                ", ".join(f"v{v}" for v in catalog.versions(name)),
                f"{dv.row_count:,}",
                f"{dv.person_count:,}",
                str(dv.contribution_limit),
                f"{dv.policy_hash[:12]} ({status})",
            )
        else:
            pol = policies[name]
            table.add_row(
                name,
                pol.title,
                "not published",
                "",
                "",
                str(pol.contribution_limit),
                pol.policy_hash()[:12],
            )
    out.print(table)


def _columns_table(dv: DatasetVersion) -> Table:
    table = Table(
        "column",
        "class",
        "type",
        "from",
        "rule",
        "group by",
        "bounds",
        "categories",
        title=f"{dv.name} v{dv.version}: {dv.title}",
    )
    for c in dv.columns:
        cats = c.categories or ()
        shown = ", ".join(cats[:6]) + (f", … ({len(cats)})" if len(cats) > 6 else "")
        table.add_row(
            c.name,
            c.column_class,
            c.type,
            c.source or "",
            c.generalisation or "",
            c.group_by,
            f"[{c.bounds[0]:g}, {c.bounds[1]:g}]" if c.bounds else "",
            shown,
        )
    return table


@catalog_app.command("show")
def catalog_show(
    name: str = typer.Argument(..., help="Dataset name."),
    version: int | None = typer.Option(None, "--version", help="Version (default: latest)."),
    report: bool = typer.Option(False, "--report", help="Also print the ingest report."),
) -> None:
    """Show one dataset version: schema, column classes, policy, files."""
    dv = Catalog(_settings().datasets_dir).get(name, version)
    m = dv.manifest
    out.print(_columns_table(dv))
    out.print(
        f"rows {dv.row_count:,}, people {dv.person_count:,}, contribution limit "
        f"{dv.contribution_limit}, pseudonym column {dv.pseudonym_column}, "
        f"rank column {dv.rank_column}"
    )
    out.print(
        f"policy hash {dv.policy_hash}; key {m.key.name} ({m.key.fingerprint}); "
        f"source {m.source.file_name} ({m.source.format}, sha256 {m.source.sha256[:16]}…); "
        f"ingested {m.created_at.isoformat()} by tre {m.tre_version}"
    )
    for f in m.files:
        out.print(f"  {f.path}  {f.rows:,} rows  {f.bytes:,} bytes  sha256 {f.sha256}")
    if report:
        print_report(m.report, out)


@catalog_app.command("verify")
def catalog_verify(
    name: str = typer.Argument(..., help="Dataset name."),
    version: int | None = typer.Option(None, "--version", help="Version (default: latest)."),
) -> None:
    """Check a version's files against the sha256 checksums in its manifest."""
    result = Catalog(_settings().datasets_dir).verify(name, version)
    if result.ok:
        out.print(f"{name} v{result.version}: every file matches its manifest")
        return
    for problem in result.problems:
        typer.secho(f"{name} v{result.version}: {problem}", fg="red", err=True)
    raise typer.Exit(1)


@catalog_app.command("dcat")
def catalog_dcat(
    out_file: Path | None = typer.Option(
        None, "--out", help="Write to this file (default: stdout)."
    ),
    base_uri: str | None = typer.Option(
        None, "--base-uri", help="Base of the dataset IRIs (default: the API URL setting)."
    ),
) -> None:
    """Export the catalogue as DCAT-AP JSON-LD (metadata only, no row values)."""
    settings = _settings()
    doc = dcat_catalog(Catalog(settings.datasets_dir), base_uri or settings.api_url)
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        try:
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                f"cannot write {out_file} ({type(exc).__name__})",
                hint="Check that the folder exists and is writable.",
            ) from None
        out.print(f"wrote DCAT-AP JSON-LD for {len(doc['dcat:dataset'])} dataset(s) to {out_file}")


def register(app: typer.Typer) -> None:
    """Add the keys, ingest and catalog commands to the CLI."""
    app.add_typer(keys_app, name="keys")
    app.command("ingest")(ingest_command)
    app.add_typer(catalog_app, name="catalog")
