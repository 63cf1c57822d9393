"""The query service: one entry point from researcher SQL to a protected, charged answer.

`QueryService(catalog, ledger, audit, settings).run(sql, grant, rho=… | epsilon=…, mode=…)`
runs `STAGES = (parse, validate, plan, execute, protect)`; `explain(...)` stops after plan and
spends nothing. The ledger and the audit sink are passed in (small protocols), so this module
never imports governance. Order of side effects: reserve → execute → protect → commit →
cache → return; any failure before commit releases the reservation (it costs nothing), and an
answer is never returned before its charge is committed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from tre.audit.payload import AuditEvent
from tre.catalog.lookups import LookupTable, load_lookups
from tre.disclosure import DisclosurePolicy
from tre.errors import Forbidden, InvalidInput, UserError
from tre.privacy import mechanisms
from tre.query.audit import QueryAnswered, QueryFailedEvent, QueryRefusedEvent
from tre.query.errors import QueryFailed, QueryRefused
from tre.query.execute import Limits, Worker
from tre.query.model import (
    AggKind,
    BaseColumn,
    NoKeys,
    PublicKeys,
    ThresholdKeys,
    ValidatedQuery,
)
from tre.query.parse import parse
from tre.query.plan import DEFAULT_THRESHOLD_DELTA, MeasureKind, Plan, plan
from tre.query.protect import Cell, protect
from tre.query.sdc import SdcCell, SdcPlan, plan_sdc, protect_sdc, sdc_policy
from tre.query.store import CachedAnswer, MemoryAnswerCache
from tre.query.validate import GrantedDataset, validate
from tre.wire.grant import Budget, Grant, Mode

log = logging.getLogger("tre.query")

STAGES = ("parse", "validate", "plan", "execute", "protect")
# Below this the noise swamps any answer, and OpenDP's conversions slow down (seconds each).
MIN_PRIVACY = 1e-6
DEFAULT_LOOKUP_DIR = Path(__file__).resolve().parents[2] / "policies" / "lookups"


class BudgetLedger(Protocol):
    """What the query service needs from the privacy-budget ledger."""

    def reserve(
        self, project_id: int, charges: Mapping[str, Budget], *, purpose: str | None
    ) -> str:
        """Hold `charges` (per dataset); raise a UserError when a limit would be exceeded."""
        ...

    def commit(self, reservation_id: str, actual: Mapping[str, Budget]) -> None:
        """Turn a reservation into a spend of `actual` (at most the reserved amounts)."""
        ...

    def release(self, reservation_id: str) -> None:
        """Give a reservation back in full (the query failed or was refused)."""
        ...


class AuditSink(Protocol):
    """Where audit events go (the API binds it to the hash-chained audit log)."""

    def record(self, event: AuditEvent) -> None:
        """Append one event."""
        ...


class AnswerCache(Protocol):
    """Where released answers are kept for free repeats (memory, or `DatabaseAnswerCache`)."""

    def get(self, key: str) -> CachedAnswer | None:
        """The released answer for `key`, if any."""
        ...

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Keep `answer` unless one requested at a higher ρ is already kept."""
        ...


class DatasetCatalog(Protocol):
    """What the query service reads from the catalogue (tre.catalog.Catalog fits)."""

    def get(self, name: str, version: int | None = None) -> Any:
        """One published dataset version (files, columns, contribution limit, …)."""
        ...


@dataclass(frozen=True)
class QuerySettings:
    """Engine settings (limits, δ for thresholding, the δ at which ε is shown)."""

    limits: Limits = field(default_factory=Limits)
    threshold_delta: float = DEFAULT_THRESHOLD_DELTA
    display_delta: float = 1e-6
    latency_step_seconds: float = 0.0  # >0: answers leave on a quantised schedule (timing channel)
    sdc_policy: str = "acro"  # disclosure preset for SDC mode (review verdicts become fail)
    sdc_policy_dir: str | None = None  # folder of presets (default: the repository's)
    # Folder of public lookup tables (<policy_dir>/lookups; default: the repository's).
    lookup_dir: str | None = None


@dataclass(frozen=True)
class Cost:
    """A query's privacy loss: ρ (zCDP) and δ, and the same shown as (ε, δ)."""

    rho: float
    delta: float
    epsilon: float
    epsilon_delta: float

    def to_json(self) -> dict[str, float]:
        """JSON form."""
        return {
            "rho": self.rho,
            "delta": self.delta,
            "epsilon": self.epsilon,
            "epsilon_delta": self.epsilon_delta,
        }


@dataclass(frozen=True)
class ResultColumn:
    """One output column: a group key or an aggregate (with a 95% half-width per cell)."""

    name: str
    role: str  # "key" | "aggregate"
    aggregate: str | None = None


@dataclass(frozen=True)
class QueryResult:
    """A released answer: noisy cells with 95% half-widths, its cost, plan and dataset versions."""

    query_id: str
    columns: tuple[ResultColumn, ...]
    rows: tuple[tuple[Any, ...], ...]
    half_widths: tuple[tuple[float | None, ...], ...]
    cost: Cost
    plan: tuple[str, ...]
    datasets: tuple[tuple[str, int], ...]
    mode: str
    cached: bool = False
    # SDC mode: per row and column, why a cell was withheld (rule ids, or "secondary"); None
    # where published. Empty in DP mode.
    withheld: tuple[tuple[str | None, ...], ...] = ()
    disclosure: Mapping[str, Any] | None = None  # SDC: policy, status, flags per rule (no values)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "query_id": self.query_id,
            "mode": self.mode,
            "cached": self.cached,
            "withheld": [list(w) for w in self.withheld],
            "disclosure": dict(self.disclosure) if self.disclosure is not None else None,
            "columns": [
                {"name": c.name, "role": c.role, "aggregate": c.aggregate} for c in self.columns
            ],
            "rows": [list(r) for r in self.rows],
            "half_widths_95": [list(h) for h in self.half_widths],
            "cost": self.cost.to_json(),
            "plan": list(self.plan),
            "datasets": [{"name": n, "version": v} for n, v in self.datasets],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueryResult:
        """The inverse of `to_json` (for answers kept in the cache)."""
        cost = data["cost"]
        return cls(
            query_id=str(data["query_id"]),
            columns=tuple(
                ResultColumn(c["name"], c["role"], c["aggregate"]) for c in data["columns"]
            ),
            rows=tuple(tuple(r) for r in data["rows"]),
            half_widths=tuple(tuple(h) for h in data["half_widths_95"]),
            cost=Cost(
                rho=float(cost["rho"]),
                delta=float(cost["delta"]),
                epsilon=float(cost["epsilon"]),
                epsilon_delta=float(cost["epsilon_delta"]),
            ),
            plan=tuple(data["plan"]),
            datasets=tuple((d["name"], int(d["version"])) for d in data["datasets"]),
            mode=str(data["mode"]),
            cached=bool(data["cached"]),
            withheld=tuple(tuple(w) for w in data.get("withheld") or ()),
            disclosure=data.get("disclosure"),
        )

    def to_arrow(self) -> Any:
        """A pyarrow Table: the columns, plus `<name>_hw95` for each aggregate."""
        import pyarrow as pa

        data: dict[str, list[Any]] = {}
        for i, c in enumerate(self.columns):
            data[c.name] = [r[i] for r in self.rows]
            if c.role == "aggregate":
                data[f"{c.name}_hw95"] = [h[i] for h in self.half_widths]
        return pa.table(data)


@dataclass(frozen=True)
class Explanation:
    """What a query would do and cost, and its expected accuracy; nothing is run or spent."""

    plan: tuple[str, ...]
    cost: Cost
    columns: tuple[ResultColumn, ...]
    half_widths: tuple[float | None, ...]  # expected 95% half-width per output column
    groups: int | None  # number of released groups when keys are public
    thresholded: bool
    datasets: tuple[tuple[str, int], ...]
    cached: bool = False  # an answer at this or a higher ρ was released: a run costs nothing

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "plan": list(self.plan),
            "cost": self.cost.to_json(),
            "columns": [
                {"name": c.name, "role": c.role, "aggregate": c.aggregate} for c in self.columns
            ],
            "expected_half_widths_95": list(self.half_widths),
            "groups": self.groups,
            "thresholded": self.thresholded,
            "datasets": [{"name": n, "version": v} for n, v in self.datasets],
            "cached": self.cached,
        }


def granted_datasets(
    catalog: DatasetCatalog, grant: Grant, mode: Mode
) -> dict[str, GrantedDataset]:
    """The dataset versions and columns this grant lets the query see (others do not exist)."""
    out: dict[str, GrantedDataset] = {}
    for g in grant.datasets:
        if mode not in g.modes:
            continue
        dv = catalog.get(g.dataset, g.version)
        allowed = set(g.columns)
        cols = []
        for c in dv.columns:
            if c.name not in allowed or c.column_class in (
                "person_identifier",
                "direct_identifier",
                "rank",
            ):
                continue
            cols.append(
                BaseColumn(
                    dv.name,
                    dv.version,
                    c.name,
                    c.type,
                    c.bounds,
                    c.categories,
                    c.group_by,
                    c.allow_quantiles,
                    c.scale,
                    c.nullable,
                )
            )
        files, rank_filter = bounded_files(dv, dv.contribution_limit)
        out[dv.name] = GrantedDataset(
            name=dv.name,
            version=dv.version,
            files=files,
            rank_filter=rank_filter,
            columns=tuple(cols),
            pseudonym_column=dv.pseudonym_column,
            rank_column=dv.rank_column,
            contribution_limit=dv.contribution_limit,
        )
    return out


def bounded_files(dv: Any, limit: int) -> tuple[tuple[str, ...], bool]:
    """The files a query bounded at `limit` rows per person reads, and whether it must filter.

    Ingest writes the rows beyond the contribution limit to files of their own and records
    each file's rank range in the manifest: files whose ranks all exceed `limit` are not read
    at all, and when every file left is known to be within it the per-row `_tre_rank <= k`
    filter (which reads a whole extra column) is not needed. Files without a recorded range
    (older manifests) are read and filtered.
    """
    files: list[str] = []
    rank_filter = False
    for path, entry in zip(dv.files, dv.manifest.files, strict=True):
        if entry.min_rank is not None and entry.min_rank > limit:
            continue
        files.append(str(path))
        if entry.max_rank is None or entry.max_rank > limit:
            rank_filter = True
    return tuple(files), rank_filter


def _cost(rho: float, delta: float, display_delta: float) -> Cost:
    eps = mechanisms.rho_to_epsilon(rho, display_delta) if rho > 0 else 0.0
    return Cost(rho=rho, delta=delta, epsilon=eps, epsilon_delta=display_delta + delta)


def _columns(p: Plan | SdcPlan) -> tuple[ResultColumn, ...]:
    v = p.query
    return tuple(
        ResultColumn(o.name, o.role, v.aggregates[o.index].label if o.role == "aggregate" else None)
        for o in v.outputs
    )


class QueryService:
    """Researcher SQL → validated plan → sandboxed DuckDB → OpenDP noise, charged to the ledger."""

    def __init__(
        self,
        catalog: DatasetCatalog,
        ledger: BudgetLedger | None,
        audit: AuditSink | None,
        settings: QuerySettings | None = None,
        worker: Worker | None = None,
        cache: AnswerCache | None = None,
    ):
        self.catalog = catalog
        self.ledger = ledger
        self.audit = audit
        self.settings = settings or QuerySettings()
        self.worker = worker or Worker(self.settings.limits)
        self.cache: AnswerCache = cache if cache is not None else MemoryAnswerCache()
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        """Stop the worker process."""
        self.worker.close()

    # --- stages --------------------------------------------------------------------------

    def _rho(self, rho: float | None, epsilon: float | None) -> float:
        if (rho is None) == (epsilon is None):
            raise InvalidInput(
                "give exactly one of rho or epsilon",
                hint="For example rho=0.01, or epsilon=1 (converted at the display δ).",
            )
        value = rho if rho is not None else epsilon
        if value is None or not math.isfinite(value) or value < MIN_PRIVACY or value > 100:
            raise InvalidInput(
                f"the privacy parameter must be between {MIN_PRIVACY:g} and 100",
                hint="Typical values: rho=0.01 … 0.5, epsilon=0.1 … 2.",
            )
        if rho is not None:
            return float(rho)
        return mechanisms.epsilon_to_rho(float(value), self.settings.display_delta)

    def _check_grant(self, grant: Grant, mode: Mode, today: date | None) -> None:
        today = today or date.today()
        if today > grant.end_date or today < grant.start_date:
            raise Forbidden(
                f"project {grant.project_id}'s access is not valid today",
                reason="grant_expired",
                hint="Access runs from the project's start date to its end date.",
            )
        if mode is Mode.SDC and not any(Mode.SDC in g.modes for g in grant.datasets):
            raise Forbidden(
                "this project is not approved for exact (SDC) outputs",
                reason="sdc_not_granted",
                hint="Use DP mode, or apply for exact outputs in a project application.",
            )

    def prepare(
        self,
        sql: str,
        grant: Grant,
        *,
        rho: float | None = None,
        epsilon: float | None = None,
        mode: Mode | str = Mode.DP,
        today: date | None = None,
    ) -> Plan:
        """parse → validate → plan (pure; nothing runs and nothing is spent)."""
        mode = Mode(mode)
        self._check_grant(grant, mode, today)
        if mode is Mode.SDC:
            raise InvalidInput(
                "prepare() plans DP queries; SDC queries are planned by prepare_sdc()",
                hint="Call run() or explain() with mode='sdc'.",
            )
        r = self._rho(rho, epsilon)
        validated = self._validated(sql, grant, mode)
        if isinstance(validated.keys, ThresholdKeys) and self.settings.threshold_delta <= 0:
            raise QueryRefused(
                "these group keys need τ-thresholding, which needs δ > 0",
                hint="Group by columns with public categories instead.",
            )
        return plan(validated, rho=r, threshold_delta=self.settings.threshold_delta)

    def prepare_sdc(
        self,
        sql: str,
        grant: Grant,
        *,
        rho: float | None = None,
        epsilon: float | None = None,
        today: date | None = None,
    ) -> SdcPlan:
        """parse → validate → plan for SDC mode (exact, disclosure-checked; no privacy budget)."""
        self._check_grant(grant, Mode.SDC, today)
        if rho is not None or epsilon is not None:
            raise InvalidInput(
                "SDC mode releases exact, disclosure-checked numbers and takes no rho or epsilon",
                hint="Leave out rho and epsilon with mode='sdc', or use DP mode.",
            )
        return plan_sdc(self._validated(sql, grant, Mode.SDC), self.settings.sdc_policy)

    def _validated(self, sql: str, grant: Grant, mode: Mode) -> ValidatedQuery:
        """parse → validate against the datasets `grant` opens in `mode` (shared by both modes)."""
        return validate(parse(sql), granted_datasets(self.catalog, grant, mode), self.lookups())

    def lookups(self) -> dict[str, LookupTable]:
        """The public lookup tables any project may join (re-read when a file changes)."""
        return load_lookups(self.settings.lookup_dir or DEFAULT_LOOKUP_DIR, skip_invalid=True)

    def explain(
        self,
        sql: str,
        grant: Grant,
        *,
        rho: float | None = None,
        epsilon: float | None = None,
        mode: Mode | str = Mode.DP,
        today: date | None = None,
    ) -> Explanation:
        """The plan in words, the cost and the expected 95% half-widths; spends nothing."""
        planned, _, hit = self._planned(sql, grant, rho, epsilon, Mode(mode), today)
        if isinstance(planned, SdcPlan):
            sp, sv = planned, planned.query
            return Explanation(
                plan=sp.description,
                cost=_cost(0.0, 0.0, self.settings.display_delta),
                columns=_columns(sp),
                half_widths=tuple(None for _ in sv.outputs),
                groups=len(sv.keys.rows) if isinstance(sv.keys, PublicKeys) else 1,
                thresholded=False,
                datasets=sv.datasets,
                cached=hit is not None,
            )
        p, v = planned, planned.query
        by_col = {m.column: m for m in p.measurements}
        hws: list[float | None] = []
        for o in v.outputs:
            if o.role == "key":
                hws.append(None)
                continue
            a = v.aggregates[o.index]
            m = by_col.get(f"__tre_a{o.index}")
            if (
                a.kind is AggKind.QUANTILE
                or m is None
                or m.half_width is None
                or a.kind is AggKind.AVG
            ):
                hws.append(None)
            else:
                hws.append(m.half_width / (a.scale if a.kind is AggKind.SUM else 1))
        groups = (
            len(v.keys.rows)
            if isinstance(v.keys, PublicKeys)
            else (1 if isinstance(v.keys, NoKeys) else None)
        )
        return Explanation(
            plan=p.description,
            cost=_cost(p.rho, p.delta, self.settings.display_delta),
            columns=_columns(p),
            half_widths=tuple(hws),
            groups=groups,
            thresholded=isinstance(v.keys, ThresholdKeys),
            datasets=v.datasets,
            cached=hit is not None,
        )

    def answer(self, p: Plan) -> tuple[tuple[tuple[Any, ...], ...], ...]:
        """execute: run the plan's generated SQL in the sandbox worker (exact bounded aggregates)."""
        statements = tuple(s for s in (p.main_sql, *p.quantile_sqls) if s)
        return self.worker.run(p.query.views, statements)

    def run(
        self,
        sql: str,
        grant: Grant,
        *,
        rho: float | None = None,
        epsilon: float | None = None,
        mode: Mode | str = Mode.DP,
        today: date | None = None,
    ) -> QueryResult:
        """Answer one query: refused, failed (costs nothing), cached (free) or charged and released."""
        started = time.monotonic()
        query_id = uuid.uuid4().hex[:16]
        try:
            planned, cache_key, hit = self._planned(sql, grant, rho, epsilon, Mode(mode), today)
            policy = (
                sdc_policy(self.settings.sdc_policy, self.settings.sdc_policy_dir)
                if isinstance(planned, SdcPlan)
                else None
            )
        except UserError as exc:
            self._refused(query_id, grant, sql, exc.reason)
            raise
        if hit is not None:
            result = replace(hit, cached=True, cost=_cost(0.0, 0.0, self.settings.display_delta))
            self._answered(result, grant, sql)
            return self._quantised(result, started)
        if isinstance(planned, SdcPlan):
            assert policy is not None
            return self._run_sdc(planned, policy, cache_key, sql, grant, query_id, started)
        p, v = planned, planned.query
        charges = {name: Budget.ceil(p.rho, p.delta) for name, _ in v.datasets}
        reservation = None
        if self.ledger is not None:
            try:
                reservation = self.ledger.reserve(
                    grant.project_id, charges, purpose=f"query {query_id}"
                )
            except UserError as exc:
                self._refused(query_id, grant, sql, exc.reason)
                raise
        try:
            exact = self.answer(p)
            released = protect(p, exact)
        except BaseException as exc:
            if reservation is not None and self.ledger is not None:
                self.ledger.release(reservation)
            self._record_failure(query_id, grant, sql, exc)
            raise
        if reservation is not None and self.ledger is not None:
            # Commit before anything leaves: a crash here leaves an expiring reservation and no answer.
            self.ledger.commit(reservation, charges)
        rows: list[tuple[Any, ...]] = []
        hws: list[tuple[float | None, ...]] = []
        for r in released.rows:
            rows.append(tuple(c.value if isinstance(c, Cell) else c for c in r))
            hws.append(tuple(c.half_width if isinstance(c, Cell) else None for c in r))
        charged = charges[v.datasets[0][0]]
        result = QueryResult(
            query_id=query_id,
            columns=_columns(p),
            rows=tuple(rows),
            half_widths=tuple(hws),
            cost=_cost(float(charged.rho), float(charged.delta), self.settings.display_delta),
            plan=p.description,
            datasets=v.datasets,
            mode=Mode(mode).value,
        )
        try:
            with self._cache_lock:
                self.cache.put(
                    cache_key, CachedAnswer(grant.project_id, p.requested_rho, result.to_json())
                )
        except Exception:
            # The answer is charged and released; failing to keep it only costs a later repeat.
            log.exception("query %s: could not keep the released answer", query_id)
        self._answered(result, grant, sql)
        return self._quantised(result, started)

    def _planned(
        self,
        sql: str,
        grant: Grant,
        rho: float | None,
        epsilon: float | None,
        mode: Mode,
        today: date | None,
    ) -> tuple[Plan | SdcPlan, str, QueryResult | None]:
        """Plan the query in its mode (grant checks, parse, validate, plan) and look up an
        earlier released answer it may reuse: (plan, cache key, that answer or None)."""
        p: Plan | SdcPlan
        if mode is Mode.SDC:
            p = self.prepare_sdc(sql, grant, rho=rho, epsilon=epsilon, today=today)
            requested = 0.0
        else:
            p = self.prepare(sql, grant, rho=rho, epsilon=epsilon, mode=mode, today=today)
            requested = p.requested_rho
        key = self._cache_key(p, grant, mode)
        return p, key, self._cached(key, requested)

    def _run_sdc(
        self,
        p: SdcPlan,
        policy: DisclosurePolicy,
        cache_key: str,
        sql: str,
        grant: Grant,
        query_id: str,
        started: float,
    ) -> QueryResult:
        """SDC mode: exact aggregates, disclosure-checked; audited, free of privacy budget."""
        v = p.query
        try:
            (rows,) = self.worker.run(v.views, (p.sql,))
            released = protect_sdc(p, rows, policy)
        except BaseException as exc:
            self._record_failure(query_id, grant, sql, exc)
            raise
        result = QueryResult(
            query_id=query_id,
            columns=_columns(p),
            rows=tuple(
                tuple(c.value if isinstance(c, SdcCell) else c for c in r) for r in released.rows
            ),
            half_widths=tuple(tuple(None for _ in r) for r in released.rows),
            cost=_cost(0.0, 0.0, self.settings.display_delta),
            plan=p.description,
            datasets=v.datasets,
            mode=Mode.SDC.value,
            withheld=tuple(
                tuple(c.withheld if isinstance(c, SdcCell) else None for c in r)
                for r in released.rows
            ),
            disclosure={
                "policy": policy.name,
                "status": released.status,
                "flags": dict(released.summary),
            },
        )
        try:
            with self._cache_lock:
                self.cache.put(cache_key, CachedAnswer(grant.project_id, 0.0, result.to_json()))
        except Exception:
            log.exception("query %s: could not keep the released answer", query_id)
        self._answered(result, grant, sql)
        return self._quantised(result, started)

    def _cache_key(self, p: Plan | SdcPlan, grant: Grant, mode: Mode) -> str:
        # Same project, mode, dataset versions and question (re-generated from the validated
        # tree, so spacing, case and aliases of the SQL text do not matter).
        # A lookup table's rows are part of the question: an edited lookup is a new question.
        v = p.query
        lookups = [vs.values_sql for vs in v.views if vs.is_lookup]
        suffix = f"|{_digest('|'.join(lookups))}" if lookups else ""
        return _digest(f"{grant.project_id}|{mode.value}|{v.datasets}|{v.canonical}{suffix}")

    def _cached(self, key: str, requested_rho: float) -> QueryResult | None:
        """The released answer for `key` if it was requested at `requested_rho` or more.

        A repeat at the same or a lower ρ gets the earlier answer free (it is at least as
        accurate, and a fresh draw would let repetition average the noise away). A repeat at a
        higher ρ is a new, fully charged release; it then replaces the kept answer.
        """
        with self._cache_lock:
            hit = self.cache.get(key)
        if hit is None or hit.requested_rho < requested_rho:
            return None
        return QueryResult.from_json(hit.answer)

    def _refused(self, query_id: str, grant: Grant, sql: str, reason: str) -> None:
        self._record(
            QueryRefusedEvent(
                query_id=query_id,
                project_id=grant.project_id,
                user_id=grant.user_id,
                query_text=sql[:2000],
                query_digest=_digest(sql),
                reason=reason,
            )
        )

    def _quantised(self, result: QueryResult, started: float) -> QueryResult:
        step = self.settings.latency_step_seconds
        if step > 0:
            elapsed = time.monotonic() - started
            time.sleep(math.ceil(elapsed / step) * step - elapsed)
        return result

    def _answered(self, result: QueryResult, grant: Grant, sql: str) -> None:
        self._record(
            QueryAnswered(
                query_id=result.query_id,
                project_id=grant.project_id,
                user_id=grant.user_id,
                query_text=sql[:2000],
                query_digest=_digest(sql),
                mode=result.mode,
                datasets=tuple(f"{n}@v{ver}" for n, ver in result.datasets),
                rho=Decimal(repr(result.cost.rho)),
                delta=Decimal(repr(result.cost.delta)),
                cached=result.cached,
            )
        )

    def _record(self, event: AuditEvent) -> None:
        if self.audit is not None:
            self.audit.record(event)

    def _record_failure(self, query_id: str, grant: Grant, sql: str, exc: BaseException) -> None:
        """Audit a query that failed after planning (the error id only; never DuckDB's text)."""
        self._record(
            QueryFailedEvent(
                query_id=query_id,
                project_id=grant.project_id,
                user_id=grant.user_id,
                query_text=sql[:2000],
                query_digest=_digest(sql),
                error_id=exc.error_id if isinstance(exc, QueryFailed) else "",
            )
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = [
    "STAGES",
    "AnswerCache",
    "AuditSink",
    "BudgetLedger",
    "Cost",
    "DatasetCatalog",
    "Explanation",
    "MeasureKind",
    "QueryFailed",
    "QueryRefused",
    "QueryResult",
    "QueryService",
    "QuerySettings",
    "ResultColumn",
    "granted_datasets",
]
