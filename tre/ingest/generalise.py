"""Generalisation rules as DuckDB SQL expressions (one builder per rule of the policy registry)."""

from __future__ import annotations

from collections.abc import Callable

from tre.catalog.policy import (
    RULES,
    AgeBandRule,
    KeepRule,
    PostcodeAreaRule,
    PostcodeDistrictRule,
    RareToOtherRule,
    YearMonthRule,
    YearRule,
    _Rule,
)

# A full UK-style postcode: outward code (area letters, district digit, optional letter/digit),
# one optional space, inward code (digit + two letters). Checked before postcode rules apply.
POSTCODE_PATTERN = "^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$"


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A DuckDB string literal."""
    return "'" + value.replace("'", "''") + "'"


def _postcode(col: str) -> str:
    return f"upper(replace(trim({col}), ' ', ''))"


def _year(col: str, rule: YearRule) -> str:
    return f"CAST(year({col}) AS BIGINT)"


def _year_month(col: str, rule: YearMonthRule) -> str:
    return f"strftime({col}, '%Y-%m')"


def _age_band(col: str, rule: AgeBandRule) -> str:
    ref = f"DATE '{rule.reference_date.isoformat()}'"
    age = f"date_sub('year', {col}, {ref})"
    lo = f"(({age} // {rule.width}) * {rule.width})"
    band = f"CAST({lo} AS VARCHAR) || '-' || CAST({lo} + {rule.width - 1} AS VARCHAR)"
    if rule.top is None:
        return band
    return f"CASE WHEN {age} >= {rule.top} THEN '{rule.top}+' ELSE {band} END"


def _postcode_district(col: str, rule: PostcodeDistrictRule) -> str:
    # The inward code is always three characters, so the district is everything before them.
    pc = _postcode(col)
    return f"left({pc}, length({pc}) - 3)"


def _postcode_area(col: str, rule: PostcodeAreaRule) -> str:
    return f"regexp_extract({_postcode(col)}, '^[A-Z]+')"


def _keep(col: str, rule: KeepRule) -> str:
    return col


def rare_to_other_sql(col: str, rule: RareToOtherRule, keep_table: str) -> str:
    """Values held by enough people (listed in `keep_table`) stay; the rest become `other`."""
    return (
        f"CASE WHEN {col} IS NULL THEN NULL "
        f"WHEN {col} IN (SELECT v FROM {keep_table}) THEN {col} "
        f"ELSE {quote_literal(rule.other)} END"
    )


_BUILDERS: dict[type[_Rule], Callable[..., str]] = {
    YearRule: _year,
    YearMonthRule: _year_month,
    AgeBandRule: _age_band,
    PostcodeDistrictRule: _postcode_district,
    PostcodeAreaRule: _postcode_area,
    KeepRule: _keep,
}


def rule_sql(col: str, rule: _Rule) -> str:
    """The SQL expression generalising column expression `col` by a row-local rule."""
    builder = _BUILDERS.get(type(rule))
    if builder is None:
        raise ValueError(
            f"rule {type(rule).__name__} needs extract-wide counts; use rare_to_other_sql"
        )
    return builder(col, rule)


def is_row_local(rule: _Rule) -> bool:
    """True when the rule maps each value alone (no counts over the extract)."""
    return type(rule) in _BUILDERS


# Every registered rule has SQL here (a test checks this too).
assert set(_BUILDERS) | {RareToOtherRule} == set(RULES.values())
