"""Write a new migration: `python -m tre.migrations revision "what changed"`.

Autogenerates against a scratch SQLite database migrated to head, names the revision with the
next four-digit number, and prints the file to review.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from tre.db import make_engine, upgrade
from tre.migrations import MIGRATIONS_DIR, alembic_config


def main(argv: list[str]) -> int:
    """Entry point of the migration helper."""
    if len(argv) != 2 or argv[0] != "revision":
        print(__doc__, file=sys.stderr)
        return 2
    existing = sorted(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
    rev_id = f"{int(existing[-1]) + 1:04d}" if existing else "0001"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'scratch.sqlite'}")
        upgrade(engine)
        with engine.begin() as conn:
            command.revision(
                alembic_config(conn), message=argv[1], autogenerate=True, rev_id=rev_id
            )
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
