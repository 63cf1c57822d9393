"""What a rule is: which statistics it applies to, its status, its parameters, its flags."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tre.disclosure.model import Release, RuleId, Statistic, Status
from tre.disclosure.policy import DisclosurePolicy

ALL = frozenset(Statistic)
ADDITIVE = frozenset({Statistic.FREQUENCY, Statistic.COUNT, Statistic.SUM, Statistic.MEAN})
MAGNITUDE = ALL - {Statistic.FREQUENCY}


class CellStats(Protocol):
    """Per-cell aggregates a rule may read (cells of a table, or its margins)."""

    @property
    def n_cells(self) -> int: ...

    @property
    def records(self) -> np.ndarray: ...

    @property
    def n(self) -> np.ndarray: ...

    @property
    def total(self) -> np.ndarray: ...

    @property
    def negatives(self) -> np.ndarray: ...

    def top(self, k: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Context:
    """What a rule sees: the cells' aggregates, the statistic, the policy, earlier releases."""

    stats: Any  # CellStats; a full Table for rules needing values (min_max, mode, differencing)
    statistic: Statistic
    policy: DisclosurePolicy
    releases: Sequence[Release] = ()
    margins: bool = True

    @property
    def contributors(self) -> np.ndarray:
        """Per cell: the units counted by the threshold (records for a frequency, else values)."""
        if self.statistic is Statistic.FREQUENCY:
            return np.asarray(self.stats.records)
        return np.asarray(self.stats.n)


@dataclass(frozen=True)
class Rule:
    """One disclosure rule."""

    id: RuleId
    statistics: frozenset[Statistic]
    enabled: Callable[[DisclosurePolicy], bool]
    status: Callable[[DisclosurePolicy], Status]
    parameters: Callable[[DisclosurePolicy], Mapping[str, Any]]
    flag: Callable[[Context], np.ndarray]
    on_margins: bool = False  # can be evaluated from merged aggregates (CellStats) alone

    def applies(self, statistic: Statistic, policy: DisclosurePolicy) -> bool:
        """Whether this rule runs for a table of this statistic under this policy."""
        return statistic in self.statistics and self.enabled(policy)


def always(_: DisclosurePolicy) -> bool:
    """Enabled under every policy."""
    return True


def fail(_: DisclosurePolicy) -> Status:
    """Flagged cells fail."""
    return Status.FAIL


def review(_: DisclosurePolicy) -> Status:
    """Flagged cells need review."""
    return Status.REVIEW
