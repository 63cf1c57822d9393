"""Shared pieces of request models: ids that fit every database, text the databases can store."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tre.wire.grant import Budget

MAX_ID = 2_147_483_647  # PostgreSQL INTEGER: larger ids cannot exist, so refuse them as input
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
DATASET_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"  # as tre.catalog and governance name them
MAX_RHO = Decimal(1_000_000)  # far above any sensible budget; keeps sums inside BIGINT units


def _bad_text(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # an unpaired surrogate from JSON "\ud800"
            return True
        return False
    if isinstance(value, dict):
        return any(_bad_text(k) or _bad_text(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_bad_text(v) for v in value)
    return False


class WireIn(BaseModel):
    """Base of request bodies: unknown fields refused, text without NUL or lone surrogates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        if _bad_text(data):
            raise ValueError("text contains a NUL character or an unpaired surrogate")
        return data


class BudgetIn(WireIn):
    """A budget as input: ρ (zCDP) at most 10⁶ with ≤ 12 decimals, δ in [0, 1] with ≤ 18."""

    rho: Decimal = Field(ge=0, le=MAX_RHO, decimal_places=12, allow_inf_nan=False)
    delta: Decimal = Field(default=Decimal(0), ge=0, le=1, decimal_places=18, allow_inf_nan=False)

    def to_budget(self) -> Budget:
        """The exact `Budget` value."""
        return Budget(rho=self.rho, delta=self.delta)
