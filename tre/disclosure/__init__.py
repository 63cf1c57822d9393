"""tre.disclosure: statistical disclosure control as pure rules over per-cell contributions.

No I/O besides loading policy presets. See docs/disclosure.md for every rule, its parameters,
its source and how tre differs from ACRO 1.0.2.
"""

from tre.disclosure.audit import lp_intervals, recoverable
from tre.disclosure.check import check_table
from tre.disclosure.histogram import check_histogram
from tre.disclosure.model import (
    RULE_IDS,
    TOTAL,
    Cell,
    CellVerdict,
    DisclosureReport,
    HistogramReport,
    ProtectedTable,
    PublishedCell,
    RegressionReport,
    Release,
    ReleasedSet,
    RuleId,
    Statistic,
    Status,
)
from tre.disclosure.policy import (
    DisclosurePolicy,
    load_policy,
    load_preset,
    policy_from_mapping,
    preset_names,
)
from tre.disclosure.protect import protect_table
from tre.disclosure.regression import check_regression
from tre.disclosure.rounding import midpoint6, round_table, round_to_base
from tre.disclosure.suppression import suppress_table

__all__ = [
    "RULE_IDS",
    "TOTAL",
    "Cell",
    "CellVerdict",
    "DisclosurePolicy",
    "DisclosureReport",
    "HistogramReport",
    "ProtectedTable",
    "PublishedCell",
    "RegressionReport",
    "Release",
    "ReleasedSet",
    "RuleId",
    "Statistic",
    "Status",
    "check_histogram",
    "check_regression",
    "check_table",
    "load_policy",
    "load_preset",
    "lp_intervals",
    "midpoint6",
    "policy_from_mapping",
    "preset_names",
    "protect_table",
    "recoverable",
    "round_table",
    "round_to_base",
    "suppress_table",
]
