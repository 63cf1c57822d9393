"""Ingest benchmark: `tre ingest` of a synthetic health extract against a plain DuckDB COPY.

    python -m bench ingest                 # 10,000,000 rows (generated once, kept in bench/out)
    python -m bench.ingest --rows 200000   # a quick run

The raw CSV comes from `tre.synth` (exactly --rows health rows). Each contender runs in its
own subprocess so that its peak memory (ru_maxrss) is its own:

- baseline: `COPY (SELECT * FROM read_csv(file)) TO 'x.parquet'` in plain DuckDB;
- tre: `tre.ingest.ingest` with the shipped policy (validation, HMAC pseudonyms, generalisation,
  keyed per-person ranks, sort by pseudonym, manifest, atomic publish). An extract this size
  takes tre's in-memory path (Arrow and NumPy, `IngestOptions.in_memory_limit`);
  `--in-memory-limit none` times the DuckDB path that larger extracts take.

The baseline runs before and after the ingest (the machine is shared; their mean is the
reference). Prints rows/s, peak memory, the ratio tre/baseline and the time per ingest stage,
and ends with a one-line JSON summary. Targets: ratio ≤ 2.0, tre peak memory ≤ 4 GiB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out" / "ingest"
DEFAULT_ROWS = 10_000_000
TARGET_RATIO = 2.0
TARGET_MEMORY_GIB = 4.0

_BASELINE = """
import json, resource, sys, time
import duckdb
src, dst = sys.argv[1], sys.argv[2]
con = duckdb.connect()
t = time.perf_counter()
con.execute(f"COPY (SELECT * FROM read_csv('{src}')) TO '{dst}'")
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": wall, "cpu": r.ru_utime + r.ru_stime, "maxrss_kib": r.ru_maxrss}))
"""

_INGEST = """
import json, resource, sys, time
from pathlib import Path
from tre.catalog.keys import KeyStore
from tre.ingest.pipeline import IngestOptions, ingest
src, policy, datasets, keys, data, threads, in_memory = sys.argv[1:8]
limit = {"default": IngestOptions.in_memory_limit, "none": None}.get(in_memory, in_memory)
opts = IngestOptions(threads=int(threads) or None, progress=False, in_memory_limit=limit)
t = time.perf_counter()
res = ingest(Path(src), Path(policy), datasets_dir=Path(datasets),
             key_store=KeyStore(Path(keys), Path(data)), options=opts)
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": wall, "cpu": r.ru_utime + r.ru_stime, "maxrss_kib": r.ru_maxrss,
                  "rows": res.manifest.row_count, "people": res.manifest.person_count,
                  "version": res.version, "published": res.published,
                  "stages": dict(res.timings)}))
"""


def _run(code: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _extract(rows: int, seed: int) -> Path:
    """The raw health CSV with exactly `rows` rows, generated once by tre.synth."""
    from tre.synth import write_extracts

    folder = OUT / f"raw-{rows}-{seed}"
    path = folder / "health.csv"
    if not path.exists():
        print(f"generating {rows:,} health rows with tre.synth into {folder} …", flush=True)
        t = time.perf_counter()
        write_extracts(folder, seed=seed, datasets=["health"], health_rows=rows, force=True)
        print(f"  generated in {time.perf_counter() - t:.1f} s", flush=True)
    return path


def main(argv: list[str]) -> int:
    """Run the benchmark; prints figures and a final one-line JSON summary."""
    parser = argparse.ArgumentParser(prog="bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="health rows to ingest")
    parser.add_argument("--seed", type=int, default=1, help="synthetic population seed")
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (0: all cores)")
    parser.add_argument(
        "--in-memory-limit",
        default="default",
        help="tre's in-memory path budget, e.g. 4GB; 'none' forces the DuckDB path",
    )
    args = parser.parse_args(argv)

    from tre.catalog.keys import KeyStore

    src = _extract(args.rows, args.seed)
    size = src.stat().st_size
    work = OUT / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    keys, data = work / "keys", work / "data"
    KeyStore(keys, data).create("spine")
    policy = REPO / "policies" / "datasets" / "health.yaml"
    print(f"extract: {src} ({args.rows:,} rows, {size / 2**30:.2f} GiB)", flush=True)

    base1 = _run(_BASELINE, str(src), str(work / "baseline.parquet"))
    print(f"baseline DuckDB COPY: {base1['seconds']:.1f} s", flush=True)
    tre = _run(
        _INGEST,
        str(src),
        str(policy),
        str(data / "datasets"),
        str(keys),
        str(data),
        str(args.threads),
        args.in_memory_limit,
    )
    print(f"tre ingest:           {tre['seconds']:.1f} s", flush=True)
    base2 = _run(_BASELINE, str(src), str(work / "baseline.parquet"))
    print(f"baseline DuckDB COPY: {base2['seconds']:.1f} s (again)", flush=True)

    base_s = (base1["seconds"] + base2["seconds"]) / 2
    base_cpu = (base1["cpu"] + base2["cpu"]) / 2
    base_mem = max(base1["maxrss_kib"], base2["maxrss_kib"]) / 2**20
    tre_mem = tre["maxrss_kib"] / 2**20
    ratio = tre["seconds"] / base_s
    print()
    print(f"{'':22}{'seconds':>10}{'rows/s':>14}{'CPU s':>10}{'peak GiB':>10}")
    print(
        f"{'DuckDB COPY (mean)':22}{base_s:10.1f}{args.rows / base_s:14,.0f}"
        f"{base_cpu:10.1f}{base_mem:10.2f}"
    )
    print(
        f"{'tre ingest':22}{tre['seconds']:10.1f}{args.rows / tre['seconds']:14,.0f}"
        f"{tre['cpu']:10.1f}{tre_mem:10.2f}"
    )
    print(
        f"ratio tre/COPY: {ratio:.2f} (target ≤ {TARGET_RATIO}); "
        f"CPU ratio {tre['cpu'] / base_cpu:.2f}; "
        f"tre peak memory {tre_mem:.2f} GiB (target ≤ {TARGET_MEMORY_GIB})"
    )
    print("tre stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in tre["stages"].items()))
    summary = {
        "bench": "ingest",
        "rows": args.rows,
        "people": tre["people"],
        "csv_bytes": size,
        "baseline_seconds": round(base_s, 2),
        "baseline_runs": [round(base1["seconds"], 2), round(base2["seconds"], 2)],
        "tre_seconds": round(tre["seconds"], 2),
        "baseline_rows_per_s": round(args.rows / base_s),
        "tre_rows_per_s": round(args.rows / tre["seconds"]),
        "ratio": round(ratio, 3),
        "cpu_ratio": round(tre["cpu"] / base_cpu, 3),
        "baseline_peak_gib": round(base_mem, 3),
        "tre_peak_gib": round(tre_mem, 3),
        "stages": tre["stages"],
        "ratio_ok": ratio <= TARGET_RATIO,
        "memory_ok": tre_mem <= TARGET_MEMORY_GIB,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
