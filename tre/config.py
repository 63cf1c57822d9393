"""Typed settings, built once by an app factory and passed down (no import-time singletons)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """tre's settings; every field can be set from a `TRE_<NAME>` environment variable."""

    model_config = SettingsConfigDict(env_prefix="TRE_", extra="ignore")

    data_root: Path = Field(
        default=Path(".tre/data"),
        description="Folder holding published datasets and the default SQLite control plane.",
    )
    key_dir: Path = Field(
        default=Path(".tre/keys"),
        description="Folder holding secret keys (mode 0700, files 0600); never inside data_root.",
    )
    policy_dir: Path = Field(
        default=Path("policies"),
        description="Folder holding dataset policies (datasets/*.yaml) and disclosure presets.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the control plane; default: SQLite file in data_root.",
    )
    api_threads: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Threads per API process for blocking control-plane work (database reads "
        "and writes, password checks). Few: that work is short and holds the GIL, so more "
        "threads only contend for it (bench/ledger.py: 4 threads served ~20% more requests "
        "per second than anyio's default of 40). Queries wait in threads of their own.",
    )
    query_threads: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Threads per API process in which queries wait for the sandbox, apart "
        "from the control-plane threads so that slow queries never hold those up.",
    )
    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where the tre API listens (used by the hub and the demo).",
    )

    @property
    def datasets_dir(self) -> Path:
        """Where published dataset versions live."""
        return self.data_root / "datasets"

    def resolved_database_url(self) -> str:
        """The control-plane URL, defaulting to SQLite in the data root."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_root / 'control.sqlite').resolve()}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]
