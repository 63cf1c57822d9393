"""Benchmark the query engine: raw DuckDB vs tre's DP engine vs OpenDP's Polars Context.

For each question (COUNT(*) by one key, SUM over two keys, AVG, COUNT(DISTINCT person) by one
key, a two-dataset join) it times, median of `--repeats`: (a) the question as raw DuckDB SQL
over the published Parquet files, no protection; (b) tre's engine in DP mode — planning,
bounding, execution in the sandboxed worker, OpenDP noise (ledger excluded); (c) the same
question through OpenDP's Polars Context (`tre.privacy.reference.release`, scale search
included; OpenDP refuses joins, so none for the join). Prints b/a, c/b, peak memory and a JSON
summary as the last line. Data: the synthetic health and benefits extracts (`tre.synth`),
ingested with `tre.ingest` into bench/out/query/<rows>/ (kept between runs).

    .venv/bin/python -m bench query            # 1,000,000 health rows
    .venv/bin/python bench/query.py --rows 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "2")  # same thread budget for every engine

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "query"
THREADS = 2
RHO = 0.5


@dataclass(frozen=True)
class Question:
    """One benchmarked question: tre's SQL, the raw SQL, and the reference query (or None)."""

    name: str
    sql: str
    raw: str
    reference: Any


def prepare_data(rows: int) -> Path:
    """Synthesise and ingest health and benefits for `rows` health rows (reused if present)."""
    from tre.catalog.keys import KeyStore
    from tre.ingest.pipeline import IngestOptions, ingest
    from tre.synth.extracts import write_extracts

    base = OUT / str(rows)
    datasets = base / "data" / "datasets"
    if (datasets / "health").exists() and (datasets / "benefits").exists():
        return datasets
    raw = base / "raw"
    extracts = {d: raw / f"{d}.parquet" for d in ("health", "benefits")}
    if not all(p.exists() for p in extracts.values()):
        print(f"synthesising {rows:,} health rows …", flush=True)
        write_extracts(raw, health_rows=rows, datasets=tuple(extracts), fmt="parquet", force=True)
    keys = KeyStore(base / "keys", base / "data")  # keys never inside the data root
    if not keys.list():
        keys.create("spine")
    for name, path in extracts.items():
        print(f"ingesting {name} …", flush=True)
        ingest(
            path,
            ROOT / "policies" / "datasets" / f"{name}.yaml",
            datasets_dir=datasets,
            key_store=keys,
            options=IngestOptions(threads=THREADS),
        )
    return datasets


def questions(
    health: list[str], benefits: list[str], limit: int, chapters: tuple[str, ...], pid: str
) -> list[Question]:
    """The five questions of the issue, for tre, raw DuckDB and OpenDP's Context."""
    import polars as pl

    from tre.privacy.reference import RefAggregate as A
    from tre.privacy.reference import ReferenceQuery as R

    h = f"read_parquet({health!r})"
    b = f"read_parquet({benefits!r})"
    sexes = (("F",), ("M",))
    fixed = ((pl.col("cost").clip(0, 50000) * 100).round().cast(pl.Int64).alias("cost_s"),)

    def ref(by: tuple[str, ...], keys: Any, aggs: tuple[Any, ...]) -> Any:
        return R(pid, "_tre_rank", limit, by, aggs, keys, None, fixed)

    return [
        Question(
            "count_by_key",
            "SELECT sex, COUNT(*) FROM health GROUP BY sex",
            f"SELECT sex, COUNT(*) FROM {h} GROUP BY sex",
            ref(("sex",), sexes, (A("rows"),)),
        ),
        Question(
            "sum_two_keys",
            "SELECT sex, diagnosis_chapter, SUM(cost) FROM health GROUP BY sex, diagnosis_chapter",
            f"SELECT sex, diagnosis_chapter, SUM(cost) FROM {h} GROUP BY sex, diagnosis_chapter",
            ref(
                ("sex", "diagnosis_chapter"),
                tuple((s, c) for s in ("F", "M") for c in chapters),
                (A("sum", "cost_s", (0, 5_000_000)),),
            ),
        ),
        Question(
            "avg",
            "SELECT AVG(length_of_stay) FROM health",
            f"SELECT AVG(length_of_stay) FROM {h}",
            ref((), None, (A("sum", "length_of_stay", (0, 365)), A("rows"))),
        ),
        Question(
            "distinct_people_by_key",
            f"SELECT diagnosis_chapter, COUNT(DISTINCT {pid}) FROM health GROUP BY diagnosis_chapter",
            f"SELECT diagnosis_chapter, COUNT(DISTINCT {pid}) FROM {h} GROUP BY diagnosis_chapter",
            ref(("diagnosis_chapter",), tuple((c,) for c in chapters), (A("people"),)),
        ),
        Question(
            "join_two_datasets",
            f"SELECT h.sex, COUNT(*) FROM health h JOIN benefits b ON h.{pid} = b.{pid} GROUP BY h.sex",
            f"SELECT h.sex, COUNT(*) FROM {h} h JOIN {b} b ON h.{pid} = b.{pid} GROUP BY h.sex",
            None,
        ),
    ]


def proc_cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system, all threads) of process `pid` so far; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_time(
    fn: Callable[[], object], repeats: int, other_pid: Callable[[], int | None] = lambda: None
) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of `repeats` calls (after one warm-up call).

    CPU is this process's (DuckDB's threads included) plus that of process `other_pid()` (tre's
    worker); on a machine shared with other work it moves far less than wall-clock time.
    """
    fn()
    times, cpus = [], []
    for _ in range(repeats):
        pid = other_pid()
        w0, c0, o0 = time.perf_counter(), time.process_time(), proc_cpu_seconds(pid)
        fn()
        times.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0 + proc_cpu_seconds(pid) - o0)
    return statistics.median(times), statistics.median(cpus)


def peak_mb() -> tuple[float, float]:
    """Peak resident memory (MiB) of this process and of its finished/waited children."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def _measure(
    q: Question, raw: Any, svc: Any, grant: Any, frame: Any, reference: Any, protect: Any, args: Any
) -> dict[str, Any]:
    """Time one question on the three engines; print its line and return its JSON row."""

    def tre_dp() -> object:
        p = svc.prepare(q.sql, grant, rho=RHO)
        return protect(p, svc.answer(p))

    a, a_cpu = median_time(lambda: raw.execute(q.raw).fetchall(), args.repeats)
    b, b_cpu = median_time(tre_dp, args.repeats, lambda: svc.worker.pid)
    c = None
    if q.reference is not None and not args.skip_opendp:
        c, _ = median_time(lambda: reference.release(frame, q.reference, RHO), args.repeats)
    print(
        f"{q.name:24s} raw {a * 1000:8.1f} ms  tre {b * 1000:8.1f} ms  "
        + (f"opendp {c * 1000:9.1f} ms  " if c is not None else "opendp      n/a   ")
        + f"b/a {b / a:5.2f}  "
        + (f"c/b {c / b:6.1f}  " if c is not None else "")
        + f"| cpu raw {a_cpu * 1000:7.1f} ms  tre {b_cpu * 1000:7.1f} ms  b/a {b_cpu / a_cpu:5.2f}",
        flush=True,
    )
    return {
        "question": q.name,
        "raw_s": round(a, 4),
        "tre_s": round(b, 4),
        "opendp_s": None if c is None else round(c, 4),
        "b_over_a": round(b / a, 2),
        "c_over_b": None if c is None else round(c / b, 2),
        "raw_cpu_s": round(a_cpu, 4),
        "tre_cpu_s": round(b_cpu, 4),
        "cpu_b_over_a": round(b_cpu / a_cpu, 2),
    }


def main(argv: list[str]) -> int:
    """Run the benchmark; the last line printed is a JSON summary."""
    import datetime as dt

    import duckdb
    import polars as pl

    from tre.catalog.catalog import Catalog
    from tre.privacy import reference
    from tre.query.execute import Limits
    from tre.query.protect import protect
    from tre.query.service import QueryService, QuerySettings
    from tre.wire.grant import Budget, DatasetGrant, Grant, Mode

    ap = argparse.ArgumentParser(prog="bench/query.py", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="health rows (default 1M)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-opendp", action="store_true", help="do not time OpenDP's Context")
    args = ap.parse_args(argv)

    catalog = Catalog(prepare_data(args.rows))
    health, benefits = catalog.get("health"), catalog.get("benefits")
    grant = Grant(
        project_id=1,
        user_id=1,
        start_date=dt.date(2000, 1, 1),
        end_date=dt.date(2999, 1, 1),
        issued_at=dt.datetime(2024, 1, 1),
        datasets=tuple(
            DatasetGrant(
                dataset=d.name,
                columns=tuple(c.name for c in d.columns),
                modes=(Mode.DP,),
                allowance=Budget(rho=100),
                remaining=Budget(rho=100),
            )
            for d in (health, benefits)
        ),
    )
    # The engine's default memory limit (derived from the machine, or TRE_QUERY_MEMORY_LIMIT);
    # raw DuckDB gets the same.
    limits = Limits(threads=THREADS, timeout_seconds=300)
    svc = QueryService(catalog, None, None, QuerySettings(limits=limits))
    raw = duckdb.connect(
        ":memory:", config={"threads": THREADS, "memory_limit": limits.memory_limit}
    )
    hfiles = [str(f) for f in health.files]
    bfiles = [str(f) for f in benefits.files]
    frame = pl.scan_parquet(hfiles)
    load_before = os.getloadavg()
    print(
        f"health: {health.row_count:,} rows, {health.person_count:,} people, limit "
        f"{health.contribution_limit}; benefits: {benefits.row_count:,} rows; {THREADS} threads; "
        f"sandbox memory limit {limits.memory_limit}; load average {load_before[0]:.2f}",
        flush=True,
    )

    results: list[dict[str, Any]] = []
    try:
        chapters = next(c for c in health.columns if c.name == "diagnosis_chapter").categories
        assert chapters is not None
        for q in questions(
            hfiles, bfiles, health.contribution_limit, chapters, health.pseudonym_column
        ):
            try:
                row = _measure(q, raw, svc, grant, frame, reference, protect, args)
            except Exception as exc:  # one failed question must not lose the others' figures
                row = {"question": q.name, "error": f"{type(exc).__name__}: {exc}"[:300]}
                print(f"{q.name:24s} FAILED: {row['error']}", flush=True)
            results.append(row)
    finally:
        svc.close()
        raw.close()
    me, kids = peak_mb()
    print(f"peak memory: bench process {me:,.0f} MiB, worker and children {kids:,.0f} MiB")
    load_after = os.getloadavg()
    print(f"load average: {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    summary = {
        "benchmark": "query",
        "health_rows": health.row_count,
        "threads": THREADS,
        "memory_limit": limits.memory_limit,
        "load_average": [round(load_before[0], 2), round(load_after[0], 2)],
        "rho": RHO,
        "repeats": args.repeats,
        "peak_mb_process": round(me),
        "peak_mb_children": round(kids),
        "results": results,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
