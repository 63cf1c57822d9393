"""The `Grant` value the query layer receives, and exact privacy-budget amounts.

Budgets are zero-concentrated DP: ρ (rho) plus δ (delta, for τ-thresholding). They are exact
decimals at a fixed scale (ρ to 12 decimal places, δ to 18) so that sums never drift; the
ledger stores them as integers of those scales (`Budget.units`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_CEILING, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tre.errors import Forbidden

RHO_DIGITS = 12
DELTA_DIGITS = 18
RHO_SCALE = 10**RHO_DIGITS
DELTA_SCALE = 10**DELTA_DIGITS


def _exact_units(value: Decimal, scale: int, name: str) -> int:
    scaled = value * scale
    if scaled != scaled.to_integral_value():
        digits = len(str(scale)) - 1
        raise ValueError(f"{name} has more than {digits} decimal places")
    return int(scaled)


class Budget(BaseModel):
    """An exact (ρ, δ) amount: a cap, an allowance, a reservation or a charge."""

    model_config = ConfigDict(frozen=True)

    rho: Decimal = Field(ge=0, description="zCDP ρ, at most 12 decimal places")
    delta: Decimal = Field(default=Decimal(0), ge=0, le=1, description="δ, at most 18 places")

    @field_validator("rho")
    @classmethod
    def _rho_exact(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("rho must be a finite number")
        return Decimal(_exact_units(value, RHO_SCALE, "rho")) / RHO_SCALE

    @field_validator("delta")
    @classmethod
    def _delta_exact(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("delta must be a finite number")
        return Decimal(_exact_units(value, DELTA_SCALE, "delta")) / DELTA_SCALE

    @classmethod
    def zero(cls) -> Budget:
        """The empty budget."""
        return cls(rho=Decimal(0), delta=Decimal(0))

    @classmethod
    def from_units(cls, rho_units: int, delta_units: int) -> Budget:
        """The budget whose integer units (ρ·10¹², δ·10¹⁸) are given."""
        return cls(rho=Decimal(rho_units) / RHO_SCALE, delta=Decimal(delta_units) / DELTA_SCALE)

    @classmethod
    def ceil(cls, rho: float | Decimal | str, delta: float | Decimal | str = 0) -> Budget:
        """A charge rounded *up* to the ledger's scale (never under-counts privacy loss)."""
        r = Decimal(str(rho)) if isinstance(rho, float) else Decimal(rho)
        d = Decimal(str(delta)) if isinstance(delta, float) else Decimal(delta)
        r_units = int((r * RHO_SCALE).to_integral_value(rounding=ROUND_CEILING))
        d_units = int((d * DELTA_SCALE).to_integral_value(rounding=ROUND_CEILING))
        return cls.from_units(r_units, d_units)

    @property
    def units(self) -> tuple[int, int]:
        """(ρ, δ) as integers of the fixed scales."""
        return int(self.rho * RHO_SCALE), int(self.delta * DELTA_SCALE)

    def __add__(self, other: Budget) -> Budget:
        a, b = self.units, other.units
        return Budget.from_units(a[0] + b[0], a[1] + b[1])

    def fits_within(self, other: Budget) -> bool:
        """True when both ρ and δ are at most `other`'s."""
        return self.rho <= other.rho and self.delta <= other.delta

    def __str__(self) -> str:
        return f"rho={self.rho:f} delta={self.delta:f}"  # fixed notation, never 5E-7


class Mode(StrEnum):
    """How a project may query a dataset."""

    DP = "dp"  # differentially private answers, charged to the budget
    SDC = "sdc"  # exact aggregates that pass statistical disclosure control


class DatasetGrant(BaseModel):
    """What a project may do with one dataset."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    version: int | None = Field(
        default=None, description="pinned dataset version; None means the latest published"
    )
    columns: tuple[str, ...]
    modes: tuple[Mode, ...]
    allowance: Budget = Field(description="the project's total budget on this dataset")
    remaining: Budget = Field(
        description="allowance left when the grant was built (the ledger has the last word)"
    )


class Grant(BaseModel):
    """A project's current, approved access: built by governance, read by the query layer."""

    model_config = ConfigDict(frozen=True)

    project_id: int
    user_id: int
    start_date: date
    end_date: date = Field(description="last day of access (inclusive)")
    datasets: tuple[DatasetGrant, ...]
    issued_at: datetime

    def dataset(self, name: str) -> DatasetGrant:
        """The grant for dataset `name`, or Forbidden when the project has none."""
        for entry in self.datasets:
            if entry.dataset == name:
                return entry
        raise Forbidden(
            f"project {self.project_id} has no approved access to dataset {name!r}",
            reason="no_grant",
            hint="Ask for the dataset in a new project application.",
        )

    def allows_column(self, dataset: str, column: str) -> bool:
        """True when `column` of `dataset` was approved for this project."""
        return column in self.dataset(dataset).columns
