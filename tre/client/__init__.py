"""The tre notebook client: ask the tre API aggregate questions, get DataFrames with error bars.

    import tre.client as tre
    tre.datasets()
    tre.explain("SELECT region, COUNT(*) AS n FROM health GROUP BY region", epsilon=0.5)
    df = tre.query("SELECT region, COUNT(*) AS n FROM health GROUP BY region", epsilon=0.5)
    tre.plot(df, "region", "n")
    req = tre.outputs().create("Admissions by region")
    tre.outputs().add_table(req.id, "by_region", tre.last().query_id, context="…")

The module-level functions use one connection built from TRE_API_URL and TRE_TOKEN (which
JupyterHub sets); `connect(url, token)` makes others. It depends only on `tre.wire`,
`tre.errors`, httpx, polars and (for plots) matplotlib.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tre.client.errors import APIError, NotConnected, TREClientError
from tre.client.outputs import OutputRequests
from tre.client.plot import plot
from tre.client.session import Client, Explanation, Mode, QueryInfo, connect

_default: Client | None = None


def client() -> Client:
    """The default connection (from the environment), made on first use."""
    global _default
    if _default is None:
        _default = connect()
    return _default


def datasets() -> pl.DataFrame:
    """The catalogue (see `Client.datasets`)."""
    return client().datasets()


def schema(name: str) -> pl.DataFrame:
    """A dataset's columns (see `Client.schema`)."""
    return client().schema(name)


def dummy(name: str, n: int = 1000, *, seed: int = 0) -> pl.DataFrame:
    """Look-alike rows from public metadata only (see `Client.dummy`)."""
    return client().dummy(name, n, seed=seed)


def explain(
    sql: str, *, epsilon: float | None = None, rho: float | None = None, mode: Mode = "dp"
) -> Explanation:
    """A query's plan, cost and expected accuracy, for free (see `Client.explain`)."""
    return client().explain(sql, epsilon=epsilon, rho=rho, mode=mode)


def query(
    sql: str, *, epsilon: float | None = None, rho: float | None = None, mode: Mode = "dp"
) -> pl.DataFrame:
    """Run an aggregate query (see `Client.query`)."""
    return client().query(sql, epsilon=epsilon, rho=rho, mode=mode)


def last() -> QueryInfo | None:
    """What the last query cost."""
    return client().last


def outputs() -> OutputRequests:
    """Output requests: create, add_table, add_figure, add_context, submit, status, download."""
    return client().outputs


def budget() -> pl.DataFrame:
    """The project's budget (see `Client.budget`)."""
    return client().budget()


def history(limit: int = 50) -> pl.DataFrame:
    """The project's budget charges (see `Client.history`)."""
    return client().history(limit)


__all__ = [
    "APIError",
    "Client",
    "Explanation",
    "NotConnected",
    "OutputRequests",
    "QueryInfo",
    "TREClientError",
    "budget",
    "client",
    "connect",
    "datasets",
    "dummy",
    "explain",
    "history",
    "last",
    "outputs",
    "plot",
    "query",
    "schema",
]


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    raise AttributeError(f"module 'tre.client' has no attribute {name!r}")
