"""Shared query fixtures (attack tests and query spec tests): a real service over small data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.query_support import (
    BENEFITS_COLUMNS,
    HEALTH_COLUMNS,
    FixtureCatalog,
    benefits_rows,
    health_rows,
    publish,
)
from tre.query.execute import Limits
from tre.query.service import QueryService, QuerySettings


@pytest.fixture(scope="session")
def query_catalog(tmp_path_factory: pytest.TempPathFactory) -> FixtureCatalog:
    """health (limit 5) and benefits (limit 2), 600 people."""
    root = Path(tmp_path_factory.mktemp("qdata"))
    return FixtureCatalog(
        {
            "health": publish(root, "health", health_rows(600), HEALTH_COLUMNS, 5),
            "benefits": publish(root, "benefits", benefits_rows(600), BENEFITS_COLUMNS, 2),
        }
    )


@pytest.fixture(scope="session")
def service(query_catalog: FixtureCatalog) -> Iterator[QueryService]:
    """A query service without ledger or audit (those are tested separately)."""
    svc = QueryService(query_catalog, None, None, QuerySettings(limits=Limits(timeout_seconds=10)))
    yield svc
    svc.close()
