"""Shared fixtures: isolated settings per test and a throw-away PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tre.config import Settings

REPO = Path(__file__).resolve().parents[1]
POLICY_DIR = REPO / "policies"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data root and key folder live in this test's temporary folder."""
    return Settings(
        data_root=tmp_path / "data",
        key_dir=tmp_path / "keys",
        policy_dir=POLICY_DIR,
    )


def _postgres_admin_url() -> str:
    return os.environ.get(
        "TRE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    Skips when no server answers, unless TRE_REQUIRE_POSTGRES=1 (as in CI), where it fails.
    """
    import sqlalchemy as sa

    admin_url = _postgres_admin_url()
    name = f"tre_test_{secrets.token_hex(6)}"
    try:
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("TRE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unreachable at {admin_url}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {admin_url}")
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
