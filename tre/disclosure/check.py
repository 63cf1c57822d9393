"""check_table: run every rule that applies to a statistic over a table's cells."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tre.disclosure.model import Cell, DisclosureReport, Release, Statistic, Status
from tre.disclosure.policy import DisclosurePolicy
from tre.disclosure.rules import RULES, Context, Rule
from tre.disclosure.table import Table, build_table, parse_statistic
from tre.errors import InvalidInput


def check_table(
    cells: Sequence[Cell],
    *,
    statistic: str | Statistic,
    policy: DisclosurePolicy,
    releases: Sequence[Release] = (),
    margins: bool = True,
) -> DisclosureReport:
    """Check a table of per-cell contributions; the report's status is the worst cell's."""
    stat = parse_statistic(statistic)
    require_policy(policy)
    require_releases(releases)
    table = build_table(cells, need_ids=bool(releases))
    return evaluate(table, stat, policy, releases=releases, margins=margins)


def require_policy(policy: Any) -> None:
    """Refuse anything but a DisclosurePolicy."""
    if not isinstance(policy, DisclosurePolicy):
        raise InvalidInput(
            f"policy must be a DisclosurePolicy, got {type(policy).__name__}",
            hint='load one with tre.disclosure.load_preset("acro") or load_policy(path)',
        )


def require_releases(releases: Any) -> None:
    """Refuse anything but a sequence of Release."""
    if isinstance(releases, Release) or not all(isinstance(r, Release) for r in releases):
        raise InvalidInput(
            "releases must be a list of Release",
            hint="build each with Release.from_cells(label, cells) or Release(label, sets)",
        )


def rules_for(statistic: Statistic, policy: DisclosurePolicy) -> tuple[Rule, ...]:
    """The rules that run for this statistic under this policy, in reporting order."""
    return tuple(rule for rule in RULES if rule.applies(statistic, policy))


def evaluate(
    table: Table,
    statistic: Statistic,
    policy: DisclosurePolicy,
    *,
    releases: Sequence[Release] = (),
    margins: bool = True,
    kind: str = "table",
    notes: tuple[str, ...] = (),
) -> DisclosureReport:
    """Run the applicable rules over an already built table."""
    rules = rules_for(statistic, policy)
    if not releases:
        rules = tuple(r for r in rules if r.id != "differencing")
    ctx = Context(table, statistic, policy, releases, margins)
    flags = np.zeros((table.n_cells, len(rules)), dtype=bool)
    for j, rule in enumerate(rules):
        flags[:, j] = rule.flag(ctx)
    return make_report(
        kind=kind,
        statistic=statistic,
        policy=policy,
        rules=rules,
        flags=flags,
        keys=table.cell_keys,
        notes=notes,
    )


def make_report(
    *,
    kind: str,
    statistic: Statistic,
    policy: DisclosurePolicy,
    rules: tuple[Rule, ...],
    flags: np.ndarray,
    keys: tuple[Any, ...],
    notes: tuple[str, ...] = (),
) -> DisclosureReport:
    """Assemble a report: statuses from flags, summary counts, the parameters in force."""
    statuses = tuple(rule.status(policy) for rule in rules)
    counts = flags.sum(axis=0)
    summary: dict[str, int] = {rule.id: int(c) for rule, c in zip(rules, counts, strict=True)}
    ranks = np.array([s.rank for s in statuses], dtype=np.int8)
    worst_rank = int((flags * ranks).max()) if flags.size else 0
    status = (Status.PASS, Status.REVIEW, Status.FAIL)[worst_rank]
    notes_out = list(notes)
    if policy.refuse_table and status is Status.FAIL:
        notes_out.append("refuse_table: at least one cell fails, so the whole table is withheld")
    return DisclosureReport(
        kind=kind,  # type: ignore[arg-type]
        statistic=statistic,
        status=status,
        rules_applied=tuple(rule.id for rule in rules),
        parameters=parameters_used(policy, rules),
        summary=summary,
        notes=tuple(notes_out),
        keys=keys,
        flags=flags,
        rule_status=statuses,
    )


def parameters_used(policy: DisclosurePolicy, rules: tuple[Rule, ...]) -> dict[str, Any]:
    """The policy's name and the parameters of the rules that ran."""
    params: dict[str, Any] = {"policy": policy.name, "refuse_table": policy.refuse_table}
    for rule in rules:
        params.update(rule.parameters(policy))
    return params
