"""What one app instance works with: settings, database, ledger, catalogue, sessions, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tre.api.sessions import SessionSigner
from tre.catalog.catalog import Catalog
from tre.config import Settings
from tre.db import Database
from tre.privacy.ledger import Ledger

Clock = Callable[[], datetime]


@dataclass
class Services:
    """Built once per app by `create_app`; routes reach it through `tre.api.deps`."""

    settings: Settings
    db: Database
    ledger: Ledger
    catalog: Catalog
    sessions: SessionSigner
    clock: Clock
