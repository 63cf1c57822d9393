"""`ingest`: raw extract + policy → validated, pseudonymised, generalised, versioned Parquet.

The stages run in DuckDB SQL that tre generates from the policy (never from file content):

1. read    — header against the policy; typed load (CSV via read_csv with a reject table)
2. check   — malformed rows, wrong types, empty identifiers, nulls, categories, postcodes
3. pseudonymise — HMAC-SHA256 of each distinct normalised identifier, vectorised in DuckDB
4. write   — drop direct identifiers, generalise quasi-identifiers, add `_tre_rank` (row number
             per person in a keyed order), sort by pseudonym, COPY to Parquet in staging
5. report  — k-anonymity of the quasi-identifiers, rows per person, a suggested limit
6. publish — manifest with checksums, verify, atomic rename to the next `v<N>`

Anything that fails leaves nothing behind: the staging folder is removed, and a killed run's
staging folder is invisible to readers and removed by the next ingest.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from rich.console import Console

from tre import __version__
from tre.catalog.catalog import published_versions
from tre.catalog.keys import KeyStore, fingerprint
from tre.catalog.manifest import (
    MANIFEST_NAME,
    IngestReport,
    KeyRef,
    Manifest,
    ManifestColumn,
    ManifestFile,
    SourceInfo,
    sha256_file,
)
from tre.catalog.policy import RANK_COLUMN, DatasetPolicy, RareToOtherRule, load_policy
from tre.errors import InternalError, UserError
from tre.ingest import checks, columnar, source
from tre.ingest.errors import ExtractError
from tre.ingest.generalise import quote_ident, quote_literal, rare_to_other_sql, rule_sql
from tre.ingest.progress import StageProgress
from tre.ingest.pseudonym import hmac_params, hmac_sql, normalise_sql, rank_seed
from tre.ingest.publish import clean_staging, dataset_lock, new_staging, next_version, publish
from tre.ingest.report import coded_report, ingest_report

PART_PATTERN = "part-{:05d}.parquet"
_ROW_COLUMN = "_tre_row"  # a row's position in the extract, while the checks run on Arrow


class ResourceLimit(UserError):
    """The ingest needs more memory or disk than it was given."""

    def __init__(self, message: str, *, hint: str):
        super().__init__(message, reason="resource_limit", status=507, hint=hint)


@dataclass(frozen=True)
class IngestOptions:
    """Resource and layout settings of one ingest."""

    memory_limit: str = "2500MB"  # DuckDB's limit; it spills to the staging folder beyond it
    # Extracts whose in-memory ingest is estimated to fit this (about 2.6 bytes per byte of
    # extract) are ingested with Arrow and NumPy (`columnar`), several times faster; larger
    # ones by DuckDB's spilling sort within `memory_limit`. None: always DuckDB's.
    in_memory_limit: str | None = "4GB"
    threads: int | None = None  # default: DuckDB's (all cores)
    row_group_size: int = 262_144
    file_size: str = "512MB"  # a new part file starts after about this many bytes
    # People are sorted in buckets of about this many rows (contiguous in pseudonym order),
    # appended in order; one sort of 10M rows fits the default memory limit (it spills beyond).
    bucket_rows: int = 16_000_000
    compression: str = "zstd"
    # zstd level 1: files as small as level 3 (the default) for this data, written faster.
    compression_level: int | None = 1
    progress: bool = False


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did: the version it published, or the identical one already published."""

    dataset: str
    version: int
    path: Path
    published: bool
    manifest: Manifest
    timings: tuple[tuple[str, float], ...] = ()

    @property
    def report(self) -> IngestReport:
        """The ingest report (k-anonymity, rows per person, suggested contribution limit)."""
        return self.manifest.report


def ingest(
    extract_path: str | Path,
    policy_path: str | Path,
    *,
    datasets_dir: Path,
    key_store: KeyStore,
    options: IngestOptions | None = None,
    console: Console | None = None,
) -> IngestResult:
    """Ingest one raw extract under its policy and publish it as the next version."""
    opts = options or IngestOptions()
    policy = load_policy(policy_path)
    policy_file = str(policy_path)
    extract = source.open_extract(extract_path)
    key = key_store.load(policy.key)
    if extract.format == "csv":
        header = source.read_csv_header(extract)
        source.check_columns(extract, header, policy, policy_file)
    dataset_dir = Path(datasets_dir) / policy.name
    with dataset_lock(dataset_dir):
        clean_staging(dataset_dir)
        staging = new_staging(dataset_dir)
        try:
            with StageProgress(opts.progress, console) as progress:
                return _ingest_locked(
                    extract, policy, policy_file, key, dataset_dir, staging, opts, progress
                )
        except duckdb.OutOfMemoryException:
            raise ResourceLimit(
                "the ingest ran out of memory",
                hint=f"Raise the memory limit (now {opts.memory_limit}, e.g. --memory-limit "
                "4GB) or use fewer threads; nothing was published.",
            ) from None
        except duckdb.Error as exc:
            # DuckDB's message can quote values from the extract: keep only its kind.
            raise InternalError(f"DuckDB {type(exc).__name__} during ingest") from None
        finally:
            # Published: the staging folder was renamed away. Anything else: remove it.
            shutil.rmtree(staging, ignore_errors=True)


def _connect(staging: Path, opts: IngestOptions) -> duckdb.DuckDBPyConnection:
    spill = staging / ".tmp"
    spill.mkdir(mode=0o700)
    config: dict[str, Any] = {
        "memory_limit": opts.memory_limit,
        "temp_directory": str(spill),
        "preserve_insertion_order": True,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if opts.threads:
        config["threads"] = opts.threads
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    return con


def _ingest_locked(
    extract: source.Extract,
    policy: DatasetPolicy,
    policy_file: str,
    key: bytes,
    dataset_dir: Path,
    staging: Path,
    opts: IngestOptions,
    progress: StageProgress,
) -> IngestResult:
    in_memory = columnar.fits_in_memory(extract.path, extract.format, opts.in_memory_limit)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Hash the extract while DuckDB reads it (hashlib releases the GIL).
        source_hash = pool.submit(sha256_file, extract.path)
        con = _connect(staging, opts)
        try:
            loaded = _load(con, extract, policy, policy_file, progress, into_arrow=in_memory)
            rows = loaded.num_rows if isinstance(loaded, pa.Table) else loaded
            src_sha = source_hash.result()
            identity = (src_sha, policy.policy_hash(), fingerprint(key), __version__)
            # The same bytes under the same policy passed the same checks before.
            existing = _identical_version(dataset_dir, identity)
            if existing is not None:
                return existing  # identical re-run: publish nothing new
            row_checks = checks.row_checks(policy, policy_file)
            if isinstance(loaded, pa.Table):
                box = [loaded]
                del loaded  # freed once the published columns are ready
                files, report = _ingest_in_memory(
                    con, box, extract, row_checks, policy, key, staging, opts, progress
                )
            else:
                with progress.stage("checking rows", con):
                    checks.run_row_checks(con, "raw", extract, row_checks)
                with progress.stage("pseudonymising", con):
                    _pseudonymise(con, policy, key)
                    _rare_categories(con, policy)
                out_dir = staging / ".out"
                with progress.stage("writing Parquet", con):
                    folders = _write(con, policy, key, out_dir, opts)
                with progress.stage("ingest report", con):
                    # Hash the written files while DuckDB computes the report.
                    parts = pool.submit(_collect_parts, folders, staging)
                    report = _report(con, policy)
                    files = parts.result()
            schema = _schema(con, staging, files)
        finally:
            con.close()
    out_rows = sum(f.rows for f in files)
    if out_rows != rows:
        raise InternalError(f"ingest wrote {out_rows} rows for {rows} input rows")
    shutil.rmtree(staging / ".tmp", ignore_errors=True)
    shutil.rmtree(staging / ".out", ignore_errors=True)
    with progress.stage("publishing"):
        version = next_version(dataset_dir)
        manifest = Manifest(
            dataset=policy.name,
            version=version,
            title=policy.title,
            tre_version=__version__,
            created_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
            policy_hash=policy.policy_hash(),
            policy=policy.model_dump(mode="json", by_alias=True),
            key=KeyRef(name=policy.key, fingerprint=fingerprint(key)),
            source=SourceInfo(
                file_name=extract.path.name,
                format=extract.format,
                sha256=src_sha,
                bytes=extract.path.stat().st_size,
                rows=rows,
            ),
            row_count=out_rows,
            person_count=report.rows_per_person.people,
            pseudonym_column=policy.pseudonym_column,
            rank_column=RANK_COLUMN,
            contribution_limit=policy.contribution_limit,
            columns=_manifest_columns(policy, schema),
            files=tuple(files),
            report=report,
        )
        (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        _verify_staged(staging, manifest)
        path = publish(staging, dataset_dir, version)
    return IngestResult(policy.name, version, path, True, manifest, tuple(progress.timings.items()))


def _load(
    con: duckdb.DuckDBPyConnection,
    extract: source.Extract,
    policy: DatasetPolicy,
    policy_file: str,
    progress: StageProgress,
    *,
    into_arrow: bool,
) -> pa.Table | int:
    """Read the extract with the policy's types: into table `raw` (rowid = position in the
    file; returns the row count), or into an Arrow table in file order (returned)."""
    with progress.stage("reading extract", con):
        if extract.format == "csv":
            header = source.read_csv_header(extract)
            enums = source.enum_columns(policy)
            for name, cats in enums.items():
                values = ", ".join(quote_literal(c) for c in cats)
                con.execute(
                    f"CREATE TYPE {quote_ident(source.enum_type_name(name))} AS ENUM ({values})"
                )
            sql = source.csv_source_sql(extract, header, policy, enums)
            try:
                loaded = _run_load(con, sql, into_arrow)
            except duckdb.OutOfMemoryException:
                raise
            except duckdb.Error:
                # DuckDB's message may quote file content: never forward it.
                raise ExtractError(
                    extract.shown,
                    "the file cannot be read as CSV",
                    hint="Check that it is UTF-8 CSV with a comma delimiter and a header line.",
                ) from None
            checks.check_rejects(
                con, extract, policy, header, source.csv_types(header, policy, enums)
            )
        else:
            schema = source.parquet_schema(extract, con)
            source.check_columns(extract, [n for n, _ in schema], policy, policy_file)
            source.check_parquet_types(extract, schema, policy, policy_file)
            checks.run_parquet_cast_checks(
                con, extract, source.parquet_cast_failures_sql(extract, schema, policy)
            )
            loaded = _run_load(
                con,
                f"SELECT * FROM {source.parquet_source_sql(extract, schema, policy)}",
                into_arrow,
            )
    if isinstance(loaded, pa.Table):
        rows = loaded.num_rows
    else:
        (rows,) = con.execute("SELECT count(*) FROM raw").fetchone() or (0,)
    if rows == 0:
        raise ExtractError(
            extract.shown,
            "the extract has no data rows",
            hint="Export the extract again; an empty dataset is never published.",
            reason="empty_extract",
        )
    return loaded if isinstance(loaded, pa.Table) else int(rows)


def _run_load(con: duckdb.DuckDBPyConnection, sql: str, into_arrow: bool) -> pa.Table | None:
    if into_arrow:
        return con.sql(sql).to_arrow_table()
    con.execute(f"CREATE TEMP TABLE raw AS {sql}")
    return None


def _identical_version(
    dataset_dir: Path, identity: tuple[str, str, str, str]
) -> IngestResult | None:
    """The latest version if it came from the same bytes, policy, key and tre version."""
    versions = published_versions(dataset_dir)
    if not versions:
        return None
    version, path = max(versions.items())
    manifest = Manifest.read(path)
    same = (
        manifest.source.sha256,
        manifest.policy_hash,
        manifest.key.fingerprint,
        manifest.tre_version,
    ) == identity
    return IngestResult(manifest.dataset, version, path, False, manifest) if same else None


def _id_columns(policy: DatasetPolicy) -> list[str]:
    """Person-identifier columns, the privacy unit first."""
    others = [
        n
        for n, c in policy.columns.items()
        if c.column_class == "person_identifier" and n != policy.privacy_unit
    ]
    return [policy.privacy_unit, *others]


def _pseudonymise(con: duckdb.DuckDBPyConnection, policy: DatasetPolicy, key: bytes) -> None:
    """Table `_tre_ids_<i>` per identifier column: raw id → pseudonym, sort position, rows.

    HMAC runs once per distinct identifier, not per row; `pord` numbers pseudonyms in sorted
    order so that the big sort compares integers instead of 64-character strings.
    """
    params = hmac_params(key)
    for i, name in enumerate(_id_columns(policy)):
        q = quote_ident(name)
        # HMAC per distinct raw spelling: spellings that normalise alike get the same
        # pseudonym anyway, and this avoids a second grouping on the normalised form.
        con.execute(
            f"""
            CREATE TEMP TABLE _tre_ids_{i} AS
            WITH raw_ids AS (SELECT {q} AS raw_id, count(*) AS n FROM raw
                             WHERE {q} IS NOT NULL GROUP BY {q}),
                 pseud AS (SELECT raw_id, n, {hmac_sql(normalise_sql("raw_id"))} AS pid
                           FROM raw_ids)
            SELECT raw_id, n, pid, dense_rank() OVER (ORDER BY pid) AS pord FROM pseud
            """,
            params,
        )


def _rare_categories(con: duckdb.DuckDBPyConnection, policy: DatasetPolicy) -> None:
    """Table `_tre_keep_<column>` of the values held by at least min_count people."""
    rare = {
        n: c.generalise
        for n, c in policy.columns.items()
        if isinstance(c.generalise, RareToOtherRule)
    }
    if not rare:
        return
    # Counting raw identifiers is exact when no two raw spellings normalise to one person.
    (raw_ids, people) = con.execute(
        "SELECT count(*), count(DISTINCT pord) FROM _tre_ids_0"
    ).fetchone() or (0, 0)
    unit = quote_ident(policy.privacy_unit)
    person = unit if raw_ids == people else normalise_sql(unit)
    for name, rule in rare.items():
        assert isinstance(rule, RareToOtherRule)
        q = quote_ident(name)
        con.execute(
            f"CREATE TEMP TABLE {_keep_table(name)} AS SELECT {q} AS v FROM raw "
            f"WHERE {q} IS NOT NULL GROUP BY {q} "
            f"HAVING count(DISTINCT {person}) >= {int(rule.min_count)}"
        )


def _keep_table(column: str) -> str:
    return quote_ident(f"_tre_keep_{column}")


def _select_list(policy: DatasetPolicy) -> list[str]:
    """The output columns as SQL over `r` (raw) and `m<i>` (identifier maps).

    The pseudonym comes first (files are sorted by it), then the other columns in policy order.
    """
    ids = _id_columns(policy)
    first: list[str] = []
    rest: list[str] = []
    for name, col in policy.columns.items():
        out_name = policy.output_name(name)
        if out_name is None:
            continue
        r = f"r.{quote_ident(name)}"
        if col.column_class == "person_identifier":
            expr = f"m{ids.index(name)}.pid"
        elif isinstance(col.generalise, RareToOtherRule):
            expr = rare_to_other_sql(r, col.generalise, _keep_table(name))
        elif col.generalise is not None:
            expr = rule_sql(r, col.generalise)
        else:
            expr = r
        (first if name == policy.privacy_unit else rest).append(
            f"{expr} AS {quote_ident(out_name)}"
        )
    return first + rest


def _people_table(con: duckdb.DuckDBPyConnection) -> None:
    """Table `_tre_people`: raw id → pseudonym, its sort position `pord`, and `before`.

    `before` is the number of rows of all people sorted before this one (a prefix sum of
    rows per person), so that a row's rank is its position in the sorted output minus
    `before`: no window over the rows is needed.
    """
    con.execute(
        """
        CREATE TEMP TABLE _tre_people AS
        WITH per_person AS (SELECT pord, sum(n) AS n FROM _tre_ids_0 GROUP BY pord),
             cum AS (SELECT pord, CAST(sum(n) OVER (ORDER BY pord) - n AS BIGINT) AS before
                     FROM per_person)
        SELECT i.raw_id, i.pid, i.pord, cum.before FROM _tre_ids_0 i JOIN cum USING (pord)
        """
    )


def _buckets(con: duckdb.DuckDBPyConnection, rows_per_bucket: int) -> list[tuple[int, int]]:
    """Ranges of `pord` holding about `rows_per_bucket` rows each, in pseudonym order."""
    return [
        (int(lo), int(hi))
        for lo, hi in con.execute(
            f"""
            SELECT min(pord), max(pord) FROM (SELECT DISTINCT pord, before FROM _tre_people)
            GROUP BY before // {int(rows_per_bucket)} ORDER BY 1
            """
        ).fetchall()
    ]


def _sort_rows(
    con: duckdb.DuckDBPyConnection, policy: DatasetPolicy, key: bytes, opts: IngestOptions
) -> None:
    """Table `_tre_rows`: the output rows, generalised, in their published order.

    Direct identifiers are dropped, the person identifier is replaced by its pseudonym and
    quasi-identifiers are generalised; rows are sorted by person (`pord`, i.e. pseudonym
    order), then by a keyed hash of the row's position (the order must not follow file order
    or values; the seed is derived from the custodian key). The pseudonym maps are joined
    once. People go in buckets of about `bucket_rows` rows, each sorted and appended in
    order, so that one sort never holds more than a bucket. The table keeps insertion order,
    so its `rowid` is a row's position in the output; `_pord` and `_before` are kept for the
    rank and the report and are not published.
    """
    ids = _id_columns(policy)
    select = ",\n       ".join(_select_list(policy))
    joins = [f"JOIN _tre_people m0 ON r.{quote_ident(ids[0])} = m0.raw_id"]
    for i, name in enumerate(ids[1:], start=1):
        joins.append(f"LEFT JOIN _tre_ids_{i} m{i} ON r.{quote_ident(name)} = m{i}.raw_id")
    body = f"""
        SELECT m0.pord AS _pord, m0.before AS _before,
               {select}
        FROM raw r
        {" ".join(joins)}
    """
    order = "ORDER BY m0.pord, hash(r.rowid, $seed)"
    seed = {"seed": rank_seed(key)}
    buckets = _buckets(con, opts.bucket_rows)
    if len(buckets) == 1:
        con.execute(f"CREATE TEMP TABLE _tre_rows AS {body} {order}", seed)
        return
    for b, (lo, hi) in enumerate(buckets):
        part = f"{body} WHERE m0.pord BETWEEN {lo} AND {hi} {order}"
        if b == 0:
            con.execute(f"CREATE TEMP TABLE _tre_rows AS {part}", seed)
        else:
            con.execute(f"INSERT INTO _tre_rows {part}", seed)


def _write(
    con: duckdb.DuckDBPyConnection,
    policy: DatasetPolicy,
    key: bytes,
    out_dir: Path,
    opts: IngestOptions,
) -> list[Path]:
    """Sort the output rows (`_sort_rows`), free the raw rows, write Parquet in that order.

    `_tre_rank` is the row's position within its person: its position in the sorted table
    (`rowid`) minus the rows of the people before it, 1..n per person. COPY from one table
    keeps the table's order. Returns the folders written, in order.
    """
    _people_table(con)
    _sort_rows(con, policy, key, opts)
    # The raw rows are no longer needed: free their memory for the write and the report.
    con.execute("DROP TABLE raw")
    out_dir.mkdir(mode=0o700)
    folder = out_dir / "rows"
    cols = ", ".join(
        quote_ident(name)
        for (name, *_) in con.execute("DESCRIBE _tre_rows").fetchall()
        if name not in ("_pord", "_before")
    )
    level = (
        f", COMPRESSION_LEVEL {int(opts.compression_level)}"
        if opts.compression_level is not None
        else ""
    )
    rank = "CAST(rowid - _before + 1 AS BIGINT)"
    limit = int(policy.contribution_limit)
    # Rows within the contribution limit, then the rows beyond it, in separate files (each
    # group sorted by pseudonym): a query bounded at the limit reads only the first group and
    # needs no `_tre_rank <= k` filter, which would otherwise read a whole extra column.
    folders = []
    for name, cond in (("rows", f"{rank} <= {limit}"), ("over", f"{rank} > {limit}")):
        folder = out_dir / name
        con.execute(
            f"""
            COPY (
                SELECT {cols}, {rank} AS {quote_ident(RANK_COLUMN)}
                FROM _tre_rows WHERE {cond}
            ) TO {quote_literal(str(folder))} (
                FORMAT parquet,
                COMPRESSION {opts.compression}{level},
                ROW_GROUP_SIZE {int(opts.row_group_size)},
                FILE_SIZE_BYTES {quote_literal(opts.file_size)}
            )
            """
        )
        folders.append(folder)
    return folders


def _ingest_in_memory(
    con: duckdb.DuckDBPyConnection,
    loaded: list[pa.Table],
    extract: source.Extract,
    row_checks: list[checks.Check],
    policy: DatasetPolicy,
    key: bytes,
    staging: Path,
    opts: IngestOptions,
    progress: StageProgress,
) -> tuple[list[ManifestFile], IngestReport]:
    """Check, pseudonymise, order, generalise and write the rows in memory (`columnar`).

    The work runs as tasks on a thread pool, each DuckDB task on a connection of its own, so
    that the two cores stay busy: every column is dictionary-encoded from the start; the
    people are numbered and the rows ordered (one task), and the columns generalised and the
    report computed (another), while this thread runs the checks (per-value checks on the
    dictionaries). Nothing is written before the checks pass, and a check's error is raised
    before any other task's. `loaded` holds the raw rows, taken out so that they are freed as
    soon as the published columns are ready.
    """
    raw: pa.Table | None = loaded.pop()
    threads = opts.threads or os.cpu_count() or 1
    unit = policy.privacy_unit
    encodings = columnar.Encodings(raw)
    people: Future[columnar.People] = Future()
    qi_names = {
        out
        for name, col in policy.columns.items()
        if col.column_class == "quasi_identifier" and (out := policy.output_name(name))
    }

    abandon = threading.Event()  # set when the checks fail: the other tasks stop early

    def go_on() -> None:
        if abandon.is_set():
            raise _Abandoned

    def order_rows(cur: duckdb.DuckDBPyConnection) -> columnar.Order:
        try:
            persons = columnar.people(cur, encodings.get(unit), key)
        except BaseException as exc:
            people.set_exception(exc)
            raise
        people.set_result(persons)
        go_on()
        return columnar.row_order(cur, persons, rank_seed(key), policy.contribution_limit)

    def columns_and_report(
        cur: duckdb.DuckDBPyConnection, columns: Future[list[columnar.OutColumn]]
    ) -> IngestReport:
        try:
            assert raw is not None
            out = columnar.output_columns(cur, raw, policy, people.result, key, encodings)
        except BaseException as exc:
            columns.set_exception(exc)
            raise
        columns.set_result(out)
        persons = people.result()
        go_on()
        quasi = [(c.name, *c.codes()) for c in out if c.name in qi_names]
        return coded_report(cur, persons.pord, persons.counts, quasi, policy.contribution_limit)

    with ExitStack() as cleanup:
        cleanup.enter_context(columnar.arrow_memory_pool())
        cursors = [con.cursor(), con.cursor()]
        for cur in cursors:
            cleanup.callback(cur.close)
        # Entered last, so left first: its tasks finish before their connections close.
        pool = cleanup.enter_context(ThreadPoolExecutor(max_workers=threads + 2))
        encodings.start(pool, columnar.encoded_columns(policy))
        columns: Future[list[columnar.OutColumn]] = Future()
        order = pool.submit(order_rows, cursors[0])
        report = pool.submit(columns_and_report, cursors[1], columns)
        with progress.stage("checking rows", con):
            assert raw is not None
            try:
                _check_in_memory(con, raw, extract, row_checks, encodings)
            except BaseException:
                abandon.set()
                for cur in cursors:
                    cur.interrupt()  # the pseudonyms' SQL, the generalisation's SQL
                raise
        with progress.stage("pseudonymising and generalising", con):
            persons = people.result()
            ordered = order.result()
            out_columns = columns.result()
        raw = None  # the raw columns are no longer needed (the encodings hold what is)
        encodings.release()
        with progress.stage("writing Parquet and report", con) as set_done:
            files = _write_in_memory(
                ordered, persons, out_columns, policy, staging, opts, pool, threads, set_done
            )
            return files, report.result()
    raise AssertionError("unreachable")  # pragma: no cover


class _Abandoned(Exception):
    """A task stopped because the checks failed (never raised to the caller)."""


def _check_in_memory(
    con: duckdb.DuckDBPyConnection,
    raw: pa.Table,
    extract: source.Extract,
    row_checks: list[checks.Check],
    encodings: columnar.Encodings,
) -> None:
    """The row checks on the Arrow rows; per-value checks on the columns' dictionaries."""
    positions = pa.array(np.arange(raw.num_rows, dtype=np.int64))
    encoded = encodings.started()
    distinct = {c.column for c in row_checks if c.distinct or c.screen_on_values} & encoded
    tables = {n: f"_tre_distinct_{i}" for i, n in enumerate(sorted(distinct))}
    with ExitStack() as stack:
        stack.enter_context(
            columnar.registered(con, "raw", raw.append_column(_ROW_COLUMN, positions))
        )
        for name, table in tables.items():
            values = pa.table({"v": encodings.get(name).dictionary})
            stack.enter_context(columnar.registered(con, table, values))
        checks.run_row_checks(con, "raw", extract, row_checks, _ROW_COLUMN, tables)


def _write_in_memory(
    order: columnar.Order,
    persons: columnar.People,
    columns: list[columnar.OutColumn],
    policy: DatasetPolicy,
    staging: Path,
    opts: IngestOptions,
    pool: ThreadPoolExecutor,
    writers: int,
    set_done: Callable[[float], None],
) -> list[ManifestFile]:
    """Write the Parquet files (several sequences at once), then name and hash them."""
    settings = columnar.WriteSettings(
        row_group_size=int(opts.row_group_size),
        file_size=columnar.parse_size(opts.file_size),
        compression=opts.compression,
        compression_level=opts.compression_level,
    )
    out_dir = staging / ".out"
    out_dir.mkdir(mode=0o700)
    lock = threading.Lock()
    written = [0]

    def done(rows: int) -> None:
        with lock:
            written[0] += rows
            set_done(100.0 * written[0] / len(order))

    segments = columnar.write_all(
        out_dir, order, persons, policy.pseudonym_column, columns, settings, pool, writers, done
    )
    hashes: dict[Path, str] = {}
    for _, future in segments:
        hashes.update(future.result())
    return _collect_parts([folder for folder, _ in segments], staging, hashes)


def _collect_parts(
    folders: list[Path], staging: Path, hashes: dict[Path, str] | None = None
) -> list[ManifestFile]:
    """Move the written `data_<i>.parquet` files to `part-<n>.parquet` in order, with checksums
    (from `hashes` when the writer computed them already)."""
    import pyarrow.parquet as pq

    written = [
        p
        for folder in folders
        for p in sorted(folder.glob("*.parquet"), key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    ]
    files: list[ManifestFile] = []
    for path in written:
        meta = pq.ParquetFile(path).metadata
        if meta.num_rows == 0:
            path.unlink()  # e.g. nobody has more rows than the limit
            continue
        target = staging / PART_PATTERN.format(len(files))
        known = (hashes or {}).get(path)
        path.rename(target)
        lo, hi = _rank_range(meta)
        files.append(
            ManifestFile(
                path=target.name,
                sha256=known or sha256_file(target),
                bytes=target.stat().st_size,
                rows=meta.num_rows,
                min_rank=lo,
                max_rank=hi,
            )
        )
    return files


def _rank_range(meta: Any) -> tuple[int, int]:
    """The smallest and largest `_tre_rank` of a Parquet file, from its row-group statistics."""
    col = meta.schema.names.index(RANK_COLUMN)
    lows, highs = [], []
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(col).statistics
        if stats is None or not stats.has_min_max:
            raise InternalError("DuckDB wrote a Parquet file without rank statistics")
        lows.append(int(stats.min))
        highs.append(int(stats.max))
    return min(lows), max(highs)


def _schema(
    con: duckdb.DuckDBPyConnection, staging: Path, files: list[ManifestFile]
) -> dict[str, str]:
    """Physical schema of the staged files (from the first file's metadata)."""
    src = f"read_parquet({quote_literal(str(staging / files[0].path))})"
    return {str(r[0]): str(r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}


def _report(con: duckdb.DuckDBPyConnection, policy: DatasetPolicy) -> IngestReport:
    """The ingest report over the rows just written (`_tre_rows`, people told apart by `pord`)."""
    qis = tuple(
        out
        for name, col in policy.columns.items()
        if col.column_class == "quasi_identifier" and (out := policy.output_name(name))
    )
    return ingest_report(con, "_tre_rows", "_pord", qis, "_tre_ids_0", policy.contribution_limit)


def _manifest_columns(policy: DatasetPolicy, schema: dict[str, str]) -> tuple[ManifestColumn, ...]:
    by_output = {policy.output_name(n): n for n in policy.columns}
    cols = []
    for out_name, physical in schema.items():
        if out_name == RANK_COLUMN:
            cols.append(
                ManifestColumn(
                    name=RANK_COLUMN,
                    source=None,
                    column_class="rank",
                    type="integer",
                    physical_type=physical,
                    nullable=False,
                    description="Row number within the person, in a keyed random order "
                    "(1..rows of that person); contribution bounding keeps _tre_rank <= k.",
                    group_by="forbidden",
                    allow_quantiles=False,
                )
            )
            continue
        raw = by_output[out_name]
        assert raw is not None
        col = policy.columns[raw]
        cols.append(
            ManifestColumn(
                name=out_name,
                source=raw,
                column_class=col.column_class,
                type=col.output_type,
                physical_type=physical,
                nullable=col.nullable,
                description=col.description,
                generalisation=col.generalise.rule if col.generalise is not None else None,
                bounds=col.bounds,
                categories=col.public_categories,
                group_by=col.effective_group_by,
                allow_quantiles=col.effective_allow_quantiles
                if col.column_class != "person_identifier"
                else False,
                scale=col.effective_scale,
            )
        )
    return tuple(cols)


def _verify_staged(staging: Path, manifest: Manifest) -> None:
    """Re-read every staged file and compare with the manifest before publishing."""
    for f in manifest.files:
        p = staging / f.path
        if p.stat().st_size != f.bytes or sha256_file(p) != f.sha256:
            raise InternalError(f"staged file {f.path} changed before publication")
    extra = {p.name for p in staging.iterdir()} - {f.path for f in manifest.files} - {MANIFEST_NAME}
    if extra:
        raise InternalError(f"unexpected files in staging: {sorted(extra)}")
