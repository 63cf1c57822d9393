"""Run every benchmark (`make bench`), or the ones named: `python -m bench ingest ledger`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the named benchmarks (default: all), each ending with a one-line JSON summary."""
    here = Path(__file__).parent
    names = argv or sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_")
    )
    for name in names:
        print(f"== bench/{name}.py", flush=True)
        module = importlib.import_module(f"bench.{name}")
        module.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
