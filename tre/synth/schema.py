"""The raw extracts' columns, in contract order (docs/datasets.md), and their Arrow schemas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

ContractType = Literal["string", "integer", "float", "boolean", "date", "category"]


@dataclass(frozen=True)
class Column:
    """One raw column: its name, contract type and whether it may be null."""

    name: str
    type: ContractType
    nullable: bool = False


_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "category": pa.string(),  # plain strings on disk; the policy lists the categories
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
}

_C = Column
COLUMNS: dict[str, tuple[Column, ...]] = {
    "education": (
        _C("person_id", "string"),
        _C("upn", "string"),
        _C("pupil_name", "string"),
        _C("date_of_birth", "date"),
        _C("sex", "category"),
        _C("ethnicity", "category"),
        _C("postcode", "string"),
        _C("school_id", "string"),
        _C("local_authority", "category"),
        _C("region", "category"),
        _C("academic_year", "category"),
        _C("year_group", "integer"),
        _C("fsm_eligible", "boolean"),
        _C("sen_status", "category"),
        _C("ks2_scaled_score", "float", nullable=True),
        _C("ks4_attainment8", "float", nullable=True),
    ),
    "health": (
        _C("person_id", "string"),
        _C("nhs_number", "string"),
        _C("patient_name", "string"),
        _C("date_of_birth", "date"),
        _C("sex", "category"),
        _C("postcode", "string"),
        _C("region", "category"),
        _C("admission_date", "date"),
        _C("discharge_date", "date"),
        _C("admission_method", "category"),
        _C("diagnosis_code", "string"),
        _C("diagnosis_chapter", "category"),
        _C("procedure_code", "string", nullable=True),
        _C("length_of_stay", "integer"),
        _C("cost", "float"),
    ),
    "benefits": (
        _C("person_id", "string"),
        _C("nino", "string"),
        _C("claimant_name", "string"),
        _C("date_of_birth", "date"),
        _C("sex", "category"),
        _C("postcode", "string"),
        _C("region", "category"),
        _C("tax_year", "category"),
        _C("benefit_type", "category"),
        _C("employment_status", "category"),
        _C("weekly_benefit_amount", "float"),
        _C("annual_earnings", "float"),
    ),
}

DATASETS: tuple[str, ...] = tuple(COLUMNS)


def arrow_schema(dataset: str) -> pa.Schema:
    """The Arrow schema of a raw extract (non-nullable columns marked so)."""
    return pa.schema(
        [pa.field(c.name, _ARROW[c.type], nullable=c.nullable) for c in COLUMNS[dataset]]
    )
