"""The API's threads: few for the control plane's short blocking work, queries apart."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tre.api import create_app
from tre.api.routes import query
from tre.config import Settings

REPO = Path(__file__).resolve().parents[2]


def test_control_plane_and_queries_have_their_own_thread_limits(tmp_path: Path) -> None:
    settings = Settings(
        data_root=tmp_path / "data",
        key_dir=tmp_path / "keys",
        policy_dir=REPO / "policies",
        api_threads=3,
        query_threads=5,
    )
    app = create_app(settings)

    async def limits() -> tuple[float, float]:
        default = anyio.to_thread.current_default_thread_limiter()
        queries = query._query_threads(app.state.services)
        assert queries is query._query_threads(app.state.services)  # one per event loop
        return default.total_tokens, queries.total_tokens

    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert client.portal is not None
        assert client.portal.call(limits) == (3, 5)


def test_thread_limits_are_validated() -> None:
    with pytest.raises(ValidationError, match="api_threads"):
        Settings(api_threads=0)
    with pytest.raises(ValidationError, match="query_threads"):
        Settings(query_threads=0)
