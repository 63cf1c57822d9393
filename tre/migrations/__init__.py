"""Alembic migrations of the control plane, shipped inside the package (no alembic.ini).

`tre.db.upgrade(engine)` runs them. To write a new revision after changing models:

    .venv/bin/python -m tre.migrations revision "add outputs tables"

which autogenerates a file in `tre/migrations/versions/` against a scratch SQLite database
migrated to head; review it before committing.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """A programmatic Alembic config; `connection` (if given) is the one env.py migrates."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


# Modules whose import registers tables on tre.db.Base (add yours when you add tables).
MODEL_MODULES = (
    "tre.audit.store",
    "tre.governance.models",
    "tre.privacy.ledger",
    "tre.query.store",
    "tre.outputs.models",
)


def target_metadata() -> MetaData:
    """The metadata of every control-plane table (imports the model modules)."""
    from tre.db import Base

    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata
