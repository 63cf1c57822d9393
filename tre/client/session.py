"""`Client`: one researcher's connection to the tre API with a project token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import polars as pl

from tre.client.dummy import dummy_frame
from tre.client.errors import APIError, NotConnected, TREClientError
from tre.client.frames import (
    budget_frame,
    datasets_frame,
    history_frame,
    result_frame,
    schema_frame,
)
from tre.client.outputs import OutputRequests
from tre.client.progress import waiting
from tre.wire.budgets import BudgetHistoryOut, ProjectBudgetsOut
from tre.wire.datasets import DatasetDetailOut, DatasetOut

Mode = Literal["dp", "sdc"]
QUERY_TIMEOUT_SECONDS = 120.0
MAX_KEPT_ANSWERS = 200


@dataclass(frozen=True)
class QueryInfo:
    """What a released answer cost and how it was computed (the last one: `Client.last`)."""

    query_id: str
    mode: str
    cached: bool
    epsilon: float
    rho: float
    delta: float
    epsilon_delta: float
    plan: tuple[str, ...]
    datasets: tuple[tuple[str, int], ...]

    def __str__(self) -> str:
        spent = (
            "nothing (a repeat of a released answer)"
            if self.cached
            else (f"ε={self.epsilon:.3g} (ρ={self.rho:.3g}, δ={self.delta:.3g})")
        )
        versions = ", ".join(f"{n} v{v}" for n, v in self.datasets)
        return f"query {self.query_id} on {versions}: spent {spent}"


@dataclass(frozen=True)
class Explanation:
    """What a query would do and cost, and the expected 95% half-width of each column."""

    plan: tuple[str, ...]
    epsilon: float
    rho: float
    delta: float
    expected_half_widths: dict[str, float | None]
    groups: int | None
    thresholded: bool
    cached: bool

    def __str__(self) -> str:
        cost = (
            "free (already released)" if self.cached else f"ε={self.epsilon:.3g} (ρ={self.rho:.3g})"
        )
        lines = [f"cost: {cost}", *(f"  · {p}" for p in self.plan)]
        for col, hw in self.expected_half_widths.items():
            lines.append(
                f"  {col}: ± {hw:.3g} (95%)" if hw is not None else f"  {col}: no fixed interval"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(str(self)) + "</pre>"


def _epsilon(cost: dict[str, Any]) -> tuple[float, float, float, float]:
    return (
        float(cost["epsilon"]),
        float(cost["rho"]),
        float(cost["delta"]),
        float(cost["epsilon_delta"]),
    )


class Client:
    """The tre API for one project token (`connect()` builds one from the environment)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        progress: bool = True,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = url.rstrip("/")
        self.progress = progress
        self.last: QueryInfo | None = None
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "tre-client"},
            timeout=timeout,
            transport=transport,
        )
        self._project_id: int | None = None
        # Released answers by query id (for output requests with provenance); small and local.
        self._answers: dict[str, dict[str, Any]] = {}
        self.outputs = OutputRequests(self)

    def __repr__(self) -> str:
        return f"Client({self.url!r})"  # never the token

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, timeout=timeout or self._http.timeout, **kw)
        except httpx.TimeoutException:
            raise NotConnected(
                f"the tre API at {self.url} did not answer in time",
                hint="Try again; if it persists, simplify the query or ask the TRE's administrators.",
            ) from None
        except httpx.HTTPError as exc:
            raise NotConnected(
                f"cannot reach the tre API at {self.url} ({type(exc).__name__})",
                hint="Check TRE_API_URL, and that the notebook server was started from JupyterHub.",
            ) from None
        try:
            body = r.json() if r.content else None
        except ValueError:
            body = None
        if r.status_code >= 400:
            raise APIError.from_response(r.status_code, body)
        return body

    # --- who and which project --------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """Who the token belongs to and which project it is scoped to."""
        out: dict[str, Any] = self._request("GET", "/me")
        return out

    @property
    def project_id(self) -> int:
        """The project this token is for."""
        if self._project_id is None:
            pid = self.me().get("project_id")
            if pid is None:
                raise TREClientError(
                    "this credential is not a project token",
                    reason="project_token_required",
                    status=0,
                    hint="Use a token issued for a project (POST /tokens), as JupyterHub injects.",
                )
            self._project_id = int(pid)
        return self._project_id

    # --- the catalogue ----------------------------------------------------------------------

    def datasets(self) -> pl.DataFrame:
        """The catalogue: published datasets with their size and rows-per-person limit."""
        items = [DatasetOut.model_validate(d) for d in self._request("GET", "/datasets")]
        return datasets_frame(items)

    def _detail(self, name: str) -> DatasetDetailOut:
        return DatasetDetailOut.model_validate(self._request("GET", f"/datasets/{name}"))

    def schema(self, name: str) -> pl.DataFrame:
        """A dataset's columns: types, bounds, public categories, how they may be grouped."""
        return schema_frame(self._detail(name))

    def dummy(self, name: str, n: int = 1000, *, seed: int = 0) -> pl.DataFrame:
        """`n` look-alike rows made from the dataset's public metadata (never real rows)."""
        return dummy_frame(self._detail(name), n, seed=seed)

    # --- queries ----------------------------------------------------------------------------

    def _body(
        self, sql: str, epsilon: float | None, rho: float | None, mode: str
    ) -> dict[str, Any]:
        if (epsilon is not None and rho is not None) or (
            mode == "dp" and epsilon is None and rho is None
        ):
            raise TREClientError(
                "say how much privacy budget this query may spend: give epsilon or rho",
                reason="invalid_input",
                status=0,
                hint="For example tre.query(sql, epsilon=0.5); tre.explain(sql, epsilon=0.5) "
                "shows the accuracy you would get for free.",
            )
        body: dict[str, Any] = {"sql": sql, "mode": mode}
        if epsilon is not None:
            body["epsilon"] = float(epsilon)
        elif rho is not None:
            body["rho"] = float(rho)  # SDC mode (exact, disclosure-checked) may take neither
        return body

    def explain(
        self, sql: str, *, epsilon: float | None = None, rho: float | None = None, mode: Mode = "dp"
    ) -> Explanation:
        """The plan, the cost and the expected accuracy of a query; spends nothing."""
        out = self._request("POST", "/query/explain", json=self._body(sql, epsilon, rho, mode))
        eps, r, d, _ = _epsilon(out["cost"])
        return Explanation(
            plan=tuple(out["plan"]),
            epsilon=eps,
            rho=r,
            delta=d,
            expected_half_widths={
                c["name"]: hw
                for c, hw in zip(out["columns"], out["expected_half_widths_95"], strict=True)
                if c["role"] == "aggregate"
            },
            groups=out.get("groups"),
            thresholded=bool(out.get("thresholded")),
            cached=bool(out.get("cached")),
        )

    def query(
        self, sql: str, *, epsilon: float | None = None, rho: float | None = None, mode: Mode = "dp"
    ) -> pl.DataFrame:
        """Run an aggregate query: noisy values with `<column>_hw95` 95% half-widths.

        The cost is charged to the project's budget before the answer is released; repeating a
        released query at the same or a lower ε is free and returns the same answer.
        """
        body = self._body(sql, epsilon, rho, mode)
        with waiting("running the query", enabled=self.progress):
            out = self._request("POST", "/query", json=body, timeout=QUERY_TIMEOUT_SECONDS)
        eps, r, d, ed = _epsilon(out["cost"])
        if len(self._answers) >= MAX_KEPT_ANSWERS:
            self._answers.pop(next(iter(self._answers)))
        self._answers[str(out["query_id"])] = {**out, "sql": sql}
        self.last = QueryInfo(
            query_id=str(out["query_id"]),
            mode=str(out["mode"]),
            cached=bool(out["cached"]),
            epsilon=eps,
            rho=r,
            delta=d,
            epsilon_delta=ed,
            plan=tuple(out["plan"]),
            datasets=tuple((x["name"], int(x["version"])) for x in out["datasets"]),
        )
        return result_frame(out)

    def answer(self, query_id: str) -> dict[str, Any]:
        """The full released answer of a query run by this client (for an output request)."""
        try:
            return self._answers[query_id]
        except KeyError:
            raise TREClientError(
                f"no answer with query id {query_id!r} in this session",
                reason="not_found",
                status=0,
                hint="Run the query in this notebook first (a repeat is free), then use "
                "tre.last().query_id.",
            ) from None

    def _download(self, path: str) -> tuple[bytes, httpx.Headers]:
        try:
            r = self._http.get(path, timeout=QUERY_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise NotConnected(
                f"cannot reach the tre API at {self.url} ({type(exc).__name__})",
                hint="Check TRE_API_URL.",
            ) from None
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = None
            raise APIError.from_response(r.status_code, body)
        return r.content, r.headers

    # --- budget -----------------------------------------------------------------------------

    def budget(self) -> pl.DataFrame:
        """The project's privacy budget per dataset: allowed, spent, remaining (ε and ρ)."""
        out = self._request("GET", f"/projects/{self.project_id}/budgets")
        return budget_frame(ProjectBudgetsOut.model_validate(out))

    def history(self, limit: int = 50) -> pl.DataFrame:
        """The project's budget charges, newest first (one row per reservation and dataset)."""
        out = self._request(
            "GET", f"/projects/{self.project_id}/budgets/history", params={"limit": limit}
        )
        return history_frame(BudgetHistoryOut.model_validate(out))


def connect(url: str | None = None, token: str | None = None, **kw: Any) -> Client:
    """A client for `url` and `token`, by default from TRE_API_URL and TRE_TOKEN."""
    url = url or os.environ.get("TRE_API_URL")
    token = token or os.environ.get("TRE_TOKEN")
    if not url or not token:
        missing = " and ".join(n for n, v in (("TRE_API_URL", url), ("TRE_TOKEN", token)) if not v)
        raise NotConnected(
            f"{missing} not set",
            hint="Start your notebook from JupyterHub (it sets both), or pass "
            "connect(url=..., token=...) with a project token from POST /tokens.",
        )
    return Client(url, token, **kw)
